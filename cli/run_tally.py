"""What ``bridge-cli run`` counts: per sink written, dropped, buffered, errors; per source points.

Two feeds, both from Telegraf itself, never from counting lines in a file:

- its own counters (``inputs.internal``, rendered for ``run`` onto Telegraf's stdout as JSON,
  see :class:`telegraf_bridge.cli.render.RunStatus`), every couple of seconds, for the live
  table;
- its log, with the sinks at debug level: ``Wrote batch of N metrics`` after every accepted
  write (also the last flush at shutdown, which the counters miss) and ``Buffer fullness``.

Telegraf's InfluxDB 1.x output answers a 4xx (401 Unauthorized, a type conflict) with an
``E! ... (will be dropped: ...)`` line and then counts the batch as written; the batch that
follows such a line is counted here as dropped, which is what happened to it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from telegraf_bridge.cli.render import PLUGIN_HOST_ALIAS
from telegraf_bridge.cli.source_status import SourceStatus
from telegraf_bridge.cli.telegraf_log import LogLine

_WROTE = re.compile(r"^Wrote batch of (\d+) metrics")
_FULLNESS = re.compile(r"^Buffer fullness: (\d+)")
_OVERFLOW = re.compile(r"^Metric buffer overflow; (\d+) metrics have been dropped")
# "[agent] Error writing to outputs.influxdb_v2::cloud: ..."
_AGENT_WRITE_ERROR = re.compile(r"^Error writing to outputs\.[\w]+::([^:]+): (.*)$")
# Aliases of the outputs bridge-cli adds for itself; they are not sinks.
_OWN_ALIASES = frozenset({"health", "bridge-run-status"})


@dataclass
class SinkTally:
    """One sink's counts during this run."""

    name: str
    kind: str
    # From the log, exact (also the last flush at shutdown).
    written: int = 0
    refused: int = 0  # batches after a "will be dropped" line
    overflow: int = 0  # "Metric buffer overflow" lines
    buffered: int = 0
    errors: int = 0
    last_error: str = ""
    drop_seen: bool = False
    # From Telegraf's counters (they lag by one status interval and miss the last flush).
    counted_dropped: int = 0
    counted_rejected: int = 0
    added: int = 0
    _drop_next_batch: bool = False

    @property
    def total_dropped(self) -> int:
        """Points the sink refused or the buffer discarded."""
        return self.refused + self.counted_rejected + max(self.overflow, self.counted_dropped)

    @property
    def total_written(self) -> int:
        """Points the sink accepted."""
        return self.written

    def as_dict(self) -> dict[str, object]:
        """The JSON form of the summary."""
        return {
            "name": self.name,
            "type": self.kind,
            "written": self.total_written,
            "dropped": self.total_dropped,
            "buffered": self.buffered,
            "errors": self.errors,
            "last_error": self.last_error,
        }


@dataclass
class SourceTally:
    """One source's counts during this run."""

    name: str
    plugin: str
    points: int = 0
    errors: int = 0
    skips: dict[str, int] = field(default_factory=dict)
    held: str = ""
    # Points per Telegraf input: an iotflow source has two (HTTP via execd, and MQTT).
    by_input: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The JSON form of the summary."""
        return {
            "name": self.name,
            "plugin": self.plugin,
            "points": self.points,
            "errors": self.errors,
            "skips": dict(self.skips),
            "held": self.held,
        }


# A hosted source's log lines name it after their logger: "[telegraf_bridge.plugins.x:<name>]".
_HOSTED_SOURCE = re.compile(r"\[[\w.]+:([a-z][a-z0-9_-]*)\]")


def _source_name(line: LogLine) -> str:
    """The source an input's log line is about: its alias, or the plugin host's source."""
    alias = line.alias.removesuffix("-mqtt")
    if alias == PLUGIN_HOST_ALIAS:
        found = _HOSTED_SOURCE.search(line.message)
        return found[1] if found else alias
    return alias


class RunTally:
    """Counts for the configured sinks and sources, fed by Telegraf's log and counters."""

    def __init__(self, sinks: dict[str, str], sources: dict[str, str]) -> None:
        """``sinks`` and ``sources`` map each name to its type or plugin."""
        self.sinks = {name: SinkTally(name, kind) for name, kind in sinks.items()}
        self.sources = {name: SourceTally(name, plugin) for name, plugin in sources.items()}

    # -- the log -------------------------------------------------------------------------------

    def feed_log(self, line: LogLine) -> None:
        """Account for one line of Telegraf's log."""
        if line.kind.startswith("outputs."):
            sink = self.sinks.get(line.alias)
            if sink is not None:
                self._sink_line(sink, line)
        elif line.plugin == "agent" and line.level == "E":
            match = _AGENT_WRITE_ERROR.match(line.message)
            sink = self.sinks.get(match[1]) if match else None
            if sink is not None and match is not None:
                sink.last_error = match[2]
                sink.drop_seen = sink.drop_seen or "will be dropped" in match[2]
        elif line.kind.startswith("inputs.") and line.level == "E":
            source = self.sources.get(_source_name(line))
            if source is not None:
                source.errors += 1

    @staticmethod
    def _sink_line(sink: SinkTally, line: LogLine) -> None:
        if line.level == "E":
            sink.errors += 1
            sink.last_error = line.message
            if "will be dropped" in line.message:
                sink._drop_next_batch = True
                sink.drop_seen = True
            return
        wrote = _WROTE.match(line.message)
        if wrote:
            count = int(wrote[1])
            if sink._drop_next_batch:
                sink.refused += count
                sink._drop_next_batch = False
            else:
                sink.written += count
            return
        fullness = _FULLNESS.match(line.message)
        if fullness:
            sink.buffered = int(fullness[1])
            return
        overflow = _OVERFLOW.match(line.message)
        if overflow:
            sink.overflow += int(overflow[1])

    # -- Telegraf's counters -------------------------------------------------------------------

    def feed_status(self, raw: str, prefix: str) -> None:
        """Account for one JSON line of ``inputs.internal`` counters; other lines are ignored."""
        try:
            doc = json.loads(raw)
        except ValueError:
            return
        if not isinstance(doc, dict):
            return
        name = str(doc.get("name", "")).removeprefix(prefix)
        tags = doc.get("tags") or {}
        fields = doc.get("fields") or {}
        if not isinstance(tags, dict) or not isinstance(fields, dict):
            return
        alias = str(tags.get("alias", ""))
        if name == "internal_write" and alias not in _OWN_ALIASES:
            sink = self.sinks.get(alias)
            if sink is not None:
                sink.counted_dropped = int(fields.get("metrics_dropped", 0))
                sink.counted_rejected = int(fields.get("metrics_rejected", 0))
                sink.added = int(fields.get("metrics_added", 0))
                sink.buffered = int(fields.get("buffer_size", sink.buffered))
        elif name == "internal_gather":
            source = self.sources.get(alias.removesuffix("-mqtt"))
            if source is not None:
                source.by_input[alias] = int(fields.get("metrics_gathered", 0))
                source.points = sum(source.by_input.values())

    # -- the plugins' own status files --------------------------------------------------------

    def feed_sources(self, statuses: dict[str, SourceStatus], since_ns: int) -> None:
        """Skips, clock holds and points as each plugin reports them (files of this run only).

        A plugin counts the points it wrote at exit, which Telegraf's counters may not have
        reported yet, so the larger count wins.
        """
        for name, status in statuses.items():
            source = self.sources.get(name)
            if source is None or status.started_ns < since_ns:
                continue
            source.skips = dict(status.skips)
            source.held = status.held or ""
            source.points = max(source.points, status.points)

    # -- verdict -------------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Why this run must not end with "OK".

        Dropped points, sinks that never accepted one, and sources still holding their data at
        the end (an unsynchronised clock).
        """
        found = [
            f"source {src.name!r} is holding its data: {src.held}; fix: wait for NTP to sync "
            "the clock, or (on hosts without the kernel's sync flag) set "
            "agent.require_clock_sync: false; points before agent.time_floor are never sent"
            for src in self.sources.values()
            if src.held
        ]
        for sink in self.sinks.values():
            reason = f": {sink.last_error}" if sink.last_error else ""
            if sink.total_dropped or sink.drop_seen:
                count = sink.total_dropped or "some"
                found.append(f"sink {sink.name!r} dropped {count} point(s){reason}{_fix(sink)}")
            elif sink.total_written == 0 and (sink.buffered or sink.added or sink.errors):
                found.append(
                    f"sink {sink.name!r} never accepted a write ({sink.buffered} point(s) "
                    f"still buffered){reason}{_fix(sink)}"
                )
        return found


def _fix(sink: SinkTally) -> str:
    """The next step for a sink's last error, when it is a common one."""
    error = sink.last_error.lower()
    if "401" in error or "403" in error or "unauthorized" in error or "forbidden" in error:
        return (
            f"; fix: check sink {sink.name!r}'s credentials (token_env/token_file, or "
            "username/password_env for InfluxDB 1.x)"
        )
    if "connection refused" in error or "no such host" in error or "timeout" in error:
        return f"; fix: check that InfluxDB is running and reachable at sink {sink.name!r}'s url"
    if "not found" in error:
        return (
            f"; fix: create the bucket/database of sink {sink.name!r} "
            "(bridge-cli setup-influxdb creates the meter tiers)"
        )
    return ""
