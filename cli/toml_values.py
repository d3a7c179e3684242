"""TOML literals for the templates, and a tiny TOML writer for plugin config files.

Every value a template interpolates goes through :func:`toml_value`, which escapes it for TOML
and also escapes ``$`` as ``$$``: Telegraf substitutes ``${VAR}`` inside strings, so a bucket
or path containing ``${...}`` must never pull an environment variable into the config.
Secret references are the one deliberate exception and pass through :func:`raw_string`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class TomlLiteral(str):
    """A string that is already a valid TOML value (output of a filter)."""

    __slots__ = ()


def _basic_string(text: str, *, escape_dollar: bool) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif ch == "$" and escape_dollar:
            out.append("$$")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(value: Any, *, escape_dollar: bool = True) -> TomlLiteral:
    """``value`` as a TOML literal (strings, numbers, booleans, lists, inline tables)."""
    if isinstance(value, bool):
        return TomlLiteral("true" if value else "false")
    if isinstance(value, int):
        return TomlLiteral(str(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot render non-finite number {value!r} into TOML")
        return TomlLiteral(repr(value))
    if isinstance(value, str):
        return TomlLiteral(_basic_string(value, escape_dollar=escape_dollar))
    if isinstance(value, list | tuple):
        return TomlLiteral(
            "[" + ", ".join(toml_value(v, escape_dollar=escape_dollar) for v in value) + "]"
        )
    if isinstance(value, Mapping):
        items = ", ".join(
            f"{toml_key(str(k))} = {toml_value(v, escape_dollar=escape_dollar)}"
            for k, v in value.items()
        )
        return TomlLiteral("{" + items + "}")
    raise ValueError(f"cannot render {type(value).__name__} value {value!r} into TOML")


def raw_string(value: str) -> TomlLiteral:
    """A string whose ``${VAR}`` / ``@{store:key}`` references Telegraf must resolve."""
    return TomlLiteral(_basic_string(value, escape_dollar=False))


def toml_comment(value: Any) -> TomlLiteral:
    """Text safe inside a ``#`` comment: one line, printable."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return TomlLiteral(text)


def toml_key(key: str) -> str:
    """A bare key when possible, else a quoted one."""
    if _BARE_KEY.match(key):
        return key
    return _basic_string(key, escape_dollar=False)


def dump_document(doc: Mapping[str, Any], *, header: str = "") -> str:
    """A TOML document: top-level scalars first, then one ``[table]`` per nested mapping.

    Plugin config files are read by ``tomllib``, not by Telegraf, so ``$`` is not escaped.
    """
    lines = [f"# {line}" for line in header.splitlines()]
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in doc.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{toml_key(key)} = {toml_value(value, escape_dollar=False)}")
    for name, table in tables:
        lines.append("")
        lines.append(f"[{toml_key(name)}]")
        for key, value in table.items():
            lines.append(f"{toml_key(key)} = {toml_value(value, escape_dollar=False)}")
    return "\n".join(lines) + "\n"
