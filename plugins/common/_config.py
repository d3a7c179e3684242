"""Plugin configuration: a TOML file read with the standard library, and durations.

Plugins run on a Pi Zero, so their config is TOML (``tomllib`` ships with Python 3.11) in the
same style as Telegraf's own sample configs. A bad file gives an error naming the file, the key
and what is allowed, and the plugin exits with status 2 instead of starting half-configured.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


class ConfigError(ValueError):
    """A configuration problem, phrased for the person who wrote the file.

    ``problems`` lists each problem on its own when one error carries several (unknown keys),
    so ``bridge-cli`` can report them one per line with every other problem of the config.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


def parse_duration(value: object, *, key: str = "duration") -> float:
    """Seconds from ``"10s"``, ``"1m30s"``-free simple forms like ``"500ms"``, or a number."""
    if isinstance(value, bool):
        raise ConfigError(f'{key}: expected a duration such as "10s", got {value!r}')
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError(f"{key}: duration must not be negative, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ConfigError(
        f'{key}: expected a duration such as "500ms", "10s", "5m", "1h" or "7d", got {value!r}'
    )


def format_duration(seconds: float) -> str:
    """The shortest Telegraf duration string for ``seconds``."""
    if seconds == 0:
        return "0s"
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3)):
        count = seconds / size
        if count >= 1 and abs(count - round(count)) < 1e-9:
            return f"{round(count)}{unit}"
    return f"{round(seconds * 1e9)}ns"


def load_toml(path: Path) -> dict[str, Any]:
    """Read a plugin config file, with errors that say which file and line."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


class Section:
    """Typed access to one table of a config file, remembering which keys were read.

    Unknown keys are an error (a typo must not silently fall back to a default).
    """

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self._data = dict(data)
        self._where = where
        self._used: set[str] = set()

    @property
    def where(self) -> str:
        """The path of this table in messages (``plugin.table``)."""
        return self._where

    def _get(self, key: str) -> Any:
        self._used.add(key)
        return self._data.get(key)

    def _fail(self, key: str, value: Any, allowed: str) -> ConfigError:
        return ConfigError(f"{self._where}.{key} = {value!r} is invalid: expected {allowed}")

    def string(self, key: str, default: str, *, choices: tuple[str, ...] | None = None) -> str:
        """A string option, optionally restricted to ``choices``."""
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._fail(key, value, "a string")
        if choices is not None and value not in choices:
            raise self._fail(key, value, "one of " + ", ".join(repr(c) for c in choices))
        return value

    def boolean(self, key: str, default: bool) -> bool:
        """A true/false option."""
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._fail(key, value, "true or false")
        return value

    def integer(self, key: str, default: int, *, minimum: int | None = None) -> int:
        """An integer option with an optional lower bound."""
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, value, "an integer")
        if minimum is not None and value < minimum:
            raise self._fail(key, value, f"an integer >= {minimum}")
        return value

    def number(self, key: str, default: float, *, minimum: float | None = None) -> float:
        """A numeric option with an optional lower bound."""
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, value, "a number")
        if minimum is not None and value < minimum:
            raise self._fail(key, value, f"a number >= {minimum}")
        return float(value)

    def duration(self, key: str, default: float, *, minimum: float | None = None) -> float:
        """A duration option in seconds."""
        value = self._get(key)
        if value is None:
            return default
        seconds = parse_duration(value, key=f"{self._where}.{key}")
        if minimum is not None and seconds < minimum:
            raise self._fail(key, value, f"a duration of at least {format_duration(minimum)}")
        return seconds

    def table(self, key: str) -> Section:
        """A nested table (empty when absent)."""
        value = self._get(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self._fail(key, value, "a table")
        return Section(value, f"{self._where}.{key}")

    def keys(self) -> list[str]:
        """The keys present in this table (for free-form tables such as type maps)."""
        return list(self._data)

    def raw(self, key: str) -> Any:
        """The value as parsed, for plugin-specific validation."""
        return self._get(key)

    def check_unknown(self) -> None:
        """Fail on keys that no option read (typos), suggesting the option meant."""
        unknown = sorted(set(self._data) - self._used)
        if not unknown:
            return
        import difflib  # noqa: PLC0415 - lazy: only a config with a typo gets here

        problems = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(self._used), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"{self._where}.{key} is not a known option{hint}; see the plugin's sample.conf"
            )
        raise ConfigError("; ".join(problems), problems)
