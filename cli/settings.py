"""Load ``bridge.yaml``, overlay the environment, and validate against :mod:`schema`.

The result is a plain, fully-defaulted dictionary that the templates render. Every problem is
collected and reported together, each naming the key, the value and what is allowed, and
nothing is rendered unless the whole file is valid.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from telegraf_bridge.cli import envmap, plugin_options, schema, yaml_vars
from telegraf_bridge.cli.config_model import (
    AgentConfig,
    DownsamplingConfig,
    FileSink,
    InfluxSink,
    Sink,
    SourceConfig,
    TokenSink,
    V1Sink,
    agent_from,
    build,
    downsampling_from,
    sink_from,
)
from telegraf_bridge.cli.option_check import coerce
from telegraf_bridge.plugins.common._clock import parse_time_floor
from telegraf_bridge.plugins.manifests import manifest_of, tier_routed

_FORBIDDEN_SECRETS = ("token", "password", "api_key", "secret")
_SECTIONS = ("agent", "downsampling", "sources", "sinks")
# Bucket, retention-policy and database names all accept this (InfluxDB v2 refuses a leading
# underscore; InfluxDB 3 allows letters, digits, '_' and '-').
_TIER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_TAG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

# One section's values while they are checked against the schema, before they are typed.
Values = dict[str, object]


class InvalidConfig(Exception):
    """The config has one or more problems; ``problems`` lists them all."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{listing}")


@dataclass
class Settings:
    """A validated configuration, ready to render: typed sections (see :mod:`config_model`)."""

    agent: AgentConfig
    sources: list[SourceConfig]
    sinks: list[Sink]
    notes: list[str] = field(default_factory=list)
    downsampling: DownsamplingConfig = field(default_factory=lambda: downsampling_from({}))

    def active_sinks(self) -> list[Sink]:
        """Sinks that are enabled."""
        return [s for s in self.sinks if s.enabled]

    def active_influx_sinks(self) -> list[InfluxSink]:
        """Enabled sinks that are InfluxDB servers (every kind but ``file``)."""
        return [s for s in self.sinks if s.enabled and not isinstance(s, FileSink)]

    def active_sources(self) -> list[SourceConfig]:
        """Sources that are enabled."""
        return [s for s in self.sources if s.enabled]

    def referenced_env(self) -> list[str]:
        """Environment variables the rendered config reads at Telegraf start-up."""
        names = []
        for sink in self.active_sinks():
            if isinstance(sink, TokenSink) and sink.token_env:
                names.append(sink.token_env)
            if isinstance(sink, V1Sink) and sink.password_env:
                names.append(sink.password_env)
        return sorted(set(names))


def _anchored(value: object, base: Path) -> object:
    """``value`` (a path, or a list of paths or globs) made absolute under ``base``."""
    if isinstance(value, list):
        return [_anchored(item, base) for item in value]
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        return value
    return os.path.normpath(base / value)


def _anchor_options(options: dict[str, object], keys: tuple[str, ...], base: Path) -> None:
    """Anchor a plugin's path options; dotted keys name an option in a table."""
    for dotted in keys:
        *tables, key = dotted.split(".")
        table: object = options
        for name in tables:
            table = table.get(name) if isinstance(table, dict) else None
        if isinstance(table, dict) and key in table:
            table[key] = _anchored(table[key], base)


def _anchor_section(opts: tuple[schema.Opt, ...], values: Values, base: Path) -> None:
    """Make a section's ``path`` options absolute under ``base``.

    The same bridge.yaml must mean the same files wherever it is run from: Telegraf and its
    plugins run with another working directory than the user's shell (``bridge-cli run``, the
    container entrypoint, systemd), and a path that followed the current directory would
    start fresh tail positions and meter totals in another place.
    """
    for opt in opts:
        value = values.get(opt.key)
        # `python` may be a bare name looked up on PATH, like a shell does.
        if opt.kind == "path" and not (opt.key == "python" and "/" not in str(value)):
            values[opt.key] = _anchored(value, base)


def _section(
    opts: tuple[schema.Opt, ...],
    data: Mapping[str, Any],
    where: str,
    problems: list[str],
    extra_allowed: frozenset[str] = frozenset(),
) -> Values:
    result: Values = {}
    known = {o.key for o in opts} | extra_allowed
    for key in data:
        if key in _FORBIDDEN_SECRETS:
            problems.append(
                f"{where}.{key}: secrets are never accepted in the config file; put the value "
                f"in an environment variable and set {key}_env (or token_file for tokens)"
            )
        elif key not in known:
            problems.append(
                f"{where}.{key} is not a known option; allowed: {', '.join(sorted(known))}"
            )
    for opt in opts:
        if opt.key in data and data[opt.key] is not None:
            result[opt.key] = coerce(opt, data[opt.key], where, problems)
        elif opt.required:
            problems.append(f"{where}.{opt.key} is required ({opt.doc})")
            result[opt.key] = None
        else:
            result[opt.key] = opt.default
    return result


def _agent(doc: Mapping[str, Any], problems: list[str]) -> Values:
    agent_doc = doc.get("agent") or {}
    if not isinstance(agent_doc, dict):
        problems.append(f"agent = {agent_doc!r} is invalid: expected a mapping")
        agent_doc = {}
    agent = _section(schema.AGENT, agent_doc, "agent", problems)
    try:
        parse_time_floor(str(agent["time_floor"]))
    except ValueError:
        problems.append(
            f"agent.time_floor = {agent['time_floor']!r} is invalid: expected an RFC 3339 time"
        )
    return agent


def _listed(doc: Mapping[str, Any], key: str, what: str, problems: list[str]) -> list[object]:
    """``doc[key]`` when it is a list (or absent: empty); a problem otherwise."""
    items = doc.get(key) or []
    if not isinstance(items, list):
        problems.append(f"{key} is invalid: expected a list of {what}")
        return []
    return items


def _sources(
    doc: Mapping[str, Any], agent: Values, problems: list[str]
) -> list[tuple[str, Values]]:
    """Each source mapping's values with where it is (``sources[i]``, i as in the file)."""
    sources: list[tuple[str, Values]] = []
    for index, item in enumerate(_listed(doc, "sources", "sources", problems)):
        where = f"sources[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where} is invalid: expected a mapping")
            continue
        src = _section(schema.SOURCE, item, where, problems)
        if not src["interval"]:
            manifest = manifest_of(src["plugin"])
            src["interval"] = (manifest and manifest.default_interval) or agent["interval"]
        sources.append((where, src))
    return sources


def _sink(item: Mapping[str, Any], where: str, problems: list[str]) -> Values | None:
    sink_doc = dict(item)
    origin = sink_doc.pop(envmap.ORIGIN_KEY, None)
    if origin:
        where += f" ({origin})"
    kind = sink_doc.get("type")
    if kind not in schema.SINK_TYPE_OPTS:
        problems.append(
            f"{where}.type = {kind!r} is invalid: expected one of "
            + ", ".join(repr(t) for t in schema.SINK_TYPES)
        )
        return None
    sink = _section(schema.SINK_COMMON + schema.SINK_TYPE_OPTS[kind], sink_doc, where, problems)
    if "token_env" in sink and "token_file" in sink:
        if sink["token_env"] and sink["token_file"]:
            problems.append(f"{where}: set token_env or token_file, not both")
        elif kind == "influxdb_v2" and not (sink["token_env"] or sink["token_file"]):
            problems.append(
                f"{where}: an InfluxDB v2/Cloud sink needs a token: set token_env (the "
                "name of an environment variable) or token_file"
            )
    return sink


def _sinks(doc: Mapping[str, Any], problems: list[str]) -> list[Values]:
    sinks: list[Values] = []
    for index, item in enumerate(_listed(doc, "sinks", "sinks", problems)):
        where = f"sinks[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where} is invalid: expected a mapping")
            continue
        sink = _sink(item, where, problems)
        if sink is not None:
            sinks.append(sink)
    return sinks


def _check_together(sources: list[Values], sinks: list[Values], problems: list[str]) -> None:
    """What only the sections together say: unique names, somewhere for the points to go."""
    for label, items in (("sources", sources), ("sinks", sinks)):
        seen: set[str] = set()
        for item in items:
            name = item.get("name")
            if isinstance(name, str) and name in seen:
                problems.append(f"{label}: name {name!r} is used twice; names must be unique")
            if isinstance(name, str):
                seen.add(name)
    if any(s["enabled"] for s in sources) and not any(k["enabled"] for k in sinks):
        problems.append(
            "no enabled sink: every point the sources produce would go nowhere; add one under "
            "sinks (an InfluxDB sink, or `type: file` to keep the data locally) or enable one"
        )


def _typed_source(values: Values, where: str, problems: list[str]) -> SourceConfig:
    """The source with its plugin's typed options; the plugin's problems are added."""
    parsed = None
    if values["enabled"]:
        parsed, found = plugin_options.parse(values, where)
        problems.extend(found)
    return build(SourceConfig, {**values, "parsed": parsed}, schema.SOURCE)


def _validate(
    doc: Mapping[str, Any], source: str, base: Path, notes: list[str], env_problems: list[str]
) -> Settings:
    """Every section checked (all problems at once), paths anchored under ``base``, typed."""
    problems: list[str] = list(env_problems)
    for key in doc:
        if key not in _SECTIONS:
            problems.append(f"{key} is not a known section; allowed: {', '.join(_SECTIONS)}")
    base = base.resolve()
    agent = _agent(doc, problems)
    _anchor_section(schema.AGENT, agent, base)
    downsampling = _downsampling(doc.get("downsampling"), problems)
    located = _sources(doc, agent, problems)
    sources = [src for _where, src in located]
    for src in sources:
        manifest = manifest_of(src["plugin"])
        options = src["options"]
        if manifest is not None and isinstance(options, dict):
            _anchor_options(options, manifest.path_keys, base)
    sinks = _sinks(doc, problems)
    for sink in sinks:
        _anchor_section(schema.SINK_COMMON + schema.SINK_TYPE_OPTS[str(sink["type"])], sink, base)
    _check_together(sources, sinks, problems)
    typed_sources = [_typed_source(src, where, problems) for where, src in located]
    if problems:
        raise InvalidConfig(source, problems)
    settings = Settings(
        agent=agent_from(agent),
        sources=typed_sources,
        sinks=[sink_from(sink) for sink in sinks],
        notes=notes,
        downsampling=downsampling_from(downsampling),
    )
    _note_tiers(settings)
    return settings


def _note_tiers(settings: Settings) -> None:
    """Warn that routed meter pulses need their tiers to exist before Telegraf writes.

    InfluxDB answers a write to a missing bucket or retention policy with an error on which
    Telegraf drops the batch instead of retrying, so the order matters.
    """
    if tier_routed(settings.active_sources()) and settings.active_influx_sinks():
        settings.notes.append(
            f"meter pulses are written to the tier {settings.downsampling.raw_name!r} of each "
            "InfluxDB sink: run `bridge-cli setup-influxdb` (and `bridge-cli verify`) before "
            "starting Telegraf; InfluxDB refuses writes to a missing bucket or retention "
            "policy and Telegraf drops them"
        )


def _downsampling(doc: object, problems: list[str]) -> Values:
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        problems.append(f"downsampling = {doc!r} is invalid: expected a mapping")
        doc = {}
    result = _section(schema.DOWNSAMPLING, doc, "downsampling", problems)
    names: dict[str, str] = {}
    for key in ("raw_name", "name_1m", "name_5m", "name_1h"):
        value = result[key]
        if not isinstance(value, str) or not _TIER_NAME.match(value):
            problems.append(
                f"downsampling.{key} = {value!r} is invalid: expected a name of letters, "
                "digits, '_' and '-' (at most 64, not starting with '_' or '-')"
            )
        elif value in names:
            problems.append(
                f"downsampling.{key} = {value!r} is also downsampling.{names[value]}; "
                "each tier needs its own name"
            )
        else:
            names[value] = key
    tag = result["route_tag"]
    if not isinstance(tag, str) or not _TAG_KEY.match(tag):
        problems.append(
            f"downsampling.route_tag = {tag!r} is invalid: expected a tag key of letters, "
            "digits and '_', starting with a letter"
        )
    return result


def _yaml_problem(source: str, exc: yaml.YAMLError) -> str:
    """``bridge.yaml:7:3: mapping values are not allowed here``: where the parser stopped."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"{source}: not valid YAML: {problem}"
    message = f"{source}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {problem}"
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        message += f" ({context} at line {context_mark.line + 1})"
    return message


def load_settings(
    path: Path | None,
    env: Mapping[str, str] | None = None,
    *,
    text: str | None = None,
    base_dir: Path | None = None,
) -> Settings:
    """Read ``path`` (or ``text``), apply the environment and validate.

    Relative paths (agent directories and log, file sinks, token files, plugins' path
    options) are made absolute under ``base_dir``, by default the config file's directory;
    ``text`` without ``path`` has no directory, so its caller must say where it belongs.
    Raises :class:`InvalidConfig` naming every problem.
    """
    if base_dir is None:
        if path is None:
            raise ValueError("load_settings(text=...) without a path needs base_dir")
        base_dir = Path(path).absolute().parent
    environ = dict(os.environ if env is None else env)
    source = str(path) if path is not None else "<embedded>"
    if text is None:
        if path is None:
            raise InvalidConfig(source, ["no config file given"])
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidConfig(source, [f"config file {path} does not exist"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidConfig(source, [f"cannot read {path}: {exc}"]) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidConfig(source, [_yaml_problem(source, exc)]) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise InvalidConfig(source, ["the top level must be a mapping with agent, sources, sinks"])
    notes: list[str] = []
    env_problems: list[str] = []
    doc, referenced = yaml_vars.expand(doc, environ, env_problems)
    envmap.apply_aliases(doc, environ, notes, env_problems, referenced=referenced)
    envmap.apply_source_aliases(doc, environ, notes, env_problems)
    envmap.apply_downsampling_aliases(doc, environ, notes)
    envmap.apply_canonical(doc, environ)
    return _validate(doc, source, base_dir, notes, env_problems)
