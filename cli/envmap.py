"""Environment variables that override ``bridge.yaml``, including the seeds' own names.

Two layers, applied in this order over the YAML file:

1. Seed aliases, so users of the five systems this bundle replaces can keep their ``.env``
   files. Each group describes one sink; it overrides the first sink of its type in the YAML,
   or adds a sink named after the group when the YAML has none. A token variable is never read
   for its value: the sink just references it (``token_env``). Seed 001's DTU variables
   (``DTU_HOST``, ``DTU_PORT``, ``MODBUS_UNIT_ID``, ``QUERY_PERIOD``, ...) likewise configure
   the first ``hoymiles`` source, or add one, and seed 004's ``TAPTAP_CMD`` and
   ``INFLUX_MEASUREMENT`` the first ``taptap`` source.
   Seed 003's ``RAW_BUCKET``/``B1M_BUCKET``/``B5M_BUCKET``/``B1H_BUCKET`` name the
   downsampling tiers and its ``MEASUREMENT`` the pulse measurement of ``gpio_pulse`` sources.
2. Canonical variables: ``BRIDGE_AGENT_<KEY>``, ``BRIDGE_SINK_<NAME>_<KEY>`` and
   ``BRIDGE_SOURCE_<NAME>_<KEY>`` set any scalar option (NAME upper-cased, ``-`` as ``_``).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AliasGroup:
    """One seed's variables and the sink they describe."""

    name: str
    seed: str
    sink_type: str
    # All of these must be set for the group to apply (a partial set is reported as a note).
    trigger: tuple[str, ...]
    keys: Mapping[str, str]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    token_env: str = ""
    token_file_env: str = ""
    enabled_env: str = ""
    unless: tuple[str, ...] = ()


ALIAS_GROUPS: tuple[AliasGroup, ...] = (
    AliasGroup(
        name="tigo_v1",
        seed="004 tigo-ingest",
        sink_type="influxdb_v1",
        trigger=("INFLUX_DB",),
        keys={"url": "INFLUX_URL", "database": "INFLUX_DB", "retention_policy": "INFLUX_RP"},
        defaults={"url": "http://127.0.0.1:8086"},
    ),
    AliasGroup(
        name="powerlogger",
        seed="003 PowerLogger",
        sink_type="influxdb_v2",
        trigger=("INFLUX_HOST", "INFLUX_ORG"),
        keys={"url": "INFLUX_HOST", "organization": "INFLUX_ORG", "bucket": "RAW_BUCKET"},
        defaults={"bucket": "PowerLogger_raw"},
        token_env="INFLUX_TOKEN",
    ),
    AliasGroup(
        name="influx_cloud",
        seed="000 SmartSolar",
        sink_type="influxdb_v2",
        trigger=("INFLUX_TOKEN", "INFLUX_ORG"),
        unless=("INFLUX_HOST", "INFLUX_DB"),
        keys={"url": "INFLUX_URL", "organization": "INFLUX_ORG", "bucket": "INFLUX_BUCKET"},
        defaults={"url": "https://us-east-1-1.aws.cloud2.influxdata.com", "bucket": "smartsolar"},
        token_env="INFLUX_TOKEN",
    ),
    AliasGroup(
        name="hoymiles_v3",
        seed="001 Hoymiles S-Miles",
        sink_type="influxdb_v3",
        trigger=("INFLUXDB_HOST",),
        keys={"url": "INFLUXDB_HOST", "database": "INFLUXDB_DATABASE"},
        defaults={"database": "hoymiles"},
        token_env="INFLUXDB_TOKEN",
        token_file_env="INFLUXDB_TOKEN_FILE",
        enabled_env="INFLUXDB_ENABLED",
    ),
    AliasGroup(
        name="iotflow",
        seed="002 IoTFlow",
        sink_type="influxdb_v2",
        trigger=("INFLUXDB_URL", "INFLUXDB_ORG"),
        keys={"url": "INFLUXDB_URL", "organization": "INFLUXDB_ORG", "bucket": "INFLUXDB_BUCKET"},
        defaults={"bucket": "telemetry"},
        token_env="INFLUXDB_TOKEN",
    ),
)


@dataclass(frozen=True)
class SourceAlias:
    """One seed's device variables and the source options they set."""

    plugin: str
    seed: str
    trigger: str
    # variable -> (option, kind): kind "str", "int", "seconds" (a number of seconds) or "argv"
    # (a command line, split as a POSIX shell would).
    options: Mapping[str, tuple[str, str]]
    # The same for keys of the source itself (its interval), not of its plugin options.
    source_keys: Mapping[str, tuple[str, str]] = field(default_factory=dict)


SOURCE_ALIASES: tuple[SourceAlias, ...] = (
    SourceAlias(
        plugin="hoymiles",
        seed="001 Hoymiles S-Miles",
        trigger="DTU_HOST",
        options={
            "DTU_HOST": ("host", "str"),
            "DTU_PORT": ("port", "int"),
            "MODBUS_UNIT_ID": ("unit_id", "int"),
            "DTU_NAME": ("dtu_name", "str"),
            "DTU_TRANSPORT": ("transport", "str"),
            "COMM_TIMEOUT": ("timeout", "seconds"),
        },
        source_keys={"QUERY_PERIOD": ("interval", "seconds")},
    ),
    SourceAlias(
        plugin="taptap",
        seed="004 tigo-ingest",
        trigger="TAPTAP_CMD",
        options={
            "TAPTAP_CMD": ("command", "argv"),
            "INFLUX_MEASUREMENT": ("measurement", "str"),
        },
    ),
)

# Seed 003's tier variables (its bucket names) set the downsampling section.
DOWNSAMPLING_ALIASES: Mapping[str, str] = {
    "RAW_BUCKET": "raw_name",
    "B1M_BUCKET": "name_1m",
    "B5M_BUCKET": "name_5m",
    "B1H_BUCKET": "name_1h",
}
# Seed 003's MEASUREMENT names the pulse measurement of the gpio_pulse sources in the file. It
# never adds a source: the name is too generic to mean "count pulses" on its own.
PULSE_MEASUREMENT_ENV = "MEASUREMENT"

# Marks a sink the environment added, so validation errors can say where it came from.
ORIGIN_KEY = "_origin"

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_key(name: str) -> str:
    """The upper-case form of a source or sink name used in variable names."""
    return name.upper().replace("-", "_")


def apply_aliases(doc: dict[str, Any], env: Mapping[str, str], notes: list[str]) -> None:
    """Merge the seed alias groups present in ``env`` into ``doc`` (in place)."""
    sinks = doc.setdefault("sinks", [])
    if not isinstance(sinks, list):
        return
    for group in ALIAS_GROUPS:
        if any(env.get(var) for var in group.unless):
            continue
        present = [var for var in group.trigger if env.get(var)]
        if not present:
            continue
        if len(present) < len(group.trigger):
            missing = ", ".join(v for v in group.trigger if v not in present)
            notes.append(
                f"{', '.join(present)} set but {missing} not: seed {group.seed} variables ignored"
            )
            continue
        target = next(
            (s for s in sinks if isinstance(s, dict) and s.get("type") == group.sink_type), None
        )
        if target is None:
            target = {"name": group.name, "type": group.sink_type, **group.defaults}
            target[ORIGIN_KEY] = f"added from the seed {group.seed} environment variables"
            sinks.append(target)
        for key, var in group.keys.items():
            if env.get(var):
                target[key] = env[var]
        if group.token_file_env and env.get(group.token_file_env):
            target["token_file"] = env[group.token_file_env]
            target.pop("token_env", None)
        elif group.token_env and env.get(group.token_env) is not None:
            target["token_env"] = group.token_env
            target.pop("token_file", None)
        if group.enabled_env:
            enabled = env.get(group.enabled_env, "").strip().lower() in TRUE_WORDS
            target["enabled"] = enabled
            if not enabled:
                notes.append(
                    f"sink {target['name']!r} is disabled: {group.enabled_env} is not true "
                    f"(seed {group.seed} semantics)"
                )
        notes.append(f"sink {target['name']!r} configured from seed {group.seed} variables")


def _typed_env(raw: str, kind: str) -> str | int | list[str]:
    """A variable's text as the option expects it (the option's type, not always a string)."""
    if kind == "argv":
        return shlex.split(raw)
    if kind == "int":
        return int(raw)
    if kind == "seconds":
        return f"{float(raw):g}s"
    return raw


def apply_source_aliases(doc: dict[str, Any], env: Mapping[str, str], notes: list[str]) -> None:
    """Configure the first source of a seed's plugin from its device variables (in place)."""
    sources = doc.setdefault("sources", [])
    if not isinstance(sources, list):
        return
    for alias in SOURCE_ALIASES:
        if not env.get(alias.trigger):
            continue
        target = next(
            (s for s in sources if isinstance(s, dict) and s.get("plugin") == alias.plugin), None
        )
        if target is None:
            target = {"name": alias.plugin, "plugin": alias.plugin, "options": {}}
            sources.append(target)
        options = target.setdefault("options", {})
        if not isinstance(options, dict):
            continue
        for mapping, dest in ((alias.options, options), (alias.source_keys, target)):
            for var, (key, kind) in mapping.items():
                raw = env.get(var, "").strip()
                if not raw:
                    continue
                try:
                    dest[key] = _typed_env(raw, kind)
                except ValueError as exc:
                    what = "a command line" if kind == "argv" else "a number"
                    notes.append(
                        f"{var}={raw!r} is not {what} ({exc}); ignored (seed {alias.seed})"
                    )
        notes.append(f"source {target.get('name')!r} configured from seed {alias.seed} variables")


def apply_downsampling_aliases(
    doc: dict[str, Any], env: Mapping[str, str], notes: list[str]
) -> None:
    """Apply seed 003's bucket and measurement variables (in place)."""
    present = {var: env[var].strip() for var in DOWNSAMPLING_ALIASES if env.get(var, "").strip()}
    if present:
        section = doc.setdefault("downsampling", {})
        if isinstance(section, dict):
            for var, value in present.items():
                section[DOWNSAMPLING_ALIASES[var]] = value
            notes.append(f"downsampling tiers named by {', '.join(present)} (seed 003 PowerLogger)")
    measurement = env.get(PULSE_MEASUREMENT_ENV, "").strip()
    sources = doc.get("sources")
    if not measurement or not isinstance(sources, list):
        return
    for source in sources:
        if isinstance(source, dict) and source.get("plugin") == "gpio_pulse":
            options = source.setdefault("options", {})
            if isinstance(options, dict):
                options["measurement"] = measurement
                notes.append(
                    f"source {source.get('name')!r}: measurement {measurement!r} from "
                    f"{PULSE_MEASUREMENT_ENV} (seed 003 PowerLogger)"
                )


def apply_canonical(doc: dict[str, Any], env: Mapping[str, str]) -> None:
    """Apply ``BRIDGE_AGENT_*``, ``BRIDGE_SINK_*`` and ``BRIDGE_SOURCE_*`` (in place)."""
    agent = doc.setdefault("agent", {})
    if isinstance(agent, dict):
        for var, value in env.items():
            if var.startswith("BRIDGE_AGENT_"):
                agent[var.removeprefix("BRIDGE_AGENT_").lower()] = value
    for section, prefix in (("sinks", "BRIDGE_SINK_"), ("sources", "BRIDGE_SOURCE_")):
        items = doc.get(section)
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                continue
            item_prefix = f"{prefix}{env_key(item['name'])}_"
            for var, value in env.items():
                if var.startswith(item_prefix):
                    key = var.removeprefix(item_prefix).lower()
                    if key not in ("name", "type", "options"):
                        item[key] = value
