"""SQL quoting (InfluxDB 3): identifiers and string literals, for every SQL query in ``cli/``.

Why one table: table, column and device names reach the SQL from the config and the command
line; quoted here once, none of them can change a query's shape.
"""

from __future__ import annotations


def sql_ident(name: str) -> str:
    """A SQL double-quoted identifier (embedded quotes doubled; case is kept)."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    """A SQL single-quoted string literal (embedded quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"
