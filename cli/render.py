"""Render telegraf.conf and the plugins' own config files from validated settings."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import jinja2
from telegraf_bridge.cli import iotflow_files, tiers
from telegraf_bridge.cli.config_model import AgentConfig, Sink, SourceConfig, TokenSink
from telegraf_bridge.cli.settings import InvalidConfig, Settings
from telegraf_bridge.cli.toml_values import (
    TomlLiteral,
    dump_document,
    raw_string,
    toml_comment,
    toml_value,
)
from telegraf_bridge.plugins.common import format_duration, write_atomic
from telegraf_bridge.plugins.iotflow import options as iotflow_options
from telegraf_bridge.plugins.iotflow import registry
from telegraf_bridge.plugins.manifests import MANIFESTS, tier_routed

from telegraf_bridge import __version__, paths

_SECRET_KEY = re.compile(r"^\w+$")


@dataclass
class Rendered:
    """Everything one render produces, not yet written."""

    telegraf_conf: str
    plugin_configs: dict[Path, str] = field(default_factory=dict)


def _finalize(value: object) -> object:
    """Refuse any interpolation that did not go through an escaping filter."""
    if isinstance(value, TomlLiteral):
        return value
    if value is None or value == "":
        return ""
    raise jinja2.TemplateError(
        f"template interpolated {value!r} without |toml or |raw_string; refusing to render"
    )


def environment() -> jinja2.Environment:
    """The Jinja2 environment over the packaged templates."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - TOML, escaped by the toml filters and _finalize
        finalize=_finalize,
    )
    env.filters["toml"] = toml_value
    env.filters["raw_string"] = raw_string
    env.filters["toml_comment"] = toml_comment
    return env


def plugin_config_dir(settings: Settings, output: Path) -> Path:
    """Where the plugins' config files go for a telegraf.conf written to ``output``."""
    configured = settings.agent.plugin_config_directory
    if configured:
        return Path(configured)
    return output.resolve().parent / f"{output.stem}.plugins"


def _secret_ref(
    label: str, owner: tuple[str, str], env_name: str, file_name: str, stores: list[dict[str, str]]
) -> str:
    """``${ENV}``, or ``@{store:key}`` over a docker secret store for a file; "" for neither."""
    if env_name:
        return "${" + env_name + "}"
    if not file_name:
        return ""
    file_path = Path(file_name)
    if not _SECRET_KEY.match(file_path.name):
        raise InvalidConfig(
            label,
            [
                f"{label} = {file_name!r}: Telegraf reads secret files by name, which must be "
                "letters, digits and '_' only (e.g. influxdb_token); rename the file or use "
                "an environment variable"
            ],
        )
    kind, name = owner
    store_id = ("tokenfile_" if kind == "sink" else f"{kind}file_") + re.sub(r"\W", "_", name)
    stores.append({"id": store_id, "path": str(file_path.parent), "owner": f"{kind} {name}"})
    return "@{" + store_id + ":" + file_path.name + "}"


def _token_ref(sink: Sink, stores: list[dict[str, str]]) -> str:
    if not isinstance(sink, TokenSink):
        return ""
    return _secret_ref(
        f"sinks ({sink.name}).token_file",
        ("sink", sink.name),
        sink.token_env,
        sink.token_file,
        stores,
    )


def token_file_problem(path: Path) -> str | None:
    """Why Telegraf could not use this token file, or None when it can (or cannot be read here).

    Telegraf's secret store sends the file's bytes unchanged, so the trailing newline that
    ``echo TOKEN > file`` leaves makes every write fail with "invalid header field value".
    """
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.strip():
        return f"token file {path} is empty"
    if data != data.strip():
        return (
            f"token file {path} has leading/trailing whitespace or a newline, which Telegraf "
            f'sends as part of the token; rewrite it with: printf %s "$(cat {path})" > {path}'
        )
    return None


def _tier_options(settings: Settings) -> dict[str, object]:
    """Where a gpio_pulse source's points go: the route tag, the raw tier, own aggregates."""
    ds = settings.downsampling
    raw, *aggregates = tiers.tiers_of(ds)
    options: dict[str, object] = {"route_tag": ds.route_tag, "raw_tier": raw.name}
    if tiers.plugin_writes_tiers(settings):
        options["tiers"] = [
            {"window": format_duration(t.every_s), "tier": t.name} for t in aggregates
        ]
    return options


def _iotflow_options(source: SourceConfig) -> iotflow_options.IotflowOptions:
    """The typed options of a source whose manifest renders Telegraf's MQTT consumer."""
    if not isinstance(source.parsed, iotflow_options.IotflowOptions):
        raise TypeError(f"source {source.name!r}: its options are not iotflow's")
    return source.parsed


def _iotflow_mqtt(
    source: SourceConfig,
    opts: iotflow_options.IotflowOptions,
    stores: list[dict[str, str]],
    order: int,
) -> dict[str, object]:
    """The MQTT half of an iotflow source: Telegraf's consumer and its two processors."""
    mqtt = opts.mqtt
    password_file = mqtt.password_file
    if not (mqtt.password_env or password_file):
        password_file = str(opts.default_password_file)
    prefix_depth = len(opts.topic_prefix.split("/"))
    skip = "_/" * prefix_depth
    return {
        "source": source.name,
        "alias": f"{source.name}-mqtt",
        "servers": list(mqtt.servers),
        "topic": f"{opts.topic_prefix}/+/telemetry/+",
        "topic_glob": f"{opts.topic_prefix}/*",
        "measurement_pattern": f"{skip}_/_/measurement",
        "tags_pattern": f"{skip}device_id/_/_",
        "qos": mqtt.qos,
        "client_id": mqtt.client_id,
        "max_undelivered_messages": mqtt.max_undelivered_messages,
        "username": mqtt.username,
        "password_ref": _secret_ref(
            f"sources ({source.name}).options.mqtt.password_file",
            ("source", source.name),
            mqtt.password_env,
            password_file,
            stores,
        ),
        "tls_ca": mqtt.tls_ca,
        "insecure_skip_verify": mqtt.insecure_skip_verify,
        "string_tags": list(opts.string_tags),
        "reserved": list(iotflow_options.RESERVED_KEYS),
        "lookup_file": str(opts.lookup_file),
        "lookup_key": '{{.Tag "device_id"}}',
        "timestamp_format": mqtt.timestamp_format,
        "order": order,
    }


@dataclass(frozen=True)
class RunStatus:
    """Telegraf's own counters for ``bridge-cli run``'s console (never sent to a sink).

    ``inputs.internal`` with ``prefix`` on its measurement names feeds an ``outputs.file`` of
    JSON lines at ``path`` (rotated at 1 MB, no archives kept); every sink drops those names.
    A file, not Telegraf's stdout: a pipe to a ``run`` that was killed would end Telegraf with
    SIGPIPE in the middle of its graceful shutdown.
    """

    path: str
    interval: str = "2s"
    prefix: str = "bridge_run_status_"


def render(
    settings: Settings,
    output: Path,
    *,
    config_source: str = "bridge.yaml",
    run_status: RunStatus | None = None,
) -> Rendered:
    """Render without writing anything, so a failure leaves no half-written file."""
    agent = settings.agent
    python = agent.python or sys.executable
    plugin_dir = plugin_config_dir(settings, output)
    rendered = Rendered(telegraf_conf="")
    sources: list[dict[str, object]] = []
    mqtt_inputs: list[dict[str, object]] = []
    stores: list[dict[str, str]] = []
    for source in settings.active_sources():
        manifest = MANIFESTS[source.plugin]
        # A source with an MQTT half (the manifest lists Telegraf's consumer; iotflow's option
        # schema is the one that describes it) renders the consumer and its processors.
        if "inputs.mqtt_consumer" in manifest.extra_telegraf_plugins:
            opts = _iotflow_options(source)
            if opts.mqtt.enabled:
                mqtt_inputs.append(
                    _iotflow_mqtt(source, opts, stores, order=1 + 2 * len(mqtt_inputs))
                )
                rendered.plugin_configs[opts.lookup_file] = _lookup_table(opts)
            if not manifest.runs_execd(opts):
                continue
        conf_path = plugin_dir / f"{source.name}.toml"
        plugin_doc: dict[str, object] = {
            "signal": source.signal,
            "interval": source.interval,
            "state_dir": agent.state_directory,
            "instance": source.name,
            "require_clock_sync": agent.require_clock_sync,
            "time_floor": agent.time_floor,
            "debug": agent.debug,
        }
        if agent.buffer_strategy == "disk":
            # Every source keeps the disk buffer and the journals within the cap.
            plugin_doc["buffer_directory"] = agent.buffer_directory
            plugin_doc["buffer_max_size_mb"] = agent.buffer_max_size_mb
        if manifest.tier_route:
            plugin_doc.update(_tier_options(settings))
        plugin_doc.update(source.options)
        rendered.plugin_configs[conf_path] = dump_document(
            plugin_doc,
            header=f"Plugin config of source '{source.name}', rendered by bridge-cli.\n"
            "Do not edit: change bridge.yaml and render again.",
        )
        command = [python, "-m", manifest.module, "--config", str(conf_path)]
        sources.append(
            _template_values(
                source, exclude=("parsed",), command=command, config_file=str(conf_path)
            )
        )
    if agent.plugin_host:
        sources = _hosted(sources, plugin_dir, python, rendered)
    sinks = []
    routes = bool(tier_routed(settings.active_sources()))
    route_tag = settings.downsampling.route_tag if routes else ""
    for sink in settings.active_sinks():
        token_ref = _token_ref(sink, stores)
        sinks.append(_template_values(sink, token_ref=token_ref, route_tag=route_tag))
    template = environment().get_template("telegraf.conf.j2")
    rendered.telegraf_conf = template.render(
        version=__version__,
        config_source=config_source,
        agent=_template_values(agent),
        sources=sources,
        mqtt_inputs=mqtt_inputs,
        sinks=sinks,
        secretstores=stores,
        run_status=run_status,
    )
    return rendered


# The execd alias of the plugin host: a source name cannot start with "_", so none collides.
PLUGIN_HOST_ALIAS = "_plugin_host"


def _hosted(
    sources: list[dict[str, object]], plugin_dir: Path, python: str, rendered: Rendered
) -> list[dict[str, object]]:
    """``agent.plugin_host``: the sources Telegraf does not prompt run in one host process.

    Each keeps its own config file (the host builds it from there, as the plugin's own
    process would); ``host.toml`` lists them, and one execd input runs the host. Sources
    with ``signal: STDIN`` keep their own processes: execd prompts a process, not a source.
    """
    hosted = [s for s in sources if s["signal"] == "none"]
    if not hosted:
        return sources
    host_conf = plugin_dir / f"{PLUGIN_HOST_ALIAS}.toml"
    entries = [
        {
            "name": s["name"],
            "plugin": s["plugin"],
            "config": s["config_file"],
            "restart_delay": s["restart_delay"],
        }
        for s in hosted
    ]
    rendered.plugin_configs[host_conf] = dump_document(
        {"sources": entries},
        header="The plugin host's sources (agent.plugin_host), rendered by bridge-cli.\n"
        "Do not edit: change bridge.yaml and render again.",
    )
    host: dict[str, object] = {
        "name": PLUGIN_HOST_ALIAS,
        "plugin": "host: " + ", ".join(str(s["name"]) for s in hosted),
        "command": [python, "-m", "telegraf_bridge.plugins.host", "--config", str(host_conf)],
        "signal": "none",
        "restart_delay": "10s",
    }
    return [host, *(s for s in sources if s["signal"] != "none")]


def _template_values(
    config: AgentConfig | SourceConfig | Sink, exclude: tuple[str, ...] = (), **extra: object
) -> dict[str, object]:
    """A typed config section as the template's mapping, with the values render adds."""
    values = {f.name: getattr(config, f.name) for f in fields(config) if f.name not in exclude}
    return {**values, **extra}


def _lookup_table(opts: iotflow_options.IotflowOptions) -> str:
    """The registry's tag table, rendered with the config so Telegraf never starts without one."""
    try:
        return iotflow_files.lookup_table(registry.load(opts.registry))
    except registry.RegistryError as exc:
        raise InvalidConfig(str(opts.registry), [str(exc)]) from None


def write(rendered: Rendered, output: Path) -> list[Path]:
    """Write plugin configs first, then telegraf.conf, each atomically with mode 0600."""
    written = []
    for path, content in rendered.plugin_configs.items():
        write_atomic(path, content, mode=0o600)
        written.append(path)
    write_atomic(output, rendered.telegraf_conf, mode=0o600)
    written.append(output)
    return written
