"""InfluxQL quoting: identifiers and string literals, for every InfluxQL statement in ``cli/``.

Why one table: a name or value from the command line or the config must never change a
statement's shape. Both forms escape the backslash, their quote and the newline (a raw newline
would end the statement in influxd's parser).
"""

from __future__ import annotations


def influxql_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier (backslash, quote and newline escaped)."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def influxql_string(value: str) -> str:
    """An InfluxQL single-quoted string literal (backslash, quote and newline escaped)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"
