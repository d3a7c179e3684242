"""Flux quoting: string literals, for every Flux script in ``cli/``.

Why one function: bucket, measurement, tag and device names reach Flux scripts from the config
and the command line; escaped here once, none of them can change a script's shape.
"""

from __future__ import annotations


def flux_string(value: str) -> str:
    """A Flux string literal: backslash, quote, newline and ``${`` interpolation escaped."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("${", "\\${")
    )
    return f'"{escaped}"'
