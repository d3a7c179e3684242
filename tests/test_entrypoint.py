"""The container entrypoint and health probe, run directly (no container engine here).

The images run ``bridge-entrypoint`` under tini; these tests run the same console script with
the same environment a container gets, the real Telegraf, and the real InfluxDB 2 on loopback,
and ``bridge-healthprobe`` against Telegraf's real health output.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from rig import InfluxD1, InfluxD2, free_port, wait_for
from telegraf_bridge.telegraf import entrypoint, healthprobe

BIN = Path(sys.executable).parent
TOKEN = "entrypoint-secret-token-0123456789"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A container's environment: no bridge.yaml mounted, root kept.

    Dropping root is tested on its own below: the interpreter here lives under /root, which an
    unprivileged user cannot read, so a whole run must stay root in this sandbox.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "INFLUX"))}
    env.update(
        BRIDGE_DATA_DIR=str(data_dir),
        BRIDGE_RUN_AS="root",
        BRIDGE_AGENT_HEALTH_LISTEN=f"127.0.0.1:{free_port()}",
    )
    env.update(extra)
    return env


@pytest.fixture
def no_default_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The default mount point must not exist on the test machine either."""
    monkeypatch.setattr(entrypoint, "DEFAULT_CONFIG", tmp_path / "not-mounted.yaml")


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "bridge-entrypoint"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _run(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "bridge-entrypoint"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "bridge-healthprobe")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# -- which config -----------------------------------------------------------------------------


def test_config_precedence(tmp_path: Path, no_default_config: None) -> None:
    mounted = tmp_path / "bridge.yaml"
    mounted.write_text("sources: []\n")
    inline = entrypoint.choose_config({"BRIDGE_CONFIG_YAML": "agent: {}\n", "BRIDGE_CONFIG": ""})
    assert inline.text == "agent: {}\n"
    assert inline.label == "$BRIDGE_CONFIG_YAML"
    from_file = entrypoint.choose_config({"BRIDGE_CONFIG": str(mounted)})
    assert from_file.path == mounted
    default = entrypoint.choose_config({})
    assert default.path is None
    assert default.text is not None
    assert "plugin: demo" in default.text


def test_a_named_config_that_is_missing_is_an_error_not_the_demo(
    tmp_path: Path, no_default_config: None
) -> None:
    with pytest.raises(entrypoint.EntrypointError, match=r"absent\.yaml does not exist"):
        entrypoint.choose_config({"BRIDGE_CONFIG": str(tmp_path / "absent.yaml")})


def test_relative_paths_land_in_the_data_dir_and_health_is_always_on(
    tmp_path: Path, no_default_config: None
) -> None:
    yaml_text = (
        "agent: {health_listen: '', buffer_directory: buf, state_directory: st}\n"
        "sources: [{name: demo, plugin: demo}]\n"
        "sinks: [{name: out, type: file, path: out/metrics.lp}]\n"
    )
    settings, _ = entrypoint.load(
        {"BRIDGE_CONFIG_YAML": yaml_text, "BRIDGE_HEALTH_LISTEN": "127.0.0.1:9999"}, tmp_path
    )
    assert settings.agent.buffer_directory == str(tmp_path / "buf")
    assert settings.agent.state_directory == str(tmp_path / "st")
    assert settings.sinks[0].path == str(tmp_path / "out" / "metrics.lp")
    assert settings.agent.health_listen == "127.0.0.1:9999"


def test_default_buffer_and_state_follow_the_data_dir(tmp_path: Path) -> None:
    """balena mounts /data: a config that names no directories must still buffer there."""
    yaml_text = (
        "sources: [{name: demo, plugin: demo}]\nsinks: [{name: o, type: file, path: o.lp}]\n"
    )
    settings, _ = entrypoint.load({"BRIDGE_CONFIG_YAML": yaml_text}, tmp_path)
    assert settings.agent.buffer_directory == str(tmp_path / "buffer")
    assert settings.agent.state_directory == str(tmp_path / "state")
    explicit = "agent: {buffer_directory: /elsewhere/buf}\n" + yaml_text
    settings, _ = entrypoint.load({"BRIDGE_CONFIG_YAML": explicit}, tmp_path)
    assert settings.agent.buffer_directory == "/elsewhere/buf"


# -- env -> rendered config -> check -> Telegraf --------------------------------------------------


@pytest.mark.telegraf
@pytest.mark.influxd2
def test_env_only_container_renders_checks_and_delivers(influxd2: InfluxD2, tmp_path: Path) -> None:
    """Seed 000's variables alone: the demo reaches the real v2 API; the token is only
    referenced."""
    data = tmp_path / "data"
    org = influxd2.new_org("smartsolar")
    token = influxd2.create_token([("write", "smartsolar")], org=org, description="seed 000")
    env = _env(
        data,
        INFLUX_URL=influxd2.url,
        INFLUX_TOKEN=token,
        INFLUX_ORG=org,
        INFLUX_BUCKET="smartsolar",
        BRIDGE_AGENT_INTERVAL="1s",
        BRIDGE_AGENT_FLUSH_INTERVAL="1s",
    )
    proc = _start(env)
    try:
        wait_for(
            lambda: (
                influxd2.count("smartsolar", "demo", "power_w", org=org) > 0
                or proc.poll() is not None
            ),
            timeout=60,
            what="demo points in the v2 bucket",
        )
        assert proc.poll() is None, proc.communicate()[0]
        probe = _probe(env)
        assert probe.returncode == 0, probe.stdout
        assert "healthy" in probe.stdout
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert "telegraf config check: OK" in output
    assert "rendered " in output
    rendered = (data / "telegraf.conf").read_text()
    assert "${INFLUX_TOKEN}" in rendered
    assert token not in rendered
    assert token not in output
    assert oct((data / "telegraf.conf").stat().st_mode & 0o777) == "0o600"
    # Buffer and state on the volume, as the images declare it.
    assert any((data / "buffer").iterdir())
    assert (data / "state").is_dir()
    # The health probe learns the rendered address from the data dir.
    assert (data / ".health-listen").read_text().strip() == env["BRIDGE_AGENT_HEALTH_LISTEN"]


@pytest.mark.telegraf
def test_demo_default_writes_into_the_data_dir(tmp_path: Path) -> None:
    assert not entrypoint.DEFAULT_CONFIG.exists(), "a bridge.yaml at the mount point here"
    data = tmp_path / "data"
    env = _env(data, BRIDGE_AGENT_INTERVAL="1s", BRIDGE_AGENT_FLUSH_INTERVAL="1s")
    proc = _start(env)
    try:
        wait_for(
            lambda: (
                ((data / "metrics.lp").exists() and (data / "metrics.lp").stat().st_size > 0)
                or proc.poll() is not None
            ),
            timeout=60,
            what="demo points in the file sink",
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    assert "embedded container default" in output
    assert (data / "metrics.lp").read_text().startswith("demo,")
    assert any((data / "smartsolar").glob("*.ndjson"))


def test_a_second_container_on_the_same_data_dir_refuses(tmp_path: Path) -> None:
    """The first Telegraf keeps the directory lock across exec; the second start says who."""
    data = tmp_path / "data"
    env = _env(data, BRIDGE_AGENT_INTERVAL="1s", BRIDGE_AGENT_FLUSH_INTERVAL="1s")
    first = _start(env)
    try:
        wait_for(
            lambda: (data / "metrics.lp").exists() or first.poll() is not None,
            timeout=60,
            what="the first Telegraf writing",
        )
        second = _run({**env, "BRIDGE_AGENT_HEALTH_LISTEN": f"127.0.0.1:{free_port()}"})
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.communicate(timeout=60)
    assert second.returncode == 1, second.stderr
    assert "in use by another Telegraf of this bundle" in second.stderr
    assert f"pid {first.pid}" in second.stderr, "the pid is Telegraf's (exec kept it)"


def test_invalid_config_exits_78_naming_every_problem(tmp_path: Path) -> None:
    env = _env(
        tmp_path / "data",
        BRIDGE_CONFIG_YAML="agent: {interval: soon}\nsources: [{name: x, plugin: nope}]\n",
    )
    result = _run(env)
    assert result.returncode == entrypoint.EX_CONFIG, result.stderr
    assert "$BRIDGE_CONFIG_YAML" in result.stderr
    assert "interval" in result.stderr
    assert "nope" in result.stderr
    assert "Loading config" not in result.stderr  # Telegraf never started


@pytest.mark.influxd
def test_a_refused_password_stops_start_up_before_telegraf(tmp_path: Path) -> None:
    """Telegraf's InfluxDB 1.x output drops what a sink refuses: better not to start at all."""
    with InfluxD1(tmp_path / "influxd", auth_enabled=True) as server:
        yaml_text = (
            "sources: [{name: demo, plugin: demo}]\n"
            f"sinks: [{{name: influx, type: influxdb_v1, url: '{server.url}', database: d,"
            " username: admin, password_env: INFLUX_PW}]\n"
        )
        env = _env(tmp_path / "data", BRIDGE_CONFIG_YAML=yaml_text, INFLUX_PW="not-it")
        result = _run(env)
    assert result.returncode == entrypoint.EX_CONFIG, result.stderr
    assert "E! [entrypoint] preflight fail" in result.stderr
    assert "401" in result.stderr
    assert "not-it" not in result.stderr
    assert "Loading config" not in result.stderr  # Telegraf never started


def test_a_referenced_variable_that_is_unset_stops_start_up(tmp_path: Path) -> None:
    yaml_text = (
        "sources: [{name: demo, plugin: demo}]\n"
        "sinks: [{name: cloud, type: influxdb_v2, url: 'http://127.0.0.1:1', organization: o,"
        " bucket: b, token_env: CLOUD_TOKEN}]\n"
    )
    result = _run(_env(tmp_path / "data", BRIDGE_CONFIG_YAML=yaml_text))
    assert result.returncode == entrypoint.EX_CONFIG
    assert "CLOUD_TOKEN" in result.stderr
    assert "not set" in result.stderr


def test_a_token_file_with_a_newline_stops_start_up(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    yaml_text = (
        "sources: [{name: demo, plugin: demo}]\n"
        "sinks: [{name: cloud, type: influxdb_v2, url: 'http://127.0.0.1:1', organization: o,"
        f" bucket: b, token_file: {token}}}]\n"
    )
    result = _run(_env(tmp_path / "data", BRIDGE_CONFIG_YAML=yaml_text))
    assert result.returncode == entrypoint.EX_CONFIG
    assert "newline" in result.stderr
    assert TOKEN not in result.stderr


def test_other_commands_run_instead_in_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data, PATH=f"{BIN}:{os.environ['PATH']}")  # the images put the venv on PATH
    result = _run(env, "sh", "-c", "pwd; bridge-cli --version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(data)
    assert "bridge-cli" in lines[1]
    missing = _run(_env(data), "no-such-command-here")
    assert missing.returncode == 1
    assert "no-such-command-here" in missing.stderr


# -- dropping root --------------------------------------------------------------------------------

_DROP = """
import json, os, sys
from pathlib import Path
from telegraf_bridge.telegraf import entrypoint
data = Path(sys.argv[1])
env = {}
entrypoint.drop_privileges("nobody", data, env)
print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                  "groups": os.getgroups(), "env": env}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping root needs root (CI runs as root)")
def test_drop_privileges_hands_over_the_data_dir_but_follows_no_link(tmp_path: Path) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    data = tmp_path / "data"
    (data / "buffer" / "influxdb_v2").mkdir(parents=True)
    (data / "buffer" / "influxdb_v2" / "00000001.wal").write_bytes(b"x")
    (data / "state").mkdir()
    outside = tmp_path / "outside-secret"
    outside.write_text("keep me root's")
    (data / "state" / "link").symlink_to(outside)
    result = subprocess.run(
        [sys.executable, "-c", _DROP, str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["uid"] == report["euid"] == nobody.pw_uid
    assert report["gid"] == nobody.pw_gid
    assert 0 not in report["groups"]
    assert report["env"]["USER"] == "nobody"
    for path in [data, *data.rglob("*")]:
        assert path.lstat().st_uid == nobody.pw_uid, path
    assert outside.stat().st_uid == 0
    assert "running as nobody" in result.stderr


def test_unknown_run_as_user_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root drops privileges")
    result = _run({**_env(tmp_path / "data"), "BRIDGE_RUN_AS": "no-such-user-x"})
    assert result.returncode == entrypoint.EX_CONFIG
    assert "BRIDGE_RUN_AS=no-such-user-x: no such user" in result.stderr


def test_device_nodes_lend_their_group_or_a_warning(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    shared = dev / "gpiochip0"
    shared.write_text("")
    shared.chmod(0o660)
    os.chown(shared, -1, 997)
    private = dev / "ttyUSB0"
    private.write_text("")
    private.chmod(0o600)
    ignored = dev / "sda"
    ignored.write_text("")
    gids, warnings = entrypoint.device_groups(dev)
    assert gids == {997}
    assert len(warnings) == 1
    assert "ttyUSB0" in warnings[0]
    assert "BRIDGE_RUN_AS=root" in warnings[0]


# -- the health probe -----------------------------------------------------------------------------


class _Status(http.server.BaseHTTPRequestHandler):
    status = 503

    def do_GET(self) -> None:
        body = b"unhealthy: buffer"
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_probe_reports_unhealthy_and_unreachable(tmp_path: Path, status_server: int) -> None:
    env = {"BRIDGE_DATA_DIR": str(tmp_path), "BRIDGE_HEALTH_LISTEN": f"0.0.0.0:{status_server}"}
    assert healthprobe.health_url(env) == f"http://127.0.0.1:{status_server}/"
    healthy, reason = healthprobe.probe(healthprobe.health_url(env))
    assert not healthy
    assert "503" in reason
    assert "unhealthy: buffer" in reason
    closed = free_port()
    (tmp_path / ".health-listen").write_text(f"127.0.0.1:{closed}\n")
    result = _probe({**os.environ, **env})
    assert result.returncode == 1
    assert f"127.0.0.1:{closed}" in result.stdout
    assert "not answering" in result.stdout


def test_probe_imports_nothing_heavy() -> None:
    """Docker runs it every 30 s (every 60 s on a Pi Zero): keep it to the standard library."""
    code = (
        "import sys, runpy; sys.argv=['x']\n"
        "import telegraf_bridge.telegraf.healthprobe as p\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('click','jinja2','yaml','watchdog')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.telegraf
def test_busy_health_port_is_named_and_telegraf_still_delivers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data, BRIDGE_AGENT_INTERVAL="1s", BRIDGE_AGENT_FLUSH_INTERVAL="1s")
    port = int(env["BRIDGE_AGENT_HEALTH_LISTEN"].rpartition(":")[2])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        proc = _start(env)
        try:
            wait_for(
                lambda: (
                    ((data / "metrics.lp").exists() and (data / "metrics.lp").stat().st_size > 0)
                    or proc.poll() is not None
                ),
                timeout=60,
                what="demo points in the file sink",
            )
            assert proc.poll() is None, "Telegraf stopped on the busy health port"
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            output = proc.communicate(timeout=60)[0]
    assert (
        f"W! [entrypoint] preflight warn  health port: cannot listen on 127.0.0.1:{port}" in output
    )
    assert "agent.health_listen" in output
    assert "[[outputs.health]]" not in (data / "telegraf.conf").read_text()
    assert (data / "metrics.lp").read_text().startswith("demo,")
