"""The options of an ``iotflow`` source, read by the plugin, by render-config and by the CLI.

One source covers both transports: the HTTP listener runs as this package's execd plugin, the
MQTT side is Telegraf's own ``inputs.mqtt_consumer`` (rendered from the ``mqtt`` table), so
both read the same table and agree on the registry, the topic tree and the declared tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from telegraf_bridge.plugins.common._config import ConfigError, Section
from telegraf_bridge.plugins.iotflow.registry import TAG_KEYS

from telegraf_bridge import paths

DEFAULT_REGISTRY = str(paths.DEVICE_REGISTRY)
# Options that name files (dotted: in a table); bridge-cli anchors relative ones at the config
# file's directory.
PATH_KEYS = ("registry", "http.tls_cert", "http.tls_key", "mqtt.password_file", "mqtt.tls_ca")
TOPIC_PREFIX = "iotflow/devices"
# Tags the bundle sets itself; a payload key of the same name is dropped, never a tag.
RESERVED_KEYS = (*TAG_KEYS, "topic")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_TOPIC_LEVEL = re.compile(r"^[A-Za-z0-9_.-]+$")
_LISTEN = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class HttpOptions:
    """The HTTP listener (``POST /api/v1/devices/telemetry``)."""

    enabled: bool
    host: str
    port: int
    max_body_bytes: int
    max_points: int
    workers: int
    tls_cert: str
    tls_key: str
    default_type: str


@dataclass(frozen=True)
class MqttOptions:
    """Telegraf's MQTT consumer and the generated Mosquitto files."""

    enabled: bool
    servers: tuple[str, ...]
    username: str
    password_file: str
    password_env: str
    qos: int
    client_id: str
    max_undelivered_messages: int
    tls_ca: str
    insecure_skip_verify: bool
    broker_port: int
    broker_bind: str
    max_packet_bytes: int
    max_queued_messages: int
    timestamp_format: str


@dataclass(frozen=True)
class IotflowOptions:
    """Everything an iotflow source is configured with."""

    registry: Path
    topic_prefix: str
    string_tags: tuple[str, ...]
    http: HttpOptions
    mqtt: MqttOptions

    @property
    def lookup_file(self) -> Path:
        """Telegraf's lookup table of registry tags for MQTT points."""
        return self.registry.with_name(self.registry.stem + ".tags.json")

    @property
    def mosquitto_dir(self) -> Path:
        """The generated Mosquitto password, ACL and config files."""
        return self.registry.parent / "mosquitto"

    @property
    def default_password_file(self) -> Path:
        """Telegraf's broker password, generated with the registry when none is configured."""
        return self.registry.parent / "mqtt_password"


def parse_listen(value: str, where: str) -> tuple[str, int]:
    """``host:port`` (empty host: every interface) -> (host, port)."""
    match = _LISTEN.match(value)
    port = int(match.group("port")) if match else -1
    if not match or not 0 <= port <= 65535:
        raise ConfigError(
            f"{where} = {value!r} is invalid: expected host:port, e.g. ':5000' or '127.0.0.1:5000'"
        )
    return match.group("host").strip("[]"), port


def _string_list(sec: Section, key: str) -> tuple[str, ...]:
    value = sec.raw(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{sec.where}.{key} = {value!r} is invalid: expected a list of strings")
    return tuple(value)


def _http(sec: Section) -> HttpOptions:
    host, port = parse_listen(sec.string("listen", ":5000"), f"{sec.where}.listen")
    tls_cert = sec.string("tls_cert", "")
    tls_key = sec.string("tls_key", "")
    if bool(tls_cert) != bool(tls_key):
        raise ConfigError(f"{sec.where}: set both tls_cert and tls_key to serve HTTPS, or neither")
    default_type = sec.string("default_type", "telemetry")
    if not _KEY.match(default_type):
        raise ConfigError(f"{sec.where}.default_type = {default_type!r} is not a valid name")
    return HttpOptions(
        enabled=sec.boolean("enabled", True),
        host=host,
        port=port,
        max_body_bytes=sec.integer("max_body_bytes", 65536, minimum=256),
        max_points=sec.integer("max_points", 500, minimum=1),
        workers=sec.integer("workers", 8, minimum=1),
        tls_cert=tls_cert,
        tls_key=tls_key,
        default_type=default_type,
    )


def _mqtt(sec: Section) -> MqttOptions:
    servers = _string_list(sec, "servers") or ("tcp://127.0.0.1:1883",)
    for server in servers:
        if not re.match(r"^(tcp|ssl|ws|wss|mqtt|mqtts)://[^\s/]+:\d+$", server):
            raise ConfigError(
                f"{sec.where}.servers: {server!r} is invalid: expected e.g. tcp://127.0.0.1:1883"
            )
    password_file = sec.string("password_file", "")
    password_env = sec.string("password_env", "")
    if password_file and password_env:
        raise ConfigError(f"{sec.where}: set password_file or password_env, not both")
    qos = sec.integer("qos", 1, minimum=0)
    if qos > 2:
        raise ConfigError(f"{sec.where}.qos = {qos} is invalid: expected 0, 1 or 2")
    bind = sec.string("broker_bind", "")
    return MqttOptions(
        enabled=sec.boolean("enabled", True),
        servers=servers,
        username=sec.string("username", "telegraf-bridge"),
        password_file=password_file,
        password_env=password_env,
        qos=qos,
        client_id=sec.string("client_id", "telegraf-bridge-iotflow"),
        max_undelivered_messages=sec.integer("max_undelivered_messages", 1000, minimum=1),
        tls_ca=sec.string("tls_ca", ""),
        insecure_skip_verify=sec.boolean("insecure_skip_verify", False),
        broker_port=sec.integer("broker_port", 1883, minimum=1),
        broker_bind=bind,
        max_packet_bytes=sec.integer("max_packet_bytes", 65536, minimum=1024),
        max_queued_messages=sec.integer("max_queued_messages", 100000, minimum=0),
        timestamp_format=sec.string(
            "timestamp_format", "rfc3339", choices=("rfc3339", "unix", "unix_ms")
        ),
    )


def parse(sec: Section) -> IotflowOptions:
    """Validate an iotflow source's options; every problem names its key."""
    registry = Path(sec.string("registry", DEFAULT_REGISTRY))
    prefix = sec.string("topic_prefix", TOPIC_PREFIX)
    levels = prefix.split("/")
    if not all(_TOPIC_LEVEL.match(level) for level in levels):
        raise ConfigError(
            f"{sec.where}.topic_prefix = {prefix!r} is invalid: expected topic levels of "
            "letters, digits, '_', '.', '-' separated by '/', e.g. iotflow/devices"
        )
    tags = _string_list(sec, "string_tags")
    for key in tags:
        if not _KEY.match(key) or key in RESERVED_KEYS or key == "timestamp":
            raise ConfigError(
                f"{sec.where}.string_tags: {key!r} is invalid: expected a payload key "
                f"(letters, digits, '_', '.', '-') other than {', '.join(RESERVED_KEYS)}, timestamp"
            )
    http_sec, mqtt_sec = sec.table("http"), sec.table("mqtt")
    http, mqtt = _http(http_sec), _mqtt(mqtt_sec)
    http_sec.check_unknown()
    mqtt_sec.check_unknown()
    sec.check_unknown()
    if not http.enabled and not mqtt.enabled:
        raise ConfigError(f"{sec.where}: both http and mqtt are disabled; enable one")
    return IotflowOptions(
        registry=registry, topic_prefix=prefix, string_tags=tags, http=http, mqtt=mqtt
    )
