"""One option's value checked against its schema entry: the rule of each kind, in one place.

Why apart from :mod:`settings`: loading a config (YAML, the environment, sections, paths) and
deciding whether one value fits its option are separate jobs; each kind (boolean, integer,
duration, mapping, the string kinds) has its own small checker here, and :func:`coerce` is
the one entry point, which lists a problem and picks the value the later checks see.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from telegraf_bridge.cli import envmap, schema
from telegraf_bridge.plugins.common import ConfigError, parse_duration


class _Bad(Exception):
    """A value does not fit its option; ``allowed`` says what would.

    ``converted`` is the value after the conversion an environment string or a YAML time got
    (the problem shows that one, and it is kept when it only breaks a rule).
    """

    def __init__(self, allowed: str, converted: object = None) -> None:
        super().__init__(allowed)
        self.allowed = allowed
        self.converted = converted


def _boolean(opt: schema.Opt, value: object) -> object:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in envmap.TRUE_WORDS:
            return True
        if lowered in envmap.FALSE_WORDS - {""}:
            return False
    if isinstance(value, bool):
        return value
    raise _Bad("true or false")


def _integer(opt: schema.Opt, value: object) -> object:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad("an integer")
    if opt.minimum is not None and value < opt.minimum:
        raise _Bad(f"an integer >= {int(opt.minimum)}", value)
    return value


def _duration(opt: schema.Opt, value: object, where: str) -> object:
    if value == "" and opt.default == "":
        return ""
    try:
        parse_duration(value, key=f"{where}.{opt.key}")
    except ConfigError:
        raise _Bad('a duration such as "500ms", "10s", "5m" or "1h"') from None
    return value if isinstance(value, str) else f"{value}s"


def _mapping(opt: schema.Opt, value: object) -> object:
    if not isinstance(value, dict):
        raise _Bad("a mapping of plugin options")
    return value


def _text(opt: schema.Opt, value: object) -> str:
    """A string option: its choices, or the rule of its kind (name, variable, URL, one line)."""
    if isinstance(value, datetime):
        # YAML reads an unquoted `2025-01-01T00:00:00Z` as a time; the option means that time.
        value = value.isoformat().replace("+00:00", "Z")
    if not isinstance(value, str):
        raise _Bad("a string")
    kind = opt.kind
    if opt.choices is not None:
        if value not in opt.choices:
            raise _Bad("one of " + ", ".join(repr(c) for c in opt.choices), value)
    elif kind == "name" and not schema.NAME_RE.match(value):
        raise _Bad(
            "a name of lower-case letters, digits, '_' and '-', starting with a letter", value
        )
    elif kind == "env_name" and value and not schema.ENV_NAME_RE.match(value):
        raise _Bad("an environment variable name such as INFLUX_TOKEN", value)
    elif kind == "url":
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise _Bad("an http:// or https:// URL", value)
    elif "\n" in value or "\r" in value:
        raise _Bad("a single line of text", value)
    return value


def coerce(opt: schema.Opt, value: Any, where: str, problems: list[str]) -> Any:
    """Check ``value`` against ``opt``; strings from the environment are converted.

    A value of the wrong type falls back to the default (so later checks see a sane value);
    a value of the right type that breaks a rule (a choice, a minimum, a URL) is kept. Either
    way the problem is listed, and nothing renders.
    """
    try:
        if opt.kind == "boolean":
            return _boolean(opt, value)
        if opt.kind == "integer":
            return _integer(opt, value)
        if opt.kind == "duration":
            return _duration(opt, value, where)
        if opt.kind == "mapping":
            return _mapping(opt, value)
        return _text(opt, value)
    except _Bad as bad:
        shown = value if bad.converted is None else bad.converted
        problems.append(f"{where}.{opt.key} = {shown!r} is invalid: expected {bad.allowed}")
        # A value that only breaks a rule is kept; one of the wrong type takes the default
        # (a mapping option: empty), so the later checks see a value of the right type.
        if bad.converted is not None:
            return bad.converted
        return {} if opt.kind == "mapping" else opt.default
