r"""A strict line-protocol reader for plugin tests (and the InfluxDB fakes' request checking).

It reads exactly as Telegraf's default influx parser does: inside names, keys and tag values a
backslash pairs with the next character (a double backslash pairs only with itself), and only
backslash-comma, -equals, -space and -quote are unescaped (comma and space in measurements);
string fields unescape backslash-quote and double backslash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WS = "\t\n\v\f\r"
_UNESCAPE_KEY = re.compile(r'\\([,"= ])')
_UNESCAPE_NAME = re.compile(r"\\([, ])")
_UNESCAPE_STRING = re.compile(r'\\([\\"])')

FieldValue = float | int | str | bool


class LineProtocolError(ValueError):
    """A line that InfluxDB would reject; the message says why."""


@dataclass(frozen=True)
class ParsedPoint:
    """One parsed line; ``unsigned`` lists fields that carried the ``u`` suffix."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time_ns: int | None
    unsigned: frozenset[str] = frozenset()


def _read_token(line: str, pos: int, stops: str, unescape: re.Pattern[str]) -> tuple[str, int]:
    start = pos
    while pos < len(line):
        ch = line[pos]
        if ch in _WS:
            raise LineProtocolError(f"unescaped whitespace {ch!r} at {pos}")
        if ch == "\\" and pos + 1 < len(line):
            nxt = line[pos + 1]
            if nxt in _WS:
                raise LineProtocolError(f"backslash before whitespace at {pos}")
            pos += 1 if nxt == "\\" else 2
            continue
        if ch in stops:
            break
        pos += 1
    return unescape.sub(r"\1", line[start:pos]), pos


def _string_field(line: str, pos: int) -> tuple[str, int]:
    """The string field whose opening quote is at ``pos``, and where it ends.

    Only backslash-quote and double backslash are escapes; any other backslash is an error.
    """
    start = pos + 1
    pos += 1
    while pos < len(line):
        ch = line[pos]
        if ch == "\\":
            if pos + 1 >= len(line) or line[pos + 1] not in '"\\':
                raise LineProtocolError(f"lone backslash in string field at {pos}")
            pos += 2
            continue
        if ch == '"':
            return _UNESCAPE_STRING.sub(r"\1", line[start:pos]), pos + 1
        pos += 1
    raise LineProtocolError("unterminated string field")


def _bare_value(raw: str) -> tuple[FieldValue, bool]:
    """A boolean, ``i`` integer, ``u`` unsigned (flagged True) or finite float field value."""
    if raw in ("t", "T", "true", "True", "TRUE"):
        return True, False
    if raw in ("f", "F", "false", "False", "FALSE"):
        return False, False
    try:
        if raw.endswith("i"):
            return int(raw[:-1]), False
        if raw.endswith("u"):
            value = int(raw[:-1])
            if value < 0:
                raise LineProtocolError(f"negative unsigned {raw!r}")
            return value, True
        number = float(raw)
    except ValueError:
        raise LineProtocolError(f"invalid field value {raw!r}") from None
    if raw.lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
        raise LineProtocolError(f"invalid number {raw!r}")
    return number, False


def _field_value(line: str, pos: int) -> tuple[FieldValue, int, bool]:
    if pos >= len(line):
        raise LineProtocolError("missing field value")
    if line[pos] == '"':
        text, end = _string_field(line, pos)
        return text, end, False
    end = pos
    while end < len(line) and line[end] not in ", ":
        end += 1
    value, unsigned = _bare_value(line[pos:end])
    return value, end, unsigned


def _tags(line: str, pos: int) -> tuple[dict[str, str], int]:
    """The ``,key=value`` pairs after the measurement, up to the space before the fields."""
    tags: dict[str, str] = {}
    while pos < len(line) and line[pos] == ",":
        key, pos = _read_token(line, pos + 1, "=, ", _UNESCAPE_KEY)
        if pos >= len(line) or line[pos] != "=" or not key:
            raise LineProtocolError("missing tag key or '='")
        value, pos = _read_token(line, pos + 1, ",= ", _UNESCAPE_KEY)
        if not value:
            raise LineProtocolError(f"missing tag value for {key!r}")
        tags[key] = value
    return tags, pos


def _fields(line: str, pos: int) -> tuple[dict[str, FieldValue], set[str], int]:
    """The ``key=value`` fields (at least one), the unsigned ones, and where they end."""
    fields: dict[str, FieldValue] = {}
    unsigned = set()
    while True:
        key, pos = _read_token(line, pos, "=, ", _UNESCAPE_KEY)
        if not key or pos >= len(line) or line[pos] != "=":
            raise LineProtocolError("missing field key or '='")
        field_value, pos, is_unsigned = _field_value(line, pos + 1)
        fields[key] = field_value
        if is_unsigned:
            unsigned.add(key)
        if pos < len(line) and line[pos] == ",":
            pos += 1
            continue
        return fields, unsigned, pos


def _timestamp(line: str, pos: int) -> int | None:
    """The optional integer timestamp after the fields."""
    if pos >= len(line):
        return None
    if line[pos] != " ":
        raise LineProtocolError("garbage after fields")
    raw = line[pos + 1 :]
    try:
        return int(raw)
    except ValueError:
        raise LineProtocolError(f"invalid timestamp {raw!r}") from None


def parse_line(line: str) -> ParsedPoint:
    """Parse one line; raises :class:`LineProtocolError` with the reason when malformed."""
    if not line or line.startswith("#") or "\n" in line:
        raise LineProtocolError("empty line, comment or embedded newline")
    measurement, pos = _read_token(line, 0, ", ", _UNESCAPE_NAME)
    if not measurement:
        raise LineProtocolError("missing measurement")
    tags, pos = _tags(line, pos)
    if pos >= len(line) or line[pos] != " ":
        raise LineProtocolError("missing fields")
    fields, unsigned, pos = _fields(line, pos + 1)
    return ParsedPoint(measurement, tags, fields, _timestamp(line, pos), frozenset(unsigned))


def parse_lines(text: str) -> list[ParsedPoint]:
    """Parse a body of lines, skipping blank lines and comments."""
    return [
        parse_line(line.rstrip("\r"))
        for line in text.split("\n")
        if line.strip() and not line.startswith("#")
    ]
