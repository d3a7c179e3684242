"""Preflight: what will stop data before Telegraf starts, each with one line naming the fix.

Why a module of its own: ``check-config``, ``run`` and the container entrypoint must ask the
same questions before Telegraf starts, so a user never hears "OK" while a sink refuses every
write. The questions:

- each enabled InfluxDB sink: reachable, and its credentials accepted by a read-only request
  (InfluxDB 1.x ``/ping`` then ``SHOW DATABASES``; v2/Cloud ``GET /api/v2/buckets?name=``;
  InfluxDB 3 ``SHOW TABLES`` over ``/api/v3/query_sql``), made with the query layer's HTTP and
  credential code (:mod:`telegraf_bridge.cli.influx`), short timeouts, no secret printed;
- the health port (``agent.health_listen``) free: Telegraf stops entirely when its health
  output cannot listen, so a busy port is a warning plus :func:`health_fallback`, which
  renders without the health output and lets data flow;
- the clock: the kernel's sync flag against ``agent.require_clock_sync``, and the floor.

Levels: ``ok`` (nothing to do); ``warn`` (nothing is lost, but data is buffered, held or a
feature is off: an unreachable sink, a busy health port, an unsynchronised clock); ``fail``
(data would be refused or dropped until the fix is applied: credentials refused, a token
variable unset or a token file unreadable).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import socket
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import click
from telegraf_bridge.cli import schema
from telegraf_bridge.cli.config_model import (
    InfluxSink,
    Sink,
    SourceConfig,
    V1Sink,
    agent_from,
    build,
    sink_from,
)
from telegraf_bridge.cli.influx.sinks import open_sink
from telegraf_bridge.cli.influx.transport import SinkError
from telegraf_bridge.cli.influx.v1 import InfluxV1Client
from telegraf_bridge.cli.influx.v2 import InfluxV2Client
from telegraf_bridge.cli.influx.v3 import InfluxV3Client
from telegraf_bridge.cli.settings import Settings
from telegraf_bridge.plugins.common._clock import kernel_clock_synchronised, parse_time_floor

Level = Literal["ok", "warn", "fail"]
LEVELS: tuple[Level, ...] = ("ok", "warn", "fail")
# Seconds per request: a preflight must not hold up a start-up for a sink that is down.
DEFAULT_TIMEOUT_S = 3.0
HEALTH_BUSY = "health_port_busy"
PROC = Path("/proc")


@dataclass(frozen=True)
class Finding:
    """One preflight result: ``code`` is stable for programs, the rest is for people."""

    level: Level
    subject: str
    message: str
    fix: str = ""
    code: str = ""

    def line(self) -> str:
        """``preflight warn  health port: ... -> fix``, one line."""
        fix = f"; fix: {self.fix}" if self.fix else ""
        return f"preflight {self.level:<4}  {self.subject}: {self.message}{fix}"


def preflight(
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    clock_probe: Callable[[], bool | None] = kernel_clock_synchronised,
) -> list[Finding]:
    """Every check, in the order they are shown: sinks, health port, clock."""
    environ = os.environ if env is None else env
    checked = (check_sink(sink, environ, timeout) for sink in settings.active_influx_sinks())
    findings = [f for f in checked if f is not None]
    health = check_health_port(settings.agent.health_listen)
    if health is not None:
        findings.append(health)
    findings.append(check_clock(settings, probe=clock_probe))
    return findings


def has_failures(findings: Iterable[Finding]) -> bool:
    """Whether any finding is a ``fail``."""
    return any(f.level == "fail" for f in findings)


def print_findings(
    findings: Iterable[Finding], echo: Callable[[str], Any] = click.echo, *, quiet_ok: bool = False
) -> None:
    """One line per finding (``quiet_ok`` leaves the ``ok`` ones out)."""
    for finding in findings:
        if quiet_ok and finding.level == "ok":
            continue
        echo(finding.line())


def health_fallback(settings: Settings, findings: Iterable[Finding]) -> Settings:
    """``settings`` without the health output when preflight found its port busy.

    A copy (the caller's settings are left alone) with ``agent.health_listen`` empty, so the
    rendered telegraf.conf has no ``outputs.health`` and Telegraf starts and writes data
    instead of stopping on the busy port. Unchanged when the port was free.
    """
    if not any(f.code == HEALTH_BUSY for f in findings):
        return settings
    return dataclasses.replace(
        settings, agent=dataclasses.replace(settings.agent, health_listen="")
    )


# -- sinks ---------------------------------------------------------------------------------------


def _subject(sink: InfluxSink) -> str:
    return f"sink {sink.name} ({sink.type})"


def _credential_fix(sink: InfluxSink) -> str:
    name = sink.name
    if isinstance(sink, V1Sink):
        where = f"${sink.password_env}" if sink.password_env else "password_env"
        user = sink.username
        if not user:
            return (
                f"the server requires authentication: set sinks.{name}.username and "
                f"sinks.{name}.password_env"
            )
        return f"check sinks.{name}.username ({user}) and the password in {where}"
    if sink.token_env:
        return f"check the token in ${sink.token_env} (sinks.{name}.token_env)"
    if sink.token_file:
        return f"check the token in {sink.token_file} (sinks.{name}.token_file)"
    return f"the server requires a token: set sinks.{name}.token_env or token_file"


def _config_fix(sink: InfluxSink, message: str) -> str:
    var = sink.password_env if isinstance(sink, V1Sink) else sink.token_env
    if var and var in message:
        return f"export {var}=... in the environment that runs Telegraf"
    token_file = "" if isinstance(sink, V1Sink) else sink.token_file
    if token_file and token_file in message:
        return f"make {token_file} exist, non-empty and readable by this user"
    return f"fix sinks.{sink.name} in the config"


def check_sink(sink: InfluxSink, env: Mapping[str, str], timeout: float) -> Finding | None:
    """Reachable and credentials accepted (read-only); None for a sink with nothing to ask."""
    subject = _subject(sink)
    try:
        query = open_sink(sink, env, timeout=timeout)
        if isinstance(query, InfluxV1Client):
            return _probe_v1(query, sink, subject)
        if isinstance(query, InfluxV2Client):
            return _probe_v2(query, sink, subject)
        if isinstance(query, InfluxV3Client):
            return _probe_v3(query, sink, subject)
    except SinkError as exc:
        message = str(exc).removeprefix(f"sink {sink.name!r}: ")
        if exc.reason == "config_error":
            return Finding("fail", subject, message, _config_fix(sink, message), "sink_config")
        if exc.reason == "auth_failed":
            return Finding("fail", subject, message, _credential_fix(sink), "sink_auth_failed")
        if exc.reason == "unreachable":
            # A warning, not a failure: Telegraf buffers on disk until the sink answers, so
            # nothing is lost, and a start-up check must not keep Telegraf (and the plugins
            # that read devices) from running through an outage.
            fix = (
                f"start InfluxDB or correct sinks.{sink.name}.url; until then Telegraf "
                "buffers on disk"
            )
            return Finding("warn", subject, message, fix, "sink_unreachable")
        return Finding(
            "fail", subject, message, f"check sinks.{sink.name} in the config", "sink_refused"
        )
    return None  # pragma: no cover - open_sink returns one of the three


def _probe_v1(query: InfluxV1Client, sink: InfluxSink, subject: str) -> Finding:
    ping = query.ping()
    if ping.status != 204:
        return Finding(
            "fail",
            subject,
            f"{query.http.base}/ping answered HTTP {ping.status}: not an InfluxDB 1.x server",
            f"correct sinks.{sink.name}.url or sinks.{sink.name}.type",
            "sink_refused",
        )
    databases: set[str] = set()
    for result in query.statements("SHOW DATABASES"):
        for series in result.series:
            databases.update(str(row[0]) for row in series.values)
    if query.database not in databases:
        return Finding(
            "warn",
            subject,
            f"reachable and credentials accepted, but database {query.database!r} is not "
            "listed for this user; Telegraf creates it only with admin rights",
            f"create it (bridge-cli setup-influxdb, or CREATE DATABASE {query.database}) or "
            f"fix sinks.{sink.name}.database",
            "sink_database_missing",
        )
    return Finding("ok", subject, f"{query.describe()}: reachable, credentials accepted")


def _probe_v2(query: InfluxV2Client, sink: InfluxSink, subject: str) -> Finding:
    reply = query.buckets({"name": query.bucket, "org": query.org})
    if reply.status != 200:
        # A real InfluxDB 2.x answers a missing bucket with 404 `bucket "x" not found` (not
        # with an empty list) and an unknown organization with 404 too: the message tells them
        # apart. A token that may only write gets an empty list for a bucket that exists.
        if reply.status == 404 and reply.message() == f'bucket "{query.bucket}" not found':
            return _bucket_missing(query, sink, subject)
        if reply.status == 404:  # the organization is unknown (or invisible to the token)
            return Finding(
                "fail",
                subject,
                f"{query.http.base} does not know organization {query.org!r}: {reply.message()}",
                f"correct sinks.{sink.name}.organization (name or ID)",
                "sink_refused",
            )
        raise query.http.failure(reply, "listing buckets")
    doc = reply.json()
    buckets = doc.get("buckets") if isinstance(doc, dict) else None
    if not buckets:
        return _bucket_missing(query, sink, subject)
    return Finding("ok", subject, f"{query.describe()}: reachable, token accepted")


def _bucket_missing(query: InfluxV2Client, sink: InfluxSink, subject: str) -> Finding:
    """A warning: the token works, but the bucket Telegraf writes to is not (visibly) there."""
    return Finding(
        "warn",
        subject,
        f"token accepted, but bucket {query.bucket!r} in org {query.org!r} is not "
        "visible: it is missing, or the token may only write (writes to a missing bucket "
        "fail with 404)",
        f"create the bucket (bridge-cli setup-influxdb) or fix sinks.{sink.name}.bucket",
        "sink_bucket_missing",
    )


def _probe_v3(query: InfluxV3Client, sink: InfluxSink, subject: str) -> Finding:
    reply = query.query_sql(query.database, "SHOW TABLES")
    if reply.status == 200:
        return Finding("ok", subject, f"{query.describe()}: reachable, token accepted")
    if reply.status == 404 and "database not found" in reply.text:
        return Finding(
            "ok",
            subject,
            f"{query.describe()}: reachable, token accepted; the database is created by the "
            "first write",
        )
    if reply.status == 403:
        return Finding(
            "warn",
            subject,
            f"{query.describe()}: reachable, but the token may not read {query.database!r} "
            "(a write-only token is fine for Telegraf; it cannot be verified from here)",
            "",
            "sink_unverified",
        )
    raise query.http.failure(reply, "SHOW TABLES")


# -- health port ---------------------------------------------------------------------------------


def _split_listen(listen: str) -> tuple[str, int] | None:
    host, _, port = listen.removeprefix("http://").rpartition(":")
    if not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_health_port(listen: str) -> Finding | None:
    """A warning when ``listen`` (host:port) cannot be bound; None when no health output.

    The probe binds the way Telegraf's Go listener does (``SO_REUSEADDR``), so a port left
    in TIME_WAIT by a previous run is not mistaken for a busy one.
    """
    if not listen:
        return None
    parsed = _split_listen(listen)
    if parsed is None:
        return None  # the schema validates the address; nothing to probe here
    host, port = parsed
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host or "0.0.0.0", port))  # noqa: S104 - an empty host means every address, as in Go
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            why = f"{host} is not an address of this host"
        elif exc.errno == errno.EADDRINUSE:
            who = ", ".join(f"{h['command']} (pid {h['pid']})" for h in port_holders(port))
            why = f"port {port} is in use" + (f" by {who}" if who else " by another program")
        else:
            why = exc.strerror or str(exc)
        return Finding(
            "warn",
            "health port",
            f"cannot listen on {listen}: {why}; Telegraf runs without its health endpoint "
            "so data still flows",
            'set agent.health_listen to a free host:port (or "" to disable it)',
            HEALTH_BUSY,
        )
    finally:
        sock.close()
    return Finding("ok", "health port", f"{listen} is free")


def _listening_inodes(port: int, proc: Path) -> set[str]:
    """Inodes of TCP sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rpartition(":")[2], 16) == port:
                inodes.add(cols[9])
    return inodes


def port_holders(port: int, proc: Path = PROC) -> list[dict[str, object]]:
    """Processes listening on TCP ``port`` (only those this user may inspect), like fuser."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port, proc)}
    if not wanted:
        return []
    found = []
    try:
        pids = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return []
    for pid_dir in pids:
        if wanted.isdisjoint(_fd_links(pid_dir)):
            continue
        try:
            name = (pid_dir / "comm").read_text(encoding="utf-8").strip()
        except OSError:
            name = "?"
        found.append({"pid": int(pid_dir.name), "command": name})
    return found


def _fd_links(pid_dir: Path) -> set[str]:
    """What a process's file descriptors point at (fds that close meanwhile are left out)."""
    links: set[str] = set()
    try:
        fds = list((pid_dir / "fd").iterdir())
    except OSError:
        return links
    for fd in fds:
        try:
            links.add(str(fd.readlink()))
        except OSError:
            continue
    return links


# -- clock ---------------------------------------------------------------------------------------


def check_clock(
    settings: Settings,
    *,
    probe: Callable[[], bool | None] = kernel_clock_synchronised,
    now_ns: Callable[[], int] = time.time_ns,
) -> Finding:
    """The clock as the plugins' ClockGuard will see it, with the option that changes it."""
    floor_text = settings.agent.time_floor
    now = now_ns()
    if now < parse_time_floor(floor_text):
        when = datetime.fromtimestamp(now / 1e9, UTC).isoformat(timespec="seconds")
        return Finding(
            "warn",
            "clock",
            f"the system clock reads {when}, before agent.time_floor ({floor_text}): plugins "
            "that stamp with the clock hold data until it is set",
            "set the clock (NTP), or lower agent.time_floor",
            "clock_before_floor",
        )
    synced = probe()
    required = settings.agent.require_clock_sync
    if synced is False and required:
        return Finding(
            "warn",
            "clock",
            "the kernel reports the clock unsynchronised: plugins will hold data until NTP syncs",
            "start NTP (timedatectl set-ntp true); on hosts without the kernel flag set "
            "agent.require_clock_sync: false",
            "clock_unsynchronised",
        )
    if synced is False:
        return Finding(
            "ok",
            "clock",
            "the kernel reports the clock unsynchronised; agent.require_clock_sync is false, "
            "so plugins trust it",
        )
    if synced is None:
        return Finding("ok", "clock", "the kernel's sync flag cannot be read here")
    return Finding("ok", "clock", "synchronised (kernel flag)")


# -- a rendered telegraf.conf --------------------------------------------------------------------

_OUTPUT_TYPES = {
    "influxdb": "influxdb_v1",
    "influxdb_v2": "influxdb_v2",
    "influxdb_v3": "influxdb_v3",
    "file": "file",
}
_ENV_REF = re.compile(r"^\$\{(\w+)\}$")
_STORE_REF = re.compile(r"^@\{(\w+):(\w+)\}$")
_MODULE = re.compile(r"^telegraf_bridge\.plugins\.(\w+)$")


def _agent_default(key: str) -> Any:
    return next(o.default for o in schema.AGENT if o.key == key)


def _secret_keys(
    value: Any, stores: Mapping[str, str], env_key: str, file_key: str
) -> dict[str, str]:
    """``token_env``/``token_file`` (or ``password_env``) for a ``${VAR}``/``@{store:key}``."""
    text = str(value or "")
    env_ref = _ENV_REF.match(text)
    if env_ref:
        return {env_key: env_ref[1]}
    store_ref = _STORE_REF.match(text)
    if store_ref and store_ref[1] in stores:
        return {file_key: str(Path(stores[store_ref[1]]) / store_ref[2])}
    return {}


def _sink_of(kind: str, out: Mapping[str, Any], stores: Mapping[str, str], index: int) -> Sink:
    sink: dict[str, object] = {
        "name": str(out.get("alias") or f"{kind}-{index + 1}"),
        "type": kind,
        "enabled": True,
        "url": str((out.get("urls") or [""])[0]),
        "timeout": str(out.get("timeout") or "5s"),
        "tls_ca": str(out.get("tls_ca") or ""),
        "insecure_skip_verify": bool(out.get("insecure_skip_verify")),
    }
    if kind == "influxdb_v1":
        sink.update(
            database=str(out.get("database") or "telegraf"),
            retention_policy=str(out.get("retention_policy") or ""),
            username=str(out.get("username") or ""),
        )
        sink.update(_secret_keys(out.get("password"), stores, "password_env", "password_file"))
    elif kind == "influxdb_v2":
        sink.update(
            organization=str(out.get("organization") or ""), bucket=str(out.get("bucket") or "")
        )
        sink.update(_secret_keys(out.get("token"), stores, "token_env", "token_file"))
    elif kind == "influxdb_v3":
        sink.update(database=str(out.get("database") or ""))
        sink.update(_secret_keys(out.get("token"), stores, "token_env", "token_file"))
    return sink_from(sink)


def _read_toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _source(name: str, plugin: str) -> SourceConfig:
    return build(SourceConfig, {"name": name, "plugin": plugin, "enabled": True}, schema.SOURCE)


def _plugin_sources(execd: Mapping[str, Any]) -> list[tuple[SourceConfig, dict[str, object]]]:
    """The sources (name, plugin) and their plugin configs of an execd input bridge-cli rendered.

    One for a plugin's own process; for the plugin host (``agent.plugin_host``), each source
    its ``host.toml`` lists, with the config file the host builds it from.
    """
    command = [str(c) for c in execd.get("command") or []]
    module = next((m[1] for c in command if (m := _MODULE.match(c))), None)
    if module is None or "--config" not in command[:-1]:
        return []
    conf_path = Path(command[command.index("--config") + 1])
    conf = _read_toml(conf_path)
    if module != "host":
        name = str(conf.get("instance") or execd.get("alias") or module)
        return [(_source(name, module), conf)]
    listed = conf.get("sources")
    found = []
    for entry in listed if isinstance(listed, list) else []:
        if isinstance(entry, dict) and entry.get("name") and entry.get("plugin"):
            source_conf = _read_toml(conf_path.parent / str(entry.get("config", "")))
            found.append((_source(str(entry["name"]), str(entry["plugin"])), source_conf))
    return found


def settings_from_rendered(config_file: Path) -> Settings:
    """What preflight and the status reader need, read back from a rendered telegraf.conf.

    For ``check-config FILE`` (a telegraf.conf rendered by bridge-cli, perhaps on another
    host): the InfluxDB outputs with their ``${VAR}``/``@{store:key}`` credentials, the health
    output's address, and from the plugins' own configs the execd sources, their state
    directory and the clock options. An unreadable file gives empty settings: Telegraf's own
    check reports the syntax error better.
    """
    try:
        doc = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        doc = {}
    stores = {
        str(s.get("id")): str(s.get("path", "/run/secrets"))
        for s in doc.get("secretstores", {}).get("docker", [])
    }
    sinks = []
    for table, kind in _OUTPUT_TYPES.items():
        for index, out in enumerate(doc.get("outputs", {}).get(table, [])):
            if kind == "file":
                files = out.get("files") or [""]
                values = {"name": str(out.get("alias") or "file"), "type": kind, "path": files[0]}
                sinks.append(sink_from({**values, "enabled": True}))
            else:
                sinks.append(_sink_of(kind, out, stores, index))
    health = doc.get("outputs", {}).get("health", [])
    listen = str(health[0].get("service_address", "")).removeprefix("http://") if health else ""
    sources, confs = [], []
    for execd in doc.get("inputs", {}).get("execd", []):
        for source, conf in _plugin_sources(execd):
            sources.append(source)
            confs.append(conf)
    agent = agent_from(
        {
            "health_listen": listen,
            "require_clock_sync": any(bool(c.get("require_clock_sync", True)) for c in confs),
            "time_floor": min(
                (str(c["time_floor"]) for c in confs if c.get("time_floor")),
                key=parse_time_floor,
                default=str(_agent_default("time_floor")),
            ),
            "state_directory": next(
                (str(c["state_dir"]) for c in confs if c.get("state_dir")),
                str(_agent_default("state_directory")),
            ),
        }
    )
    return Settings(agent=agent, sources=sources, sinks=sinks)
