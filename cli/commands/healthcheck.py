"""``bridge-cli healthcheck``: is fresh data arriving, and is the service delivering it up.

It replaces seed 004's ``tigo_healthcheck.py`` for every sink type and every measurement: a
systemd timer runs it every few minutes, it prints one ``OK ...``/``CRIT ...`` line, exits
0/2 (1 for its own errors) and can publish the same verdict as a retained MQTT message, so a
dashboard or Home Assistant shows the last state even between runs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from telegraf_bridge.cli.commands._sink_options import sink_options
from telegraf_bridge.cli.influx.sinks import load_query_settings, open_sink, select_sink
from telegraf_bridge.cli.influx.transport import SinkError
from telegraf_bridge.cli.measurements import NoClearMeasurement, default_measurement
from telegraf_bridge.cli.settings import Settings

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CRIT = 2
DEFAULT_MAX_LAG_MIN = 240.0
DEFAULT_LOOKBACK_HOURS = 168.0
DEFAULT_TOPIC = "telegraf-bridge/health/{measurement}"
# Seconds to wait for Telegraf's health endpoint, systemctl and the MQTT broker.
LOCAL_TIMEOUT = 5.0
# systemctl is-active states that count as running.
_ACTIVE_STATES = frozenset({"active", "reloading"})
_SINK_REASONS = {"unreachable": "sink_unreachable"}


class CheckError(Exception):
    """The check itself failed (exit 1); ``reason`` names the kind, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass
class Verdict:
    """The outcome of one run: what is printed, published and turned into the exit code."""

    status: str  # OK, CRIT or ERROR
    reason: str
    measurement: str
    field_name: str | None
    now_ns: int
    sink: str | None = None
    sink_type: str | None = None
    last_ns: int | None = None
    max_lag_min: float = DEFAULT_MAX_LAG_MIN
    detail: str = ""
    services: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def lag_min(self) -> float | None:
        """Minutes between the newest point and now (negative if the point is in the future)."""
        if self.last_ns is None:
            return None
        return round((self.now_ns - self.last_ns) / 60e9, 2)

    @property
    def exit_code(self) -> int:
        """0 OK, 2 CRIT, 1 ERROR."""
        return {"OK": EXIT_OK, "CRIT": EXIT_CRIT}.get(self.status, EXIT_ERROR)

    def payload(self) -> dict[str, object]:
        """The JSON document published to MQTT (and printed by ``--json``)."""
        return {
            "status": self.status,
            "reason": self.reason,
            "measurement": self.measurement,
            "field": self.field_name,
            "lag_min": self.lag_min,
            "max_lag_min": self.max_lag_min,
            "last_ts_utc": _utc(self.last_ns),
            "ts_utc": _utc(self.now_ns),
            "sink": self.sink,
            "sink_type": self.sink_type,
            "services": self.services,
            "host": socket.gethostname(),
            "detail": self.detail,
        }

    def line(self) -> str:
        """The one-line summary: ``STATUS reason key=value ...``."""
        parts = [self.status, self.reason]
        if self.measurement:  # empty when the config did not say which one to watch
            parts.append(f"measurement={self.measurement}")
        if self.field_name:
            parts.append(f"field={self.field_name}")
        if self.lag_min is not None:
            parts.append(f"lag_min={self.lag_min:.1f}")
        if self.status != "OK" and self.reason in ("stale_data", "no_data"):
            parts.append(f"max_lag_min={self.max_lag_min:g}")
        if self.last_ns is not None:
            parts.append(f"last_ts_utc={_utc(self.last_ns)}")
        if self.sink:
            parts.append(f"sink={self.sink}")
        parts.extend(f"service[{name}]={state}" for name, state in self.services.items())
        if self.detail:
            parts.append(f"detail={json.dumps(self.detail, ensure_ascii=False)}")
        return " ".join(parts)


def _utc(time_ns: int | None) -> str | None:
    if time_ns is None:
        return None
    moment = datetime.fromtimestamp(time_ns / 1e9, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# -- service checks ------------------------------------------------------------------------------


def check_health_url(url: str, timeout: float = LOCAL_TIMEOUT) -> tuple[bool, str]:
    """Telegraf's ``outputs.health``: 200 healthy, 503 unhealthy; nothing listening is down.

    Returns (healthy, state text). Any other answer means the URL is not a health endpoint,
    which is a mistake in the command line, not a sick service: :class:`CheckError`.
    """
    if not url.startswith(("http://", "https://")):
        raise CheckError("config_error", f"--health-url {url!r} is not an http(s):// URL")
    try:
        # Scheme checked above; the URL is the operator's own health endpoint.
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - the sink URL
            status = int(resp.status)
    except urllib.error.HTTPError as err:
        status = err.code
        err.close()
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        why = getattr(reason, "strerror", None) or str(reason)
        return False, f"unreachable ({why})"
    if status == 200:
        return True, "healthy"
    if status == 503:
        return False, "unhealthy (HTTP 503)"
    raise CheckError(
        "health_check_failed",
        f"{url} answered HTTP {status}; Telegraf's outputs.health answers 200 or 503 "
        "(is this the health endpoint, agent.health_listen?)",
    )


def check_service(unit: str, timeout: float = LOCAL_TIMEOUT) -> tuple[bool, str]:
    """``systemctl is-active UNIT``: (active, state)."""
    try:
        done = subprocess.run(
            ["systemctl", "is-active", unit],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise CheckError("config_error", "systemctl not found: --service needs systemd") from None
    except subprocess.TimeoutExpired:
        raise CheckError(
            "service_check_failed", f"systemctl is-active {unit} hung for {timeout:g}s"
        ) from None
    state = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if not state:
        why = done.stderr.strip() or f"exit status {done.returncode}"
        raise CheckError("service_check_failed", f"systemctl is-active {unit}: {why}")
    return state in _ACTIVE_STATES and done.returncode == 0, state


# -- MQTT ----------------------------------------------------------------------------------------


@dataclass
class MqttTarget:
    """Where and how the verdict is published."""

    host: str
    port: int
    topic: str
    qos: int
    retain: bool
    username: str | None
    password: str | None
    client_id: str


def publish_mqtt(target: MqttTarget, payload: dict[str, object]) -> None:
    """Publish ``payload`` as JSON and wait for the broker to take it (QoS 1/2: its ack).

    paho-mqtt is imported here only, so the check runs without it unless MQTT is asked for.
    """
    try:
        import paho.mqtt.client as mqtt  # noqa: PLC0415 - optional dependency, loaded on demand
        from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415 - optional MQTT
    except ImportError:
        raise CheckError(
            "config_error",
            "MQTT publishing needs paho-mqtt: pip install 'telegraf-bridge[mqtt]'",
        ) from None
    import threading  # noqa: PLC0415 - only needed when publishing

    connected = threading.Event()
    outcome: dict[str, str] = {}

    def on_connect(
        client: mqtt.Client, userdata: object, flags: object, reason: Any, props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            outcome["error"] = str(reason)
        connected.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=target.client_id)
    client.on_connect = on_connect
    if target.username:
        client.username_pw_set(target.username, target.password)
    where = f"{target.host}:{target.port}"
    try:
        client.connect(target.host, target.port, keepalive=30)
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise CheckError("mqtt_failed", f"cannot connect to MQTT broker {where}: {why}") from None
    client.loop_start()
    try:
        if not connected.wait(LOCAL_TIMEOUT):
            raise CheckError("mqtt_failed", f"MQTT broker {where} did not accept the connection")
        if "error" in outcome:
            raise CheckError(
                "mqtt_failed", f"MQTT broker {where} refused the connection: {outcome['error']}"
            )
        info = client.publish(
            target.topic,
            json.dumps(payload, ensure_ascii=False),
            qos=target.qos,
            retain=target.retain,
        )
        info.wait_for_publish(timeout=LOCAL_TIMEOUT)
        if not info.is_published():
            raise CheckError(
                "mqtt_failed", f"MQTT broker {where} did not confirm the message on {target.topic}"
            )
    finally:
        client.disconnect()
        client.loop_stop()


def _mqtt_password(env_name: str | None) -> str | None:
    if env_name:
        value = os.environ.get(env_name)
        if value is None:
            raise CheckError(
                "config_error", f"--mqtt-password-env names {env_name}, which is not set"
            )
        return value
    return os.environ.get("BRIDGE_HEALTH_MQTT_PASSWORD") or os.environ.get("TIGO_HEALTH_MQTT_PASS")


# -- the check -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """What one run checks: the command line's options, minus how the verdict is reported."""

    config_path: Path | None
    sink_name: str | None
    measurement: str | None  # None: the one the config's sources write (cli/measurements.py)
    field_name: str | None
    max_lag_min: float
    lookback_hours: float
    health_urls: list[str]
    telegraf_health: bool
    units: tuple[str, ...]
    timeout: float | None


def _health_urls(check: Check, settings: Settings) -> list[str]:
    """``--health-url``s, plus the endpoint the config renders with ``--telegraf-health``."""
    urls = list(check.health_urls)
    if check.telegraf_health:
        listen = settings.agent.health_listen
        if not listen:
            raise CheckError(
                "config_error", "--telegraf-health: agent.health_listen is empty in the config"
            )
        urls.append(f"http://{listen}/")
    return urls


def _services_down(verdict: Verdict, units: tuple[str, ...], urls: list[str]) -> list[str]:
    """Each unit and health endpoint's state into the verdict; those not running, as text."""
    down: list[str] = []
    for unit in units:
        active, state = check_service(unit)
        verdict.services[unit] = state
        if not active:
            down.append(f"{unit} is {state}")
    for url in urls:
        healthy, state = check_health_url(url)
        verdict.services[url] = state
        if not healthy:
            down.append(f"Telegraf at {url} is {state}")
    return down


def _check_data(verdict: Verdict, check: Check, settings: Settings) -> None:
    """The newest point's age on the sink: CRIT no_data or stale_data, ERROR when it failed."""
    now, max_lag_min, lookback_hours = verdict.now_ns, check.max_lag_min, check.lookback_hours
    try:
        sink = select_sink(settings, check.sink_name)
        verdict.sink, verdict.sink_type = sink.name, sink.type
        query = open_sink(sink, timeout=check.timeout)
        fresh_since = now - int(max_lag_min * 60e9)
        newest = query.newest_point(verdict.measurement, check.field_name, since_ns=fresh_since)
        if newest is None and lookback_hours * 60 > max_lag_min:
            # Only when the cheap, recent window is empty: look further back, to tell a
            # stale measurement (lag known) from one that has no data at all.
            newest = query.newest_point(
                verdict.measurement, check.field_name, since_ns=now - int(lookback_hours * 3600e9)
            )
        if newest is None:
            window = max(lookback_hours, max_lag_min / 60)
            verdict.status, verdict.reason = "CRIT", "no_data"
            verdict.detail = f"no point in the last {window:g}h on {query.describe()}"
        verdict.last_ns = newest
        if newest is not None and verdict.lag_min is not None and verdict.lag_min > max_lag_min:
            verdict.status, verdict.reason = "CRIT", "stale_data"
    except SinkError as exc:
        if exc.reason == "not_found":
            verdict.status, verdict.reason, verdict.detail = "CRIT", "no_data", str(exc)
        else:
            verdict.status = "ERROR"
            verdict.reason = _SINK_REASONS.get(exc.reason, exc.reason)
            verdict.detail = str(exc)


def _service_verdict_wins(verdict: Verdict, down: list[str]) -> None:
    """A stopped service is the verdict; the data check's outcome is kept in the detail.

    The seed reports service_not_active first, and a data problem (or a failed query) is
    then only a consequence.
    """
    previous = f"; data check: {verdict.reason}" if verdict.reason != "healthy" else ""
    if verdict.status == "ERROR" and verdict.detail:
        previous += f" ({verdict.detail})"
    verdict.status, verdict.reason = "CRIT", "service_not_active"
    verdict.detail = "; ".join(down) + previous


def run_check(check: Check, now_ns: int | None = None) -> Verdict:
    """Run every check and return the verdict (expected failures never raise)."""
    verdict = Verdict(
        status="OK",
        reason="healthy",
        measurement=check.measurement or "",
        field_name=check.field_name,
        now_ns=time.time_ns() if now_ns is None else now_ns,
        max_lag_min=check.max_lag_min,
    )
    try:
        settings = load_query_settings(check.config_path)
        if check.measurement is None:
            try:
                verdict.measurement = default_measurement(settings)
            except NoClearMeasurement as exc:
                raise CheckError("config_error", str(exc)) from None
        down = _services_down(verdict, check.units, _health_urls(check, settings))
    except (CheckError, SinkError) as exc:
        verdict.status, verdict.reason, verdict.detail = "ERROR", exc.reason, str(exc)
        return verdict
    _check_data(verdict, check, settings)
    if down:
        _service_verdict_wins(verdict, down)
    return verdict


@click.command("healthcheck")
@sink_options
@click.option(
    "--measurement",
    envvar=["BRIDGE_HEALTH_MEASUREMENT", "INFLUX_MEASUREMENT"],
    help="Measurement whose newest point is checked; default: the one the config's sources "
    "write (tigo_power_report for taptap, the pulse measurement for gpio_pulse, smartsolar "
    "for ndjson_tail, dtu for hoymiles), required when they write several; tigo_power_report "
    "without sources (env: BRIDGE_HEALTH_MEASUREMENT, INFLUX_MEASUREMENT).",
)
@click.option("--field", "field_name", help="Only count points that carry this field.")
@click.option(
    "--max-lag-min",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_MAX_LAG_MIN,
    show_default=True,
    envvar="BRIDGE_HEALTH_MAX_LAG_MIN",
    help="CRIT stale_data when the newest point is older than this many minutes (env: "
    "BRIDGE_HEALTH_MAX_LAG_MIN).",
)
@click.option(
    "--lookback-hours",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_LOOKBACK_HOURS,
    show_default=True,
    help="How far back a stale measurement is looked up; nothing in it is CRIT no_data.",
)
@click.option(
    "--health-url",
    "health_urls",
    multiple=True,
    envvar="BRIDGE_HEALTH_URL",
    help="Telegraf's outputs.health endpoint, e.g. http://127.0.0.1:8080/ (200 healthy, 503 "
    "or no answer: CRIT service_not_active). Repeatable (env: BRIDGE_HEALTH_URL).",
)
@click.option(
    "--telegraf-health",
    is_flag=True,
    help="Check the health endpoint the config renders (agent.health_listen).",
)
@click.option(
    "--service",
    "units",
    multiple=True,
    envvar="BRIDGE_HEALTH_SERVICE",
    help="systemd unit that must be active (systemctl is-active), e.g. telegraf.service. "
    "Repeatable (env: BRIDGE_HEALTH_SERVICE).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds per request to the sink; default: the sink's own timeout.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON payload instead of a line.")
@click.option(
    "--mqtt",
    "mqtt_enabled",
    is_flag=True,
    envvar=["BRIDGE_HEALTH_MQTT_ENABLED", "TIGO_HEALTH_MQTT_ENABLED"],
    help="Publish the verdict as a retained JSON message (env: BRIDGE_HEALTH_MQTT_ENABLED, "
    "TIGO_HEALTH_MQTT_ENABLED). Needs the mqtt extra (paho-mqtt).",
)
@click.option(
    "--mqtt-host",
    default="127.0.0.1",
    show_default=True,
    envvar=["BRIDGE_HEALTH_MQTT_HOST", "TIGO_HEALTH_MQTT_HOST"],
    help="MQTT broker host (env: BRIDGE_HEALTH_MQTT_HOST, TIGO_HEALTH_MQTT_HOST).",
)
@click.option(
    "--mqtt-port",
    type=click.IntRange(1, 65535),
    default=1883,
    show_default=True,
    envvar=["BRIDGE_HEALTH_MQTT_PORT", "TIGO_HEALTH_MQTT_PORT"],
    help="MQTT broker port (env: BRIDGE_HEALTH_MQTT_PORT, TIGO_HEALTH_MQTT_PORT).",
)
@click.option(
    "--mqtt-topic",
    default=DEFAULT_TOPIC,
    show_default=True,
    envvar=["BRIDGE_HEALTH_MQTT_TOPIC", "TIGO_HEALTH_MQTT_TOPIC"],
    help="Topic; {measurement}, {sink} and {host} are replaced (env: BRIDGE_HEALTH_MQTT_TOPIC, "
    "TIGO_HEALTH_MQTT_TOPIC).",
)
@click.option(
    "--mqtt-username",
    envvar=["BRIDGE_HEALTH_MQTT_USERNAME", "TIGO_HEALTH_MQTT_USER"],
    help="MQTT user name (env: BRIDGE_HEALTH_MQTT_USERNAME, TIGO_HEALTH_MQTT_USER).",
)
@click.option(
    "--mqtt-password-env",
    metavar="VAR",
    help="Environment variable holding the MQTT password; default: "
    "BRIDGE_HEALTH_MQTT_PASSWORD, then TIGO_HEALTH_MQTT_PASS.",
)
@click.option(
    "--mqtt-qos",
    type=click.IntRange(0, 2),
    default=1,
    show_default=True,
    envvar=["BRIDGE_HEALTH_MQTT_QOS", "TIGO_HEALTH_MQTT_QOS"],
    help="MQTT QoS of the message.",
)
@click.option(
    "--mqtt-retain/--no-mqtt-retain",
    default=True,
    show_default=True,
    help="Publish as a retained message (new subscribers see the last verdict at once).",
)
def command(  # noqa: PLR0913, PLR0917 - click passes every option positionally
    config_path: Path | None,
    sink_name: str | None,
    measurement: str | None,
    field_name: str | None,
    max_lag_min: float,
    lookback_hours: float,
    health_urls: tuple[str, ...],
    telegraf_health: bool,
    units: tuple[str, ...],
    timeout: float | None,
    as_json: bool,
    mqtt_enabled: bool,
    mqtt_host: str,
    mqtt_port: int,
    mqtt_topic: str,
    mqtt_username: str | None,
    mqtt_password_env: str | None,
    mqtt_qos: int,
    mqtt_retain: bool,
) -> None:
    """Check that a measurement gets fresh points (and that its service runs).

    Queries the newest point of --measurement (default: the measurement the config's
    sources write, e.g. tigo_power_report for taptap, smartsolar for ndjson_tail) on an InfluxDB
    1.x, v2/Cloud or 3 sink and compares its age with --max-lag-min (default 240). Prints
    one line, `OK healthy ...` or `CRIT <reason> ...`, and exits 0 (OK), 2 (CRIT:
    stale_data, no_data, service_not_active) or 1 (the check itself failed: bad config,
    sink unreachable, authentication, MQTT). With --mqtt the same verdict is published as
    retained JSON (status, reason, lag_min, last_ts_utc, ts_utc, ...).
    """
    verdict = run_check(
        Check(
            config_path=config_path,
            sink_name=sink_name,
            measurement=measurement,
            field_name=field_name,
            max_lag_min=max_lag_min,
            lookback_hours=lookback_hours,
            health_urls=list(health_urls),
            telegraf_health=telegraf_health,
            units=units,
            timeout=timeout,
        )
    )
    exit_code = verdict.exit_code
    click.echo(json.dumps(verdict.payload(), ensure_ascii=False) if as_json else verdict.line())
    if mqtt_enabled:
        topic = (
            mqtt_topic.replace("{measurement}", verdict.measurement)
            .replace("{sink}", verdict.sink or "")
            .replace("{host}", socket.gethostname())
        )
        try:
            target = MqttTarget(
                host=mqtt_host,
                port=mqtt_port,
                topic=topic,
                qos=mqtt_qos,
                retain=mqtt_retain,
                username=mqtt_username,
                password=_mqtt_password(mqtt_password_env),
                client_id=f"bridge-healthcheck-{socket.gethostname()}-{os.getpid()}",
            )
            publish_mqtt(target, verdict.payload())
        except CheckError as exc:
            click.echo(f"error: {exc}", err=True)
            # CRIT stays CRIT; an OK whose publication failed becomes an error.
            exit_code = exit_code or EXIT_ERROR
    click.get_current_context().exit(exit_code)
