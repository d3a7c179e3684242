"""Escaping for unit files: every value a template interpolates goes through one of these.

systemd splits settings on whitespace, unquotes quotes and expands ``%`` specifiers (and ``$``
in ``Exec*=``), so a path or a token name with such a character would silently become another
value; these filters escape what systemd would expand and refuse what cannot be made safe.
"""

from __future__ import annotations

import re

from telegraf_bridge.cli.systemd.errors import InstallError

_PLAIN_ARG = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


class UnitText(str):
    """Text already escaped for a unit file (the output of a filter)."""

    __slots__ = ()


def _no_control(text: str) -> str:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise InstallError(f"{text!r} contains a control character; it cannot go into a unit")
    return text


def sd_value(value: object) -> UnitText:
    """A single-word setting (a path, a user): ``%`` escaped; whitespace and quotes refused."""
    text = _no_control(str(value))
    if re.search(r"[\s\"'\\]", text):
        raise InstallError(
            f"{text!r} contains whitespace, a quote or a backslash, which systemd settings split "
            "or unquote; choose a path or name without them"
        )
    return UnitText(text.replace("%", "%%"))


def sd_list(values: list[object]) -> UnitText:
    """A space-separated list of single words."""
    return UnitText(" ".join(sd_value(v) for v in values))


def sd_quoted(value: object) -> UnitText:
    """A double-quoted word (``Environment="KEY=VALUE"``)."""
    text = _no_control(str(value)).replace("\\", "\\\\").replace('"', '\\"')
    return UnitText('"' + text.replace("%", "%%") + '"')


def sd_comment(value: object) -> UnitText:
    """Text inside a comment line (no specifiers are expanded there)."""
    return UnitText(_no_control(str(value)))


def _exec_arg(arg: str) -> str:
    _no_control(arg)
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN_ARG.match(arg):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sd_exec(argv: list[str]) -> UnitText:
    """A command line for ``Exec*=``: ``%`` and ``$`` escaped, words quoted where needed."""
    return UnitText(" ".join(_exec_arg(str(a)) for a in argv))
