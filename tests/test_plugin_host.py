"""The plugin host: several sources in one Python process, each as it would run alone.

A source's failure (bad config, an exception out of its code, even SystemExit) is logged with
its name and the source is built again after its restart_delay while the others keep writing;
every source keeps its own journal, state and status file; the shared pipe never makes a
source believe Telegraf read its bytes before it did.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

import pytest
from rig import TelegrafProcess, wait_for
from telegraf_bridge.plugins.common import (
    Emit,
    LineProtocolSerializer,
    LineWriter,
    PluginContext,
    PluginSpec,
    Point,
    SkipCounter,
)
from telegraf_bridge.plugins.common._host import (
    Host,
    HostedSource,
    SharedOutput,
    build_source,
    load_host_config,
)
from telegraf_bridge.plugins.common._main import Instance, load_config, prepare

TIME_NS = 1_767_225_600 * 10**9


class Bomb:
    """A source whose code fails the way a bug does: SystemExit out of gather, every time."""

    builds = 0

    def __init__(self, ctx: PluginContext) -> None:
        type(self).builds += 1
        self.closed = False

    def gather(self, emit: Emit) -> bool:
        emit(Point("bomb", {}, {"n": 1.0}, TIME_NS))
        raise SystemExit("a bug in the source")

    def close(self) -> None:
        self.closed = True


def _demo_config(tmp_path: Path, name: str, extra: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'interval = "200ms"\nstate_dir = "{tmp_path / "state"}"\ninstance = "{name}"\n'
        f"require_clock_sync = false\n{extra}"
    )
    return path


def _build(hosted: HostedSource, output: SharedOutput) -> Instance:
    """The host's own build, plus the Bomb plugin for the crash."""
    if hosted.plugin != "bomb":
        return build_source(hosted, output)
    stream: BinaryIO = output  # type: ignore[assignment]  # it has write, flush and fileno
    config = load_config("bomb", hosted.config)
    return prepare(PluginSpec("bomb", Bomb), config, stream=stream, watch_stdin=False)


class PipeReader:
    """Telegraf's side of the stdout pipe: reads everything, line by line."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.lines: list[bytes] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with os.fdopen(self.read_fd, "rb") as pipe:
            for line in pipe:
                self.lines.append(line)

    def measurements(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for line in list(self.lines):
            key = line.split(b",", 1)[0].split(b" ", 1)[0].decode()
            found[key] = found.get(key, 0) + 1
        return found


def test_a_crashing_source_and_a_bad_config_do_not_stop_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reader = PipeReader()
    bad = _demo_config(tmp_path, "typo", "nonsense = 1\n")
    sources = [
        HostedSource("pv-a", "demo", _demo_config(tmp_path, "pv-a"), 10.0),
        HostedSource("pv-b", "demo", _demo_config(tmp_path, "pv-b", "devices = 2\n"), 10.0),
        HostedSource("boom", "bomb", _demo_config(tmp_path, "boom"), 0.2),
        HostedSource("typo", "demo", bad, 0.2),
    ]
    Bomb.builds = 0
    with os.fdopen(reader.write_fd, "wb") as stdout:
        host = Host(sources, SharedOutput(stdout), build=_build)
        runner = threading.Thread(target=host.run, args=(None,))
        runner.start()
        try:
            wait_for(lambda: Bomb.builds >= 3, timeout=20, what="the bomb rebuilt twice")
            before = reader.measurements().get("demo", 0)
            wait_for(
                lambda: reader.measurements().get("demo", 0) >= before + 6,
                timeout=20,
                what="the demo sources writing on while the bomb keeps failing",
            )
        finally:
            host.request_stop("test over")
            runner.join(20)
    assert not runner.is_alive()
    slots = {slot.hosted.name: slot for slot in host.slots}
    assert slots["pv-a"].failures == slots["pv-b"].failures == 0
    assert slots["boom"].failures >= 2 and slots["typo"].failures >= 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("source boom (plugin bomb): it stopped (SystemExit: a bug" in m for m in errors)
    assert any("source typo (plugin demo): cannot start: demo.nonsense" in m for m in errors)
    # Each source kept its own state, journal and status file.
    state = sorted(p.name for p in (tmp_path / "state").iterdir())
    for name in ("pv-a", "pv-b"):
        assert {f"demo-{name}.journal", f"demo-{name}.state.json"} <= set(state)
        assert f"demo-{name}.status.json" in state
    assert "bomb-boom.journal" in state  # the bomb's points are journaled before it fails


def test_the_shared_pipe_never_makes_a_writer_believe_too_early(tmp_path: Path) -> None:
    """FIONREAD counts every source's unread bytes: each writer's own count can only lag."""
    read_fd, write_fd = os.pipe()
    shared = SharedOutput(os.fdopen(write_fd, "wb"))
    stream: BinaryIO = shared  # type: ignore[assignment]  # it has write, flush and fileno
    writers = {
        name: LineWriter(stream, LineProtocolSerializer(counter=SkipCounter()))
        for name in ("a", "b")
    }
    owner: list[str] = []  # the writer of each byte, in pipe order
    for round_ in range(20):
        for name in ("a", "b") if round_ % 3 else ("b", "a", "a"):
            point = Point(f"m{name}", {}, {"v": float(round_) * 1.5}, TIME_NS + round_)
            before = len(owner)
            writers[name].write_points([point])
            owner += [name] * (writers[name].bytes_written - sum(o == name for o in owner))
            assert len(owner) > before
    total = len(owner)
    consumed = 0
    for chunk in (1, 37, 200, 511, 64, total):
        consumed += len(os.read(read_fd, min(chunk, total - consumed)))
        for name, writer in writers.items():
            believed = writer.bytes_written - writer.unread_bytes()
            actually = sum(o == name for o in owner[:consumed])
            assert believed <= actually, (name, consumed)
        if consumed == total:
            break
    assert all(w.bytes_written - w.unread_bytes() == w.bytes_written for w in writers.values())
    os.close(read_fd)


def _host(config: Path) -> subprocess.CompletedProcess[str]:
    """The plugin host run on ``config`` until it exits (a config error exits at once)."""
    return subprocess.run(
        [sys.executable, "-m", "telegraf_bridge.plugins.host", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected one or more [[sources]] tables"),
        ('[[sources]]\nname = "a"\nplugin = "demo"\n', "sources[0].config is required"),
        ('[[sources]]\nplugin = "demo"\nconfig = "a.toml"\n', "sources[0].name is required"),
        (
            '[[sources]]\nname = "a"\nplugin = "demo"\nconfig = "a.toml"\nrestart = "1s"\n',
            "sources[0].restart is not a known option (did you mean 'restart_delay'?)",
        ),
        (
            '[[sources]]\nname = "a"\nplugin = "demo"\nconfig = "a.toml"\n' * 2,
            "source names must be unique, repeated: ['a']",
        ),
    ],
)
def test_host_config_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "host.toml"
    path.write_text(text)
    result = _host(path)
    assert result.returncode == 2
    assert str(path) in result.stderr and message in result.stderr
    assert result.stdout == ""


def test_an_unknown_plugin_is_the_hosts_config_error(tmp_path: Path) -> None:
    path = tmp_path / "host.toml"
    path.write_text('[[sources]]\nname = "a"\nplugin = "nope"\nconfig = "a.toml"\n')
    result = _host(path)
    assert result.returncode == 2
    assert "unknown plugin 'nope'" in result.stderr


@pytest.mark.telegraf
def test_telegraf_runs_the_host_and_every_source_delivers(
    tmp_path: Path, telegraf_bin: Path
) -> None:
    """Under the real Telegraf: two sources in one process, one with a broken config."""
    bad = _demo_config(tmp_path, "typo", "devcies = 2\n")
    gpio = tmp_path / "meter.toml"
    gpio.write_text(
        f'interval = "1s"\nstate_dir = "{tmp_path / "state"}"\ninstance = "meter"\n'
        'require_clock_sync = false\nbackend = "sim"\n'
        'sim = {profile = "house", jitter = 0.2, bounce = 0.05, scale = [1.0, 0.3, 0.6]}\n'
    )
    host_conf = tmp_path / "host.toml"
    host_conf.write_text(
        f'[[sources]]\nname = "pv"\nplugin = "demo"\nconfig = "{_demo_config(tmp_path, "pv")}"\n'
        f'[[sources]]\nname = "meter"\nplugin = "gpio_pulse"\nconfig = "{gpio}"\n'
        f'[[sources]]\nname = "typo"\nplugin = "demo"\nconfig = "{bad}"\nrestart_delay = "1s"\n'
    )
    out = tmp_path / "metrics.lp"
    command = [sys.executable, "-m", "telegraf_bridge.plugins.host", "--config", str(host_conf)]
    quoted = ", ".join(f'"{c}"' for c in command)
    conf = tmp_path / "telegraf.conf"
    conf.write_text(
        '[agent]\n  interval = "1s"\n  flush_interval = "1s"\n  omit_hostname = true\n'
        f'[[inputs.execd]]\n  alias = "host"\n  command = [{quoted}]\n  signal = "none"\n'
        '  restart_delay = "1s"\n  data_format = "influx"\n'
        f'[[outputs.file]]\n  files = ["{out}"]\n  data_format = "influx"\n'
    )
    with TelegrafProcess(telegraf_bin, conf, tmp_path / "tg") as telegraf:

        def written() -> str:
            return out.read_text() if out.exists() else ""

        wait_for(
            lambda: "demo," in written() and "PowerPulse" in written(),
            timeout=60,
            what="points of both hosted sources",
        )
        telegraf.wait_for_log("source typo (plugin demo): cannot start", timeout=30)
        time.sleep(1)
        log = telegraf.log()
    status = tmp_path / "state"
    assert (status / "demo-pv.status.json").exists()
    assert (status / "gpio_pulse-meter.status.json").exists()
    assert "demo.devcies is not a known option (did you mean 'devices'?)" in log
    assert log.count("inputs.execd::host] Starting process") == 1, "the host never restarted"


def test_a_relative_source_config_is_anchored_at_the_host_config(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "host.toml"
    path.parent.mkdir()
    path.write_text(
        '[[sources]]\nname = "a"\nplugin = "demo"\nconfig = "a.toml"\n'
        '[[sources]]\nname = "b"\nplugin = "demo"\nconfig = "/etc/b.toml"\nrestart_delay = "2s"\n'
    )
    assert load_host_config(path) == [
        HostedSource("a", "demo", tmp_path / "conf" / "a.toml", 10.0),
        HostedSource("b", "demo", Path("/etc/b.toml"), 2.0),
    ]


def test_render_and_run_with_agent_plugin_host(tmp_path: Path) -> None:
    """agent.plugin_host: one execd process hosts every un-prompted source, under `run`.

    The demo config's three sources (demo, ndjson_tail, gpio_pulse) run in one host
    process under the real Telegraf; every source's points arrive and the summary still
    names each source with its own count (from its own status file).
    """
    import yaml
    from telegraf_bridge.cli.commands.init import starter_text

    from telegraf_bridge.testing import parse_lines

    doc = yaml.safe_load(starter_text())
    doc.setdefault("agent", {})["plugin_host"] = True
    config = tmp_path / "bridge.yaml"
    config.write_text(yaml.safe_dump(doc))
    command = [sys.executable, "-m", "telegraf_bridge.cli.main", "run", "--config", str(config)]
    proc = subprocess.run(
        [*command, "--duration", "8"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    conf_path = next(tmp_path.rglob("telegraf.conf"))
    conf = conf_path.read_text()
    assert conf.count("[[inputs.execd]]") == 1
    assert "telegraf_bridge.plugins.host" in conf
    written = parse_lines(next(tmp_path.rglob("metrics.lp")).read_text())
    assert {"demo", "smartsolar", "PowerPulse"} <= {p.measurement for p in written}
    for name in ("demo", "smartsolar", "meter"):
        line = next(x for x in proc.stdout.splitlines() if x.startswith(f"source {name} "))
        assert int(line.split(": ")[1].split(" ")[0]) > 0, line
    reported = int(proc.stdout.rsplit("stopped", 1)[1].split("; ")[1].split(" ")[0])
    assert reported == len(written)
    # check-config FILE reads the hosted sources back from the rendered files.
    from telegraf_bridge.cli.preflight import settings_from_rendered

    back = settings_from_rendered(conf_path)
    assert sorted((s.name, s.plugin) for s in back.sources) == [
        ("demo", "demo"),
        ("meter", "gpio_pulse"),
        ("smartsolar", "ndjson_tail"),
    ]
