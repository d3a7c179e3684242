"""bridge-cli install-systemd: the written units, judged by systemd's own tools, and their command
lines run for real (render, check, Telegraf, the health check).

No systemd runs here as PID 1, so the units are never started by systemd itself: Debian's real
``systemd-analyze`` checks them offline (``verify``, ``security --offline``, ``calendar``), and
the test runs the commands the units hold the way systemd would (working directory, the
environment file and ``Environment=``, ``NOTIFY_SOCKET``, SIGTERM to the main process only).
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from _support import EXAMPLES
from click.testing import CliRunner, Result
from rig import InfluxD1, free_port
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.systemd import host, install
from telegraf_bridge.cli.systemd.envfile import read_env_file
from telegraf_bridge.cli.systemd.errors import InstallError

SERVICE = "telegraf-bridge.service"
HEALTH = "telegraf-bridge-healthcheck.service"
TIMER = "telegraf-bridge-healthcheck.timer"
BRIDGE_CLI = Path(sys.executable).parent / "bridge-cli"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")

V1_CONFIG = """\
agent:
  interval: 1s
  flush_interval: 1s
  buffer_directory: buffer
  state_directory: state
  require_clock_sync: false
  health_listen: 127.0.0.1:{port}
sources:
  - name: demo
    plugin: demo
sinks:
  - name: local
    type: influxdb_v1
    url: {url}
    database: {database}
"""
V2_CONFIG = """\
sources:
  - name: demo
    plugin: demo
sinks:
  - name: cloud
    type: influxdb_v2
    url: http://127.0.0.1:9
    organization: my-org
    bucket: solar
    token_env: INFLUX_TOKEN
"""


# -- helpers -------------------------------------------------------------------------------------


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file as (key, value) lists, in order (no continuation lines used)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
            continue
        assert current is not None, line
        key, value = line.split("=", 1)
        sections[current].append((key, value))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, (key, found)
    return found[0]


def exec_argv(value: str) -> list[str]:
    """An Exec*= line as systemd splits it: quotes, then %% and $$ unescaped per word."""
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(value.lstrip("-@:+!"))]


def unit_env(unit: dict[str, list[tuple[str, str]]], path: str = "/usr/bin:/bin") -> dict[str, str]:
    """The environment systemd gives the service: Environment=, then the EnvironmentFile=."""
    env = {"PATH": path, "LANG": "C.UTF-8"}
    for value in values(unit, "Service", "Environment"):
        for word in shlex.split(value):
            key, val = word.split("=", 1)
            env[key] = val
    for value in values(unit, "Service", "EnvironmentFile"):
        file = Path(value.lstrip("-"))
        if file.exists():
            env.update(read_env_file(file))
    return env


def seconds(text: str) -> float:
    """A systemd time span such as ``90s``, ``2min`` or ``10min``."""
    match = re.fullmatch(r"(\d+)(s|min|h)?", text)
    assert match, text
    return int(match.group(1)) * {"s": 1, None: 1, "min": 60, "h": 3600}[match.group(2)]


class Layout:
    """Where one test installs: config, data dir, env file and unit dir under tmp_path."""

    def __init__(self, tmp_path: Path, config_text: str) -> None:
        self.root = tmp_path
        self.config = tmp_path / "etc" / "bridge.yaml"
        self.config.parent.mkdir(parents=True)
        self.config.write_text(config_text)
        self.data = tmp_path / "data"
        self.env_file = tmp_path / "etc" / "bridge.env"
        self.units = tmp_path / "units"
        self.units.mkdir()

    def args(
        self, *extra: str, user: tuple[str, ...] = ("--user", "root", "--allow-root")
    ) -> list[str]:
        return [
            "install-systemd",
            "--config", str(self.config),
            *user,
            "--data-dir", str(self.data),
            "--env-file", str(self.env_file),
            "--unit-dir", str(self.units),
            *extra,
        ]  # fmt: skip

    def install(self, *extra: str, **kwargs: tuple[str, ...]) -> Result:
        return CliRunner().invoke(cli, self.args(*extra, **kwargs))

    def unit(self, name: str) -> dict[str, list[tuple[str, str]]]:
        return parse_unit((self.units / name).read_text())


def analyze(*args: str, unit_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Debian's systemd-analyze, offline; our unit directory searched before the system's."""
    if SYSTEMD_ANALYZE is None:
        pytest.fail("systemd-analyze is missing: sudo apt-get install systemd")
    env = dict(os.environ)
    if unit_dir is not None:
        env["SYSTEMD_UNIT_PATH"] = f"{unit_dir}:"  # trailing ':' keeps the default paths after it
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args], capture_output=True, text=True, env=env, check=False, timeout=60
    )


def dry_run_files(output: str) -> dict[str, str]:
    """The files a --dry-run prints, by path (each printed under a `# PATH (mode NNNN)` line)."""
    parts = re.split(r"^# (/\S+) \(mode \d{4}\)\n", output, flags=re.MULTILINE)
    texts = [text[:-1] for text in parts[2::2]]  # each is followed by a blank line
    texts[-1] = texts[-1].rsplit("\n\n", 1)[0] + "\n"  # the last by notes and the trailer
    return dict(zip(parts[1::2], texts, strict=True))


def verify_problems(unit_dir: Path, *names: str) -> list[str]:
    """What `systemd-analyze verify` says about the units; [] means clean.

    verify exits 0 on many problems (unknown keys, unparsable values are "ignoring" warnings),
    so every line it prints counts as a problem.
    """
    done = analyze("verify", "--man=no", *(str(unit_dir / n) for n in names), unit_dir=unit_dir)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    if done.returncode != 0:
        problems.append(f"exit status {done.returncode}")
    return problems


def syscalls_of(group: str) -> set[str]:
    """The system calls a `SystemCallFilter=` group allows, nested groups expanded."""
    done = analyze("syscall-filter", group)
    assert done.returncode == 0, done.stderr
    names: set[str] = set()
    for line in done.stdout.splitlines()[1:]:
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        names |= syscalls_of(word) if word.startswith("@") else {word}
    return names


@pytest.fixture
def v1_layout(tmp_path: Path) -> Layout:
    """A config with a (never contacted) InfluxDB 1.x sink, so all three units are written."""
    return Layout(
        tmp_path, V1_CONFIG.format(port=free_port(), url="http://127.0.0.1:9", database="solar")
    )


# -- the units' content --------------------------------------------------------------------------


def test_units_hold_the_paths_of_this_install(v1_layout: Layout) -> None:
    result = v1_layout.install("--healthcheck-args", "--measurement demo --max-lag-min 30")
    assert result.exit_code == 0, result.output
    data = v1_layout.data
    conf = data / "telegraf.conf"
    telegraf = Path(os.environ["TELEGRAF_BIN"])

    service = v1_layout.unit(SERVICE)
    assert one(service, "Service", "User") == "root"
    assert one(service, "Service", "Type") == "notify"
    assert one(service, "Service", "WorkingDirectory") == str(data)
    assert one(service, "Service", "EnvironmentFile") == f"-{v1_layout.env_file}"
    assert unit_env(service)["TELEGRAF_BIN"] == str(telegraf)
    render_line, check_line = values(service, "Service", "ExecStartPre")
    assert exec_argv(render_line) == [
        str(BRIDGE_CLI), "render-config", "--config", str(v1_layout.config),
        "--output", str(conf), "--base-dir", str(data), "--quiet",
    ]  # fmt: skip
    assert exec_argv(check_line) == [str(BRIDGE_CLI), "check-config", "--skip-test", str(conf)]
    assert exec_argv(one(service, "Service", "ExecStart")) == [
        str(telegraf), "--config", str(conf), "--strict-env-handling",
    ]  # fmt: skip
    # Restarts are bounded; stopping leaves Telegraf time to stop the plugins and flush.
    assert one(service, "Service", "Restart") == "on-failure"
    assert int(one(service, "Unit", "StartLimitBurst")) <= 10
    assert one(service, "Service", "KillMode") == "mixed"
    assert seconds(one(service, "Service", "TimeoutStopSec")) >= 30
    # The buffer and state directories (relative: under the data dir) are writable.
    assert values(service, "Service", "ReadWritePaths") == [f"-{data}"]
    assert one(service, "Service", "ProtectSystem") == "strict"
    # Device access through groups, never by closing /dev or privileges.
    assert "dialout" in one(service, "Service", "SupplementaryGroups").split()
    for closes_devices in ("PrivateDevices", "ProtectClock", "DevicePolicy", "DeviceAllow"):
        assert not values(service, "Service", closes_devices), closes_devices
    assert one(service, "Service", "CapabilityBoundingSet") == ""
    assert one(service, "Install", "WantedBy") == "multi-user.target"

    health = v1_layout.unit(HEALTH)
    assert one(health, "Service", "Type") == "oneshot"
    assert not values(health, "Service", "SuccessExitStatus"), "the exit status is the result"
    assert one(health, "Service", "EnvironmentFile") == f"-{v1_layout.env_file}"
    assert exec_argv(one(health, "Service", "ExecStart")) == [
        str(BRIDGE_CLI), "healthcheck", "--config", str(v1_layout.config),
        "--service", SERVICE, "--telegraf-health", "--measurement", "demo", "--max-lag-min", "30",
    ]  # fmt: skip

    for name in (SERVICE, HEALTH, TIMER):
        assert (v1_layout.units / name).stat().st_mode & 0o777 == 0o644
        assert f"wrote {v1_layout.units / name} (mode 0644)" in result.output
    assert f"created {v1_layout.env_file} (mode 0600" in result.output
    for step in (
        f"systemctl enable --now {SERVICE} {TIMER}",
        f"systemctl status --no-pager -n 20 {SERVICE}",
        f"journalctl -u {SERVICE} -f",
        f"systemctl list-timers {TIMER}",
    ):
        assert step in result.output


def test_clock_sync_probe_survives_the_syscall_filter(v1_layout: Layout) -> None:
    # The plugins ask the kernel about clock sync with adjtimex, which @system-service lacks:
    # without the explicit entry the probe would fail (EPERM) and the guard would trust an
    # unsynchronised Pi Zero clock.
    assert v1_layout.install().exit_code == 0
    service = v1_layout.unit(SERVICE)
    allowed = one(service, "Service", "SystemCallFilter").split()
    assert "@system-service" in allowed and "adjtimex" in allowed
    granted = syscalls_of("@system-service")
    assert {"openat", "clock_gettime", "ioctl"} <= granted
    assert "adjtimex" not in granted
    assert one(service, "Service", "SystemCallErrorNumber") == "EPERM"


def test_data_dir_under_var_lib_is_a_state_directory(tmp_path: Path) -> None:
    layout = Layout(tmp_path, (EXAMPLES / "influxdb1.yaml").read_text())
    result = layout.install("--data-dir", "/var/lib/telegraf-bridge", "--dry-run")
    assert result.exit_code == 0, result.output
    service = parse_unit(dry_run_files(result.output)[str(layout.units / SERVICE)])
    # influxdb1.yaml's buffer and state live in /var/lib/telegraf-bridge: systemd creates and
    # owns the one directory; nothing else is writable.
    assert one(service, "Service", "StateDirectory") == "telegraf-bridge"
    assert not values(service, "Service", "ReadWritePaths")
    assert not Path("/var/lib/telegraf-bridge/telegraf.conf").exists()


def test_special_characters_are_escaped_for_systemd(tmp_path: Path) -> None:
    config = V1_CONFIG.format(port=free_port(), url="http://127.0.0.1:9", database="solar")
    layout = Layout(tmp_path, config)
    layout.data = tmp_path / "da%ta$x"
    topic = 'site "a" $HOME/%h'
    result = layout.install("--healthcheck-args", f"--mqtt-topic '{topic}'")
    assert result.exit_code == 0, result.output
    service = layout.unit(SERVICE)
    assert one(service, "Service", "WorkingDirectory") == f"{tmp_path}/da%%ta$x"
    assert exec_argv(values(service, "Service", "ExecStartPre")[1])[-1] == (
        f"{layout.data}/telegraf.conf"
    )
    health = exec_argv(one(layout.unit(HEALTH), "Service", "ExecStart"))
    assert health[-2:] == ["--mqtt-topic", topic]
    assert verify_problems(layout.units, SERVICE, HEALTH, TIMER) == []

    spaced = Layout(tmp_path / "s", config)
    spaced.data = tmp_path / "with space"
    refused = spaced.install()
    assert refused.exit_code == 1 and "contains whitespace" in refused.output


# -- systemd's own judgement ---------------------------------------------------------------------


def test_systemd_analyze_verify_accepts_the_units_and_catches_broken_ones(
    v1_layout: Layout,
) -> None:
    assert v1_layout.install().exit_code == 0
    assert verify_problems(v1_layout.units, SERVICE, HEALTH, TIMER) == []

    # The same check must fail on a typo'd directive, a bad value and a missing program.
    text = (v1_layout.units / SERVICE).read_text()
    broken = {
        "KilMode=mixed": "Unknown key 'KilMode'",
        "Type=notfy": "Failed to parse service type",
        "SystemCallFilter=@system-service adjtimexx": "Failed to parse system call",
    }
    for replacement, expected in broken.items():
        key = replacement.split("=", 1)[0].replace("KilMode", "KillMode")
        bad = re.sub(rf"^{key}=.*$", replacement, text, count=1, flags=re.MULTILINE)
        assert bad != text
        (v1_layout.units / SERVICE).write_text(bad)
        problems = verify_problems(v1_layout.units, SERVICE)
        assert any(expected in p for p in problems), (replacement, problems)
    (v1_layout.units / SERVICE).write_text(text.replace(str(BRIDGE_CLI), "/nonexistent/bridge-cli"))
    assert any("is not executable" in p for p in verify_problems(v1_layout.units, SERVICE))
    timer = (v1_layout.units / TIMER).read_text()
    (v1_layout.units / TIMER).write_text(timer.replace("*:0/10", "*:0/1O"))
    assert any("calendar" in p for p in verify_problems(v1_layout.units, TIMER))


def test_hardening_exposure_is_low(v1_layout: Layout) -> None:
    assert v1_layout.install().exit_code == 0
    for name, limit in ((SERVICE, 4.0), (HEALTH, 3.0)):
        done = analyze(
            "security", "--offline=yes", "--no-pager", str(v1_layout.units / name),
            unit_dir=v1_layout.units,
        )  # fmt: skip
        match = re.search(rf"Overall exposure level for {re.escape(name)}: ([\d.]+)", done.stdout)
        assert match, done.stdout + done.stderr
        assert float(match.group(1)) <= limit, f"{name}: exposure {match.group(1)}"


def test_timer_runs_the_check_every_10_minutes(v1_layout: Layout) -> None:
    assert v1_layout.install().exit_code == 0
    timer = v1_layout.unit(TIMER)
    assert one(timer, "Timer", "Persistent") == "true"
    assert seconds(one(timer, "Timer", "RandomizedDelaySec")) <= 60
    assert one(timer, "Install", "WantedBy") == "timers.target"
    spec = one(timer, "Timer", "OnCalendar")
    done = analyze("calendar", "--iterations=4", spec)
    assert done.returncode == 0, done.stderr
    elapses = [
        datetime.strptime(m, "%Y-%m-%d %H:%M:%S")
        for m in re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+)", done.stdout)
    ]
    assert len(elapses) == 4, done.stdout
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(elapses)}
    assert gaps == {600.0}
    assert all(moment.minute % 10 == 0 and moment.second == 0 for moment in elapses)


# -- the commands in the units, run for real -----------------------------------------------------


def run_exec(line: str, unit: dict[str, list[tuple[str, str]]]) -> subprocess.CompletedProcess[str]:
    """Run one Exec line as systemd would: its working directory and environment, no stdin."""
    return subprocess.run(
        exec_argv(line),
        cwd=one(unit, "Service", "WorkingDirectory").replace("%%", "%"),
        env=unit_env(unit),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=120,
    )


@pytest.mark.telegraf
def test_exec_start_pre_renders_and_checks_and_a_bad_edit_fails_the_start(
    v1_layout: Layout, telegraf_bin: Path
) -> None:
    assert v1_layout.install().exit_code == 0
    service = v1_layout.unit(SERVICE)
    conf = v1_layout.data / "telegraf.conf"
    for line in values(service, "Service", "ExecStartPre"):
        done = run_exec(line, service)
        assert done.returncode == 0, done.stdout + done.stderr
    assert conf.stat().st_mode & 0o777 == 0o600
    assert "config check: OK" in done.stdout
    check = subprocess.run(
        [str(telegraf_bin), "config", "check", "--config", str(conf)],
        capture_output=True,
        text=True,
        check=False,
        env=unit_env(service),
        cwd=v1_layout.data,  # the relative buffer path resolves (and is created) there
    )
    assert check.returncode == 0, check.stdout + check.stderr

    # An invalid edit: the first ExecStartPre fails (so systemd never starts Telegraf), names
    # the problem for the journal, and leaves the last good telegraf.conf alone.
    good = conf.read_text()
    v1_layout.config.write_text(v1_layout.config.read_text().replace("interval:", "intervall:", 1))
    render_line = values(service, "Service", "ExecStartPre")[0]
    failed = run_exec(render_line, service)
    assert failed.returncode != 0
    assert "agent.intervall is not a known option" in failed.stderr
    assert conf.read_text() == good


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET (short path: sun_path limit)."""
    directory = tempfile.mkdtemp(prefix="sdn-", dir="/tmp")
    path = f"{directory}/notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(60)
    try:
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(directory, ignore_errors=True)


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def wait_until(what: str, check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.telegraf
@pytest.mark.influxd
def test_the_service_runs_healthy_and_the_health_check_judges_it(
    tmp_path: Path, influxd: InfluxD1, notify_socket: tuple[socket.socket, str]
) -> None:
    port = free_port()
    database = f"systemd_{os.getpid()}_{time.monotonic_ns()}"
    layout = Layout(tmp_path, V1_CONFIG.format(port=port, url=influxd.url, database=database))
    result = layout.install("--healthcheck-args", "--measurement demo --max-lag-min 5")
    assert result.exit_code == 0, result.output
    service, health = layout.unit(SERVICE), layout.unit(HEALTH)
    for line in values(service, "Service", "ExecStartPre"):
        done = run_exec(line, service)
        assert done.returncode == 0, done.stdout + done.stderr

    sock, sock_path = notify_socket
    log = (tmp_path / "telegraf.log").open("w")
    telegraf = subprocess.Popen(
        exec_argv(one(service, "Service", "ExecStart")),
        cwd=layout.data,
        env={**unit_env(service), "NOTIFY_SOCKET": sock_path},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    # `systemctl is-active` for the health check's --service: no systemd here, so a stand-in
    # answers from the real Telegraf process.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "systemctl").write_text(
        f"#!/bin/sh\nif kill -0 {telegraf.pid} 2>/dev/null; then echo active; exit 0; fi\n"
        "echo inactive; exit 3\n"
    )
    (bindir / "systemctl").chmod(0o755)
    health_env = unit_env(health, path=f"{bindir}:/usr/bin:/bin")
    health_argv = exec_argv(one(health, "Service", "ExecStart"))
    try:
        assert b"READY=1" in sock.recv(4096), "Type=notify: Telegraf reports readiness"
        wait_until("the health endpoint", lambda: http_status(f"http://127.0.0.1:{port}/") == 200)
        wait_until("points in influxd", lambda: influxd.count("demo", "power_w", db=database) > 0)
        check = subprocess.run(
            health_argv, env=health_env, capture_output=True, text=True, check=False, timeout=60
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.startswith("OK healthy measurement=demo ")
        assert f"service[{SERVICE}]=active" in check.stdout
    finally:
        # KillMode=mixed: SIGTERM to Telegraf only; it stops the plugins itself.
        telegraf.send_signal(signal.SIGTERM)
        try:
            code = telegraf.wait(timeout=seconds(one(service, "Service", "TimeoutStopSec")))
        finally:
            telegraf.kill()
            log.close()
    log_text = (tmp_path / "telegraf.log").read_text()
    assert code == 0, log_text
    # execd logs its pipes closing at shutdown as errors (check-config ignores them too).
    errors = [
        line
        for line in log_text.splitlines()
        if " E! " in line and not re.search(r"Error in plugin: .*file already closed", line)
    ]
    assert errors == [], log_text
    # Relative buffer and state paths landed under WorkingDirectory.
    assert (layout.data / "buffer").is_dir() and (layout.data / "state").is_dir()
    assert list((layout.data / "state").glob("demo-*.json")), "the plugin saved its state"

    down = subprocess.run(
        health_argv, env=health_env, capture_output=True, text=True, check=False, timeout=60
    )
    assert down.returncode == 2, "CRIT fails the health check unit"
    assert down.stdout.startswith("CRIT service_not_active ")


# -- the env file --------------------------------------------------------------------------------


def test_env_file_is_0600_with_names_and_never_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "canary-token-must-not-appear"
    monkeypatch.setenv("INFLUX_TOKEN", canary)
    layout = Layout(tmp_path, V2_CONFIG)
    result = layout.install()
    assert result.exit_code == 0, result.output
    assert layout.env_file.stat().st_mode & 0o777 == 0o600
    text = layout.env_file.read_text()
    assert "#INFLUX_TOKEN=\n" in text
    assert read_env_file(layout.env_file) == {}, "only comments"
    assert f"sudoedit {layout.env_file}   # set INFLUX_TOKEN" in result.output
    for written in [layout.env_file, *layout.units.iterdir()]:
        assert canary not in written.read_text()
    assert canary not in result.output

    # An existing env file is kept as it is; a variable it lacks is named.
    layout.env_file.write_text("INFLUX_TOKEN=real-value\n")
    layout.env_file.chmod(0o644)
    again = layout.install()
    assert again.exit_code == 0, again.output
    assert layout.env_file.read_text() == "INFLUX_TOKEN=real-value\n"
    assert f"kept {layout.env_file} (exists)" in again.output
    assert f"{layout.env_file} is readable by others: sudo chmod 600" in again.output
    assert "real-value" not in again.output
    layout.env_file.write_text("# nothing set\n")
    assert "does not set INFLUX_TOKEN" in layout.install().output


# -- refusals and the write rules -----------------------------------------------------------------


def test_root_is_refused_unless_allowed(v1_layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = v1_layout.install(user=("--user", "root"))
    assert refused.exit_code == 1
    assert "refusing to run Telegraf as root" in refused.output
    monkeypatch.delenv("SUDO_USER", raising=False)
    if os.geteuid() == 0:  # the default user is then root itself
        default = v1_layout.install(user=())
        assert default.exit_code == 1 and "refusing to run Telegraf as root" in default.output
    assert list(v1_layout.units.iterdir()) == [] and not v1_layout.env_file.exists()
    monkeypatch.setenv("SUDO_USER", "daemon")
    assert host.default_user() == "daemon"


def test_bad_input_gives_clear_errors(v1_layout: Layout, tmp_path: Path) -> None:
    cases = {
        ("--config", str(tmp_path / "missing.yaml")): "does not exist; write one with",
        ("--user", "no-such-user-here"): "unknown user 'no-such-user-here'",
        ("--unit-dir", str(tmp_path / "no-units")): "does not exist",
        ("--telegraf", str(tmp_path / "none")): "is not an executable file",
        ("--group", "no-such-group"): "--group no-such-group: no such group",
        ("--healthcheck-args", "--max-lag 5"): "No such option '--max-lag'",
        ("--healthcheck-args", "--sink nope"): "no sink named 'nope'",
        ("--healthcheck-args", "--config x.yaml"): "leave out --config",
        ("--enable",): "systemd does not load units from",
    }
    for args, expected in cases.items():
        result = v1_layout.install(*args)
        assert result.exit_code == 1, (args, result.output)
        assert expected in result.output, (args, result.output)
    v1_layout.config.write_text("agent:\n  buffer_strategy: tape\n")
    invalid = v1_layout.install()
    assert invalid.exit_code == 1
    assert "the config does not render" in invalid.output and "'tape'" in invalid.output
    assert list(v1_layout.units.iterdir()) == []


def test_a_user_who_cannot_run_telegraf_is_refused(v1_layout: Layout, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("checking as another user needs root (tests run as root in CI)")
    pwd.getpwnam("nobody")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "telegraf").symlink_to(os.environ["TELEGRAF_BIN"])
    result = v1_layout.install("--telegraf", str(private / "telegraf"), user=("--user", "nobody"))
    assert result.exit_code == 1
    assert f"nobody cannot run {private / 'telegraf'}" in result.output
    assert list(v1_layout.units.iterdir()) == []


def test_dry_run_writes_nothing_and_prints_what_install_writes(v1_layout: Layout) -> None:
    result = v1_layout.install("--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: nothing written" in result.output
    assert list(v1_layout.units.iterdir()) == []
    assert not v1_layout.env_file.exists() and not v1_layout.data.exists()
    printed = dry_run_files(result.output)
    assert v1_layout.install().exit_code == 0
    written = [v1_layout.units / n for n in (SERVICE, HEALTH, TIMER)] + [v1_layout.env_file]
    assert printed == {str(path): path.read_text() for path in written}


def test_a_differing_unit_needs_force_and_an_equal_one_is_left(v1_layout: Layout) -> None:
    assert v1_layout.install().exit_code == 0
    path = v1_layout.units / SERVICE
    installed = path.read_text()
    same = v1_layout.install()
    assert same.exit_code == 0 and f"unchanged {path} (mode 0644)" in same.output

    path.write_text(installed.replace("RestartSec=15s", "RestartSec=1s"))
    refused = v1_layout.install()
    assert refused.exit_code == 1
    assert "-RestartSec=1s\n+RestartSec=15s" in refused.output
    assert "Re-run with --force" in refused.output
    assert "RestartSec=1s" in path.read_text()
    forced = v1_layout.install("--force")
    assert forced.exit_code == 0 and f"wrote {path} (mode 0644)" in forced.output
    assert path.read_text() == installed


def test_without_an_influxdb_sink_only_the_service_is_written(tmp_path: Path) -> None:
    layout = Layout(tmp_path, (EXAMPLES / "demo.yaml").read_text())
    result = layout.install()
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in layout.units.iterdir()) == [SERVICE]
    assert "no InfluxDB sink" in result.output
    assert f"systemctl enable --now {SERVICE}\n" in result.output
    # demo.yaml's relative ./var paths resolve under the data dir, which is writable.
    service = layout.unit(SERVICE)
    assert values(service, "Service", "ReadWritePaths") == [f"-{layout.data}"]
    assert verify_problems(layout.units, SERVICE) == []


def test_the_health_check_watches_the_configs_measurement(v1_layout: Layout) -> None:
    result = v1_layout.install("--dry-run")
    assert result.exit_code == 0, result.output
    assert "watches measurement demo (from the config's sources)" in result.output
    two = V1_CONFIG.format(port=free_port(), url="http://127.0.0.1:9", database="solar")
    two = two.replace(
        "sinks:", "  - {name: tigo, plugin: taptap, options: {serial: /dev/x}}\nsinks:"
    )
    v1_layout.config.write_text(two)
    refused = v1_layout.install()
    assert refused.exit_code == 1
    assert "demo (source demo), tigo_power_report (source tigo)" in refused.output
    assert "--healthcheck-args '--measurement NAME'" in refused.output
    assert list(v1_layout.units.iterdir()) == []
    chosen = v1_layout.install("--healthcheck-args", "--measurement demo")
    assert chosen.exit_code == 0, chosen.output


def test_no_healthcheck_skips_the_health_units(v1_layout: Layout) -> None:
    result = v1_layout.install("--no-healthcheck")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in v1_layout.units.iterdir()) == [SERVICE]


def test_enable_reports_a_failing_systemctl(capsys: pytest.CaptureFixture[str]) -> None:
    # --enable runs the real systemctl. A query about a unit that does not exist fails with or
    # without a running systemd (and changes nothing): the error names the command, and
    # systemctl's own message is shown.
    if shutil.which("systemctl") is None:
        pytest.fail("systemctl is missing: sudo apt-get install systemd")
    unit = "telegraf-bridge-no-such-unit.service"
    with pytest.raises(InstallError, match=f"systemctl is-enabled {unit} failed"):
        install.systemctl("is-enabled", unit)
    shown = capsys.readouterr().out
    assert shown.startswith(f"$ systemctl is-enabled {unit}\n") and len(shown.splitlines()) > 1
