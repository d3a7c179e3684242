"""Environment variables that override ``bridge.yaml``, including the seeds' own names.

Two layers, applied in this order over the YAML file:

1. Seed aliases, so users of the five systems this bundle replaces can keep their ``.env``
   files. Each group describes one sink; it overrides the first sink of its type in the YAML,
   or adds a sink named after the group when the YAML has none. A token variable is never read
   for its value: the sink just references it (``token_env``). Nothing is guessed: a malformed
   value, a group with a variable missing, and two groups that read the same variable (seed
   000's ``INFLUX_URL`` is seed 004's too) or would configure the same sink are errors naming
   the variables; seed 003's ``INFLUX_HOST`` is the one defined precedence (its
   ``INFLUX_ORG``/``INFLUX_TOKEN`` are not seed 000's then). Seed 001's DTU variables
   (``DTU_HOST``, ``DTU_PORT``, ``MODBUS_UNIT_ID``, ``QUERY_PERIOD``, ...) likewise configure
   the first ``hoymiles`` source, or add one, and seed 004's ``TAPTAP_CMD`` and
   ``INFLUX_MEASUREMENT`` the first ``taptap`` source.
   Seed 003's ``RAW_BUCKET``/``B1M_BUCKET``/``B5M_BUCKET``/``B1H_BUCKET`` name the
   downsampling tiers and its ``MEASUREMENT`` the pulse measurement of ``gpio_pulse`` sources
   (every source whose manifest routes it into the tiers).
2. Canonical variables: ``BRIDGE_AGENT_<KEY>``, ``BRIDGE_SINK_<NAME>_<KEY>`` and
   ``BRIDGE_SOURCE_<NAME>_<KEY>`` set any scalar option (NAME upper-cased, ``-`` as ``_``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from telegraf_bridge.plugins.manifests import routes_tiers


@dataclass(frozen=True)
class AliasGroup:
    """One seed's variables and the sink they describe."""

    name: str
    seed: str
    sink_type: str
    # All of these must be set for the group to apply (a partial set is an error, unless only
    # variables used elsewhere too, such as a token, are set).
    trigger: tuple[str, ...]
    keys: Mapping[str, str]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    token_env: str = ""
    token_file_env: str = ""
    enabled_env: str = ""
    # Variables that make this group's shared variables another group's (seed 003's
    # INFLUX_HOST takes INFLUX_ORG and INFLUX_TOKEN from seed 000).
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
        unless=("INFLUX_HOST",),
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
DOWNSAMPLING_SEED = "003 PowerLogger"
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


def seed_variables(env: Mapping[str, str]) -> dict[str, list[str]]:
    """The seeds' variables set in ``env`` that configure a sink, a source or the tiers, by seed.

    ``bridge-cli run`` without a config refuses when any is set: the demo must never write into
    a database the environment describes. A token alone configures nothing and is left out.
    """
    found: dict[str, list[str]] = {}
    for group in ALIAS_GROUPS:
        names = [v for v in (*group.trigger, *group.keys.values()) if env.get(v)]
        if names:
            found.setdefault(group.seed, []).extend(names)
    for alias in SOURCE_ALIASES:
        if env.get(alias.trigger):
            found.setdefault(alias.seed, []).append(alias.trigger)
    tiers = [v for v in DOWNSAMPLING_ALIASES if env.get(v)]
    if tiers:
        found.setdefault(DOWNSAMPLING_SEED, []).extend(tiers)
    return {seed: sorted(set(names)) for seed, names in found.items()}


def env_key(name: str) -> str:
    """The upper-case form of a source or sink name used in variable names."""
    return name.upper().replace("-", "_")


def declared(group: AliasGroup) -> frozenset[str]:
    """Every variable a seed group reads."""
    names = {*group.trigger, *group.keys.values()}
    names |= {group.token_env, group.token_file_env, group.enabled_env}
    return frozenset(names - {""})


def _harmless(var: str, env: Mapping[str, str], referenced: frozenset[str]) -> bool:
    """Whether a variable set without its group is used elsewhere, so not ignored.

    A token a bridge.yaml names in token_env, a variable it references as ``${VAR}``, a tier
    name, or a seed's "InfluxDB disabled".
    """
    if any(var == g.token_env for g in ALIAS_GROUPS) or var in DOWNSAMPLING_ALIASES:
        return True
    if var in referenced:
        return True
    is_flag = any(var == g.enabled_env for g in ALIAS_GROUPS)
    return is_flag and env.get(var, "").strip().lower() in FALSE_WORDS


def _label(group: AliasGroup, env: Mapping[str, str]) -> str:
    """``seed 000 SmartSolar (INFLUX_TOKEN, INFLUX_ORG)``: the group and its variables set."""
    present = sorted(v for v in declared(group) if env.get(v))
    return f"seed {group.seed} ({', '.join(present)})"


_RESOLVE = (
    "describe the sinks in a bridge.yaml (see docs/configuration.md) and unset the seed "
    "variables, or unset one seed's variables"
)


def _alias_problems(
    env: Mapping[str, str],
    active: list[AliasGroup],
    notes: list[str],
    problems: list[str],
    referenced: frozenset[str],
) -> None:
    """Competing groups are conflicts; a group's variables that would be ignored are errors."""
    claimed = frozenset().union(*(declared(g) for g in active))
    for index, first in enumerate(active):
        for second in active[index + 1 :]:
            shared = sorted(declared(first) & declared(second))
            if shared:
                problems.append(
                    f"conflicting seed variables: {_label(first, env)} and "
                    f"{_label(second, env)} both read {', '.join(shared)}, so it is not clear "
                    f"which sink they describe: {_RESOLVE}"
                )
    for group in ALIAS_GROUPS:
        if group in active:
            continue
        stray = sorted(
            v for v in declared(group) - claimed if env.get(v) and not _harmless(v, env, referenced)
        )
        present = [v for v in group.trigger if env.get(v)]
        winners = [v for v in group.unless if env.get(v)]
        if winners and len(present) == len(group.trigger):
            if stray:
                problems.append(
                    f"conflicting seed variables: {', '.join(stray)} (seed {group.seed}) set "
                    f"with {', '.join(winners)}, which makes the variables describe another "
                    f"seed's sink, so {', '.join(stray)} would be ignored: {_RESOLVE}"
                )
            continue
        if stray:
            missing = ", ".join(v for v in group.trigger if not env.get(v))
            problems.append(
                f"{', '.join(stray)} set but {missing} not: the seed {group.seed} sink needs "
                f"{' and '.join(group.trigger)}; set the missing variable(s) or unset "
                f"{', '.join(stray)}"
            )
        elif present and not set(present) <= claimed:
            missing = ", ".join(v for v in group.trigger if v not in present)
            notes.append(
                f"{', '.join(present)} set but {missing} not: seed {group.seed} variables ignored"
            )


def _enabled(group: AliasGroup, env: Mapping[str, str], problems: list[str]) -> bool | None:
    """The group's enabled flag: True/False, or None (reported) when it is neither word."""
    raw = env.get(group.enabled_env, "").strip().lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    problems.append(
        f"{group.enabled_env}={env[group.enabled_env]!r} is invalid: expected true or false "
        f"(also 1/0, yes/no, on/off; seed {group.seed})"
    )
    return None


def apply_aliases(
    doc: dict[str, object],
    env: Mapping[str, str],
    notes: list[str],
    problems: list[str],
    *,
    referenced: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Merge the seed alias groups present in ``env`` into ``doc`` (in place).

    A group configures the first sink of its type in the file, or adds its own sink. Two
    groups never share a variable or a sink: that is a conflict, reported in ``problems``
    with every other problem, as are variables that would be ignored.
    """
    sinks = doc.setdefault("sinks", [])
    if not isinstance(sinks, list):
        return
    active = [
        g
        for g in ALIAS_GROUPS
        if all(env.get(v) for v in g.trigger) and not any(env.get(v) for v in g.unless)
    ]
    _alias_problems(env, active, notes, problems, frozenset(referenced))
    from_file = [s for s in sinks if isinstance(s, dict)]
    for kind in {g.sink_type for g in active}:
        same = [g for g in active if g.sink_type == kind]
        if len(same) > 1 and any(s.get("type") == kind for s in from_file):
            problems.append(
                "conflicting seed variables: "
                + " and ".join(_label(g, env) for g in same)
                + f" would all configure the first {kind} sink of the file: {_RESOLVE}"
            )
            return
    for group in active:
        target = next((s for s in from_file if s.get("type") == group.sink_type), None)
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
            enabled = _enabled(group, env, problems)
            target["enabled"] = bool(enabled)
            if enabled is False:
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
        if not re.fullmatch(r"-?\d+", raw):
            raise ValueError("not an integer")
        return int(raw)
    if kind == "seconds":
        if not re.fullmatch(r"\d+(\.\d+)?", raw):
            raise ValueError("not a number of seconds")
        return f"{float(raw):g}s"
    return raw


_EXPECTED = {
    "argv": "a command line (with balanced quotes)",
    "int": "an integer",
    "seconds": "a number of seconds, e.g. 60",
}


def apply_source_aliases(
    doc: dict[str, object], env: Mapping[str, str], notes: list[str], problems: list[str]
) -> None:
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
                    problems.append(
                        f"{var}={raw!r} is invalid: expected {_EXPECTED.get(kind, 'text')} "
                        f"({exc}; seed {alias.seed})"
                    )
        notes.append(f"source {target.get('name')!r} configured from seed {alias.seed} variables")


def apply_downsampling_aliases(
    doc: dict[str, object], env: Mapping[str, str], notes: list[str]
) -> None:
    """Apply seed 003's bucket and measurement variables (in place)."""
    present = {var: env[var].strip() for var in DOWNSAMPLING_ALIASES if env.get(var, "").strip()}
    if present:
        section = doc.setdefault("downsampling", {})
        if isinstance(section, dict):
            for var, value in present.items():
                section[DOWNSAMPLING_ALIASES[var]] = value
            notes.append(
                f"downsampling tiers named by {', '.join(present)} (seed {DOWNSAMPLING_SEED})"
            )
    measurement = env.get(PULSE_MEASUREMENT_ENV, "").strip()
    sources = doc.get("sources")
    if not measurement or not isinstance(sources, list):
        return
    for source in (s for s in sources if isinstance(s, dict) and routes_tiers(s.get("plugin"))):
        options = source.setdefault("options", {})
        if isinstance(options, dict):
            options["measurement"] = measurement
            notes.append(
                f"source {source.get('name')!r}: measurement {measurement!r} from "
                f"{PULSE_MEASUREMENT_ENV} (seed {DOWNSAMPLING_SEED})"
            )


def apply_canonical(doc: dict[str, object], env: Mapping[str, str]) -> None:
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
