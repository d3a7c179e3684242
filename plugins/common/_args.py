"""The command line every plugin shares, read without argparse in the common case.

Telegraf starts a plugin as ``... --config FILE``: argparse would cost every plugin process
about 0.75 MiB that stays for its whole life (argparse, gettext, and shutil with bz2, lzma and
locale, which its help formatter imports), for one line read once. So the plain forms (the
four options below, each spelled out, ``--config`` with a separate value) are read here, and
anything else (``--help``, ``--version``, ``--config=FILE``, abbreviations, mistakes) goes to
the argparse parser, which answers exactly as before: help, version or its usage error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from telegraf_bridge._version import __version__

_FLAGS = frozenset({"--once", "--ignore-stdin", "--debug"})


class PluginArgs(NamedTuple):
    """The parsed command line."""

    config: Path | None = None
    once: bool = False
    ignore_stdin: bool = False
    debug: bool = False


def parse_args(name: str, argv: Sequence[str]) -> PluginArgs:
    """The options in ``argv`` (without the program name); argparse's exit on help or error."""
    plain = _plain(argv)
    return plain if plain is not None else _argparse(name, argv)


def _plain(argv: Sequence[str]) -> PluginArgs | None:
    """The plain forms only; None for anything argparse must look at."""
    config: Path | None = None
    flags: set[str] = set()
    words = iter(argv)
    for word in words:
        if word in _FLAGS:
            flags.add(word)
        elif word == "--config":
            value = next(words, None)
            if value is None or value.startswith("-"):
                return None
            config = Path(value)
        else:
            return None
    return PluginArgs(config, "--once" in flags, "--ignore-stdin" in flags, "--debug" in flags)


def _argparse(name: str, argv: Sequence[str]) -> PluginArgs:
    import argparse  # noqa: PLC0415 - lazy: only help, version and mistakes get here

    parser = argparse.ArgumentParser(
        prog=f"bridge-{name.replace('_', '-')}",
        description=f"telegraf-bridge execd input plugin '{name}': writes line protocol to "
        "stdout for Telegraf's inputs.execd.",
    )
    parser.add_argument("--config", type=Path, help="plugin config file (TOML)")
    parser.add_argument("--once", action="store_true", help="gather once, print, exit")
    parser.add_argument(
        "--ignore-stdin",
        action="store_true",
        help="do not stop when stdin closes (for running outside Telegraf)",
    )
    parser.add_argument("--debug", action="store_true", help="log at debug level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parsed = parser.parse_args(argv)
    return PluginArgs(parsed.config, parsed.once, parsed.ignore_stdin, parsed.debug)
