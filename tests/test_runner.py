"""The execd runner: gather prompts, coalescing, flushing, and clean shutdown with state saved."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest
from telegraf_bridge.plugins.common import (
    Emit,
    LineProtocolSerializer,
    LineWriter,
    Point,
    Runner,
    SkipCounter,
)

from telegraf_bridge.testing import parse_lines

T0 = 1_800_000_000_000_000_000


class SlowSource:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0
        self.closed = False
        self.started = threading.Event()

    def gather(self, emit: Emit) -> None:
        self.calls += 1
        self.started.set()
        time.sleep(self.delay)
        emit(Point("m", {}, {"n": float(self.calls)}, T0 + self.calls))

    def close(self) -> None:
        self.closed = True


def test_stdin_prompts_that_pile_up_are_coalesced() -> None:
    read_fd, write_fd = os.pipe()
    stdin = os.fdopen(read_fd, "r")
    out = io.BytesIO()
    source = SlowSource(delay=0.5)
    runner = Runner(
        source,
        LineWriter(out, LineProtocolSerializer(counter=SkipCounter())),
        signal="STDIN",
        stdin=stdin,
    )
    thread = threading.Thread(target=runner.run)
    thread.start()
    os.write(write_fd, b"\n")
    assert source.started.wait(5)
    os.write(write_fd, b"\n" * 10)  # ten prompts while the first gather is still running
    time.sleep(1.5)
    os.close(write_fd)  # stdin EOF: shut down
    thread.join(10)
    assert not thread.is_alive()
    assert runner.prompts == 11
    assert source.calls == 2, "prompts arriving during a gather must collapse into one"
    assert source.closed
    assert len(parse_lines(out.getvalue().decode())) == 2


def test_every_batch_is_flushed_whole() -> None:
    class Recorder(io.BytesIO):
        flushes: ClassVar[list[bytes]] = []

        def flush(self) -> None:
            self.flushes.append(self.getvalue())

    out = Recorder()
    writer = LineWriter(out, LineProtocolSerializer(counter=SkipCounter()))
    writer.write_points([Point("m", {}, {"n": 1.0}, T0), Point("m", {}, {"n": 2.0}, T0 + 1)])
    assert len(out.flushes) == 1
    assert out.flushes[0].endswith(b"\n") and out.flushes[0].count(b"\n") == 2


def _demo_config(tmp_path: Path, **extra: object) -> Path:
    conf = tmp_path / "demo.toml"
    options: dict[str, object] = {
        "signal": "none",
        "interval": "200ms",
        "state_dir": str(tmp_path / "state"),
        "require_clock_sync": False,
        **extra,
    }
    conf.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items()))
    return conf


def _start_demo(conf: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "telegraf_bridge.plugins.demo", "--config", str(conf), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _state(tmp_path: Path) -> dict[str, object]:
    doc = json.loads((tmp_path / "state" / "demo-demo.state.json").read_text())
    return dict(doc["data"])


def test_stdin_eof_stops_cleanly_and_saves_state(tmp_path: Path) -> None:
    proc = _start_demo(_demo_config(tmp_path))
    assert proc.stdout is not None and proc.stdin is not None
    first = proc.stdout.readline()
    assert first.startswith(b"demo,device=demo-1,site=demo ")
    proc.stdin.close()
    # More windows may be written between the first line and the EOF reaching the plugin
    # (200 ms interval): the state must name the last window actually written.
    rest = proc.stdout.read()
    assert proc.wait(timeout=10) == 0
    assert b"I! [telegraf_bridge.runner] stopping: stdin closed" in proc.stderr.read()  # type: ignore[union-attr]
    written = parse_lines((first + rest).decode())
    assert _state(tmp_path)["last_window_ns"] == written[-1].time_ns


def test_sigterm_stops_cleanly_and_saves_state(tmp_path: Path) -> None:
    proc = _start_demo(_demo_config(tmp_path))
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert "last_window_ns" in _state(tmp_path)


def test_stdout_gone_stops_with_state_saved(tmp_path: Path) -> None:
    proc = _start_demo(_demo_config(tmp_path))
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # Telegraf went away
    assert proc.wait(timeout=10) == 1
    assert "Telegraf has gone away" in proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "last_window_ns" in _state(tmp_path)


def test_stdin_signal_mode_gathers_once_per_newline(tmp_path: Path) -> None:
    proc = _start_demo(_demo_config(tmp_path, signal="STDIN", interval="1s"))
    assert proc.stdin is not None and proc.stdout is not None
    time.sleep(1.2)  # no prompt, no output
    proc.stdin.write(b"\n")
    proc.stdin.flush()
    assert proc.stdout.readline().startswith(b"demo,")
    proc.stdin.close()
    rest = proc.stdout.read()
    assert proc.wait(timeout=10) == 0
    assert rest == b"", "exactly one gather per prompt"


def test_config_error_exits_2_naming_key_value_and_allowed(tmp_path: Path) -> None:
    conf = _demo_config(tmp_path, signal="sometimes")
    proc = _start_demo(conf, "--once")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert "E! " in err.decode()
    assert "demo.signal = 'sometimes' is invalid: expected one of 'none', 'STDIN'" in err.decode()


def test_unknown_option_is_an_error(tmp_path: Path) -> None:
    proc = _start_demo(_demo_config(tmp_path, devcies=2), "--once")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 2
    assert "demo.devcies is not a known option (did you mean 'devices'?)" in err.decode()


def test_restart_continues_counters_instead_of_resetting(tmp_path: Path) -> None:
    conf = _demo_config(tmp_path)
    state_file = tmp_path / "state" / "demo-demo.state.json"
    state_file.parent.mkdir()
    state_file.write_text(
        json.dumps(
            {"format": 1, "data": {"energy_mwh": {"demo-1": 5_000_000}, "last_window_ns": 0}}
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "telegraf_bridge.plugins.demo", "--config", str(conf), "--once"],
        capture_output=True,
        check=True,
    )
    point = parse_lines(out.stdout.decode())[0]
    assert point.fields["energy_wh"] >= 5000


@pytest.mark.parametrize("mode", ["none", "STDIN"])
def test_no_line_is_ever_split_across_writes(tmp_path: Path, mode: str) -> None:
    proc = _start_demo(_demo_config(tmp_path, signal=mode, devices=50))
    assert proc.stdin is not None and proc.stdout is not None
    lines = []
    for _ in range(2):
        if mode == "STDIN":
            proc.stdin.write(b"\n")
            proc.stdin.flush()
        lines += [proc.stdout.readline() for _ in range(50)]
    proc.stdin.close()
    proc.wait(timeout=10)
    assert all(line.endswith(b"\n") for line in lines)
    assert len(parse_lines(b"".join(lines).decode())) == 100
