"""Per-source status from the plugins' status files, and what each skip reason means.

Every plugin instance writes ``<state_dir>/<plugin>-<instance>.status.json``
(:mod:`telegraf_bridge.plugins.common._status`): its skips by reason, whether it holds data
for the clock, and the points it wrote. ``run`` and ``check-config`` read them here, so every
skip reaches the console with its count, its meaning and the option that changes it.

:data:`REASONS` is the one table of reasons. Every reason any plugin counts has an entry (a
test collects them from the plugins' code); an unknown reason still shows, with a generic
meaning, so a new one is never hidden.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from telegraf_bridge.cli.config_model import SourceConfig
from telegraf_bridge.plugins.common._status import STATUS_SUFFIX


class Reason(NamedTuple):
    """What a skip reason means and what the user can change (``fix``: an option or a step)."""

    meaning: str
    fix: str


_FIX_SOURCE = "fix the device or program that writes it"
_ENCODING = "nothing to change: the value was made safe and the point kept"
_DEVICE = "nothing to change on this side: the device or client sent it; see the log line"

REASONS: Mapping[str, Reason] = {
    # -- the serializer (every plugin) ---------------------------------------------------------
    "timestamp_before_floor": Reason(
        "the record is stamped before agent.time_floor and was not written",
        "set agent.time_floor earlier than your oldest real data (e.g. 2000-01-01T00:00:00Z)",
    ),
    "invalid_timestamp": Reason(
        "the record's timestamp cannot be read or is out of range; record not written",
        "check the source's timestamp option (ndjson_tail: timestamp_key, timestamp_format)",
    ),
    "field_type_mismatch": Reason(
        "a field had another type than declared and was left out of the point",
        "declare the field's type in the source's options (ndjson_tail: field_types)",
    ),
    "nonfinite_field_dropped": Reason(
        "a NaN or infinite number cannot be stored; that field was left out", _FIX_SOURCE
    ),
    "integer_out_of_range": Reason(
        "an integer beyond 64 bits was left out of the point", _FIX_SOURCE
    ),
    "unsigned_out_of_range": Reason(
        "an unsigned integer beyond 64 bits was left out of the point", _FIX_SOURCE
    ),
    "invalid_measurement": Reason(
        "the measurement name is empty or unusable; point not written",
        "set the source's measurement option",
    ),
    "point_without_fields_skipped": Reason(
        "no field was left to store; point not written",
        "check the source's field options (ndjson_tail: field_containers, fallback)",
    ),
    "empty_field_key_dropped": Reason("a field with an empty name was left out", _FIX_SOURCE),
    "empty_tag_key_dropped": Reason("a tag with an empty name was left out", _FIX_SOURCE),
    "empty_or_invalid_tag_value_dropped": Reason(
        "a tag with an empty or unusable value was left out", _FIX_SOURCE
    ),
    "duplicate_key_dropped": Reason(
        "a tag and a field (or two keys) share a name; the second was left out",
        "check the source's tag options (ndjson_tail: tag_keys)",
    ),
    "invalid_unicode_replaced": Reason("invalid Unicode was replaced (U+FFFD)", _ENCODING),
    "control_characters_escaped": Reason("control characters were escaped", _ENCODING),
    "unrepresentable_backslash_replaced": Reason(
        "a trailing backslash was replaced by U+FF3C", _ENCODING
    ),
    # -- ndjson_tail ---------------------------------------------------------------------------
    "line_too_long": Reason(
        "a line longer than the limit was skipped",
        "raise the source's max_line_bytes option (ndjson_tail, taptap)",
    ),
    "empty_line": Reason("an empty line was skipped", "nothing to change: no data was lost"),
    "invalid_utf8": Reason("a line that is not UTF-8 was skipped", _FIX_SOURCE),
    "invalid_json": Reason("a line that is not JSON was skipped", _FIX_SOURCE),
    "too_deeply_nested": Reason("a record nested too deeply was skipped", _FIX_SOURCE),
    "not_an_object": Reason("a JSON line that is not an object was skipped", _FIX_SOURCE),
    "missing_timestamp": Reason(
        "a record without its timestamp key was skipped", "set ndjson_tail's timestamp_key"
    ),
    "no_field_container": Reason(
        "a record had none of the field containers and was skipped",
        'set ndjson_tail\'s field_containers, or fallback = "raw"',
    ),
    "nesting_too_deep": Reason(
        "a value nested deeper than max_depth was left out", "raise ndjson_tail's max_depth"
    ),
    "array_value_skipped": Reason("a JSON array value was left out", _FIX_SOURCE),
    "duplicate_json_key": Reason(
        "a key occurred twice in one record; the last value was used", _FIX_SOURCE
    ),
    "timestamp_in_future": Reason(
        "the record is stamped further in the future than max_future; not written",
        "raise ndjson_tail's max_future, or fix the device's clock",
    ),
    "file_truncated": Reason(
        "a tailed file shrank; reading restarted at its beginning",
        "nothing to change, unless a program rewrites the file in place",
    ),
    # -- taptap --------------------------------------------------------------------------------
    "truncated_line": Reason("taptap printed a line without its end; skipped", _DEVICE),
    "not_json": Reason("taptap printed a line that is not JSON; skipped", _DEVICE),
    "unknown_event_type": Reason(
        "taptap reported an event this version does not know; skipped",
        "nothing to change; update telegraf-bridge if it keeps coming",
    ),
    "invalid_report": Reason("a power report with a missing or bad value; skipped", _DEVICE),
    "invalid_infrastructure": Reason("a malformed gateway/node table; skipped", _DEVICE),
    # -- hoymiles ------------------------------------------------------------------------------
    "lifetime_counter_regression": Reason(
        "a lifetime energy counter went down; that reading was not written",
        "nothing to change: the DTU's value is refused until it is back at its maximum",
    ),
    # -- iotflow HTTP listener: refusals answered to the client (counted in its status row) ----
    "unauthorized": Reason("a request without a valid device API key was refused (401)", _DEVICE),
    "too_large": Reason(
        "a request body over the limit was refused (413)", "raise iotflow's http max_body_bytes"
    ),
    "length_required": Reason("a request without Content-Length was refused (411)", _DEVICE),
    "unsupported_media_type": Reason("a body that is not JSON was refused (415)", _DEVICE),
    "not_found": Reason("a request to an unknown path was refused (404)", _DEVICE),
    "method_not_allowed": Reason("a request with a wrong method was refused (405)", _DEVICE),
    "bad_request_line": Reason("a malformed HTTP request was refused (400)", _DEVICE),
    "incomplete_body": Reason("a body shorter than announced was refused (400)", _DEVICE),
    "timeout": Reason("a client that stopped sending was cut off (408)", _DEVICE),
    "tls_handshake": Reason(
        "a TLS handshake failed", "check iotflow's tls_cert/tls_key and the client's trust"
    ),
    "clock_unsynchronised": Reason(
        "a request without its own timestamp was refused while the clock is unsynchronised (503)",
        "start NTP, or set agent.require_clock_sync: false on hosts without the kernel flag",
    ),
    # -- the delivery journal (every source but ndjson_tail; read from the status's journal) ----
    "journal_dropped_at_cap": Reason(
        "points the source kept in its journal were dropped, oldest first, because the disk "
        "buffer and journals reached the cap while the sinks did not drain it",
        "bring the sinks back (see the sinks above), or raise agent.buffer_max_size_mb",
    ),
    "journal_torn_tail": Reason(
        "the journal ended in a half-written entry (a power cut during a write); the entries "
        "before it were written again, the torn one was cut off",
        "nothing to change; if it repeats without power cuts, check the SD card",
    ),
    "output_unavailable": Reason("Telegraf was not reading; the request was refused (503)", ""),
    "buffer_full": Reason(
        "the disk buffer and journals were at the cap; the request was refused (503, "
        "Retry-After) and the device kept its data",
        "bring the sinks back (see `bridge-cli run`), or raise agent.buffer_max_size_mb",
    ),
    "internal": Reason("an internal error refused the request (500); see the log", ""),
    "malformed_json": Reason("a body that is not valid JSON was refused (400)", _DEVICE),
    "invalid_body": Reason("a body of the wrong shape was refused (400)", _DEVICE),
    "too_many_points": Reason(
        "a batch with too many points was refused (400)", "raise iotflow's http max_points"
    ),
    "invalid_type": Reason("a point with an invalid type was refused (400)", _DEVICE),
    "invalid_data": Reason("a point without usable data was refused (400)", _DEVICE),
    "invalid_value": Reason("a value that cannot be stored was refused (400)", _DEVICE),
    "invalid_key": Reason("an empty, too long or repeated key was refused (400)", _DEVICE),
    "too_deep": Reason("a body nested too deeply was refused (400)", _DEVICE),
    "too_many_fields": Reason("a point with too many fields was refused (400)", _DEVICE),
    "invalid_metadata": Reason("unusable device metadata was refused (400)", _DEVICE),
}


def explain(reason: str) -> Reason:
    """The table entry, or a generic one for a reason this version does not know."""
    return REASONS.get(reason) or Reason(f"skipped ({reason}); see Telegraf's log", "")


@dataclass
class SourceStatus:
    """One plugin instance's status as its file says."""

    plugin: str
    instance: str
    path: Path
    pid: int = 0
    started_ns: int = 0
    updated_ns: int = 0
    exited: bool = False
    skips: dict[str, int] = field(default_factory=dict)
    held: str | None = None
    points: int = 0

    @property
    def skipped(self) -> int:
        """All skips together."""
        return sum(self.skips.values())

    def alive(self) -> bool:
        """Whether the process that wrote the file still runs (False once it exited)."""
        if self.exited or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def skip_lines(self) -> list[str]:
        """``N x reason: meaning; fix: ...`` per reason, largest count first."""
        return skip_lines(self.skips)


def skip_lines(skips: Mapping[str, int]) -> list[str]:
    """``N x reason: meaning; fix: ...`` per reason, largest count first (every console)."""
    lines = []
    for reason, count in sorted(skips.items(), key=lambda kv: (-kv[1], kv[0])):
        info = explain(reason)
        fix = f"; fix: {info.fix}" if info.fix else ""
        lines.append(f"{count} x {reason}: {info.meaning}{fix}")
    return lines


def status_path(state_dir: Path, plugin: str, instance: str) -> Path:
    """Where the plugin instance writes its status (as ``PluginContext.state_path`` names it)."""
    return Path(state_dir) / f"{plugin}-{instance}.{STATUS_SUFFIX}.json"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def read_status(path: Path) -> SourceStatus | None:
    """The status in ``path``; None when missing or unreadable (a plugin mid-start)."""
    try:
        doc = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        return None
    raw_skips, journal = data.get("skips"), data.get("journal")
    skips: dict[Any, Any] = dict(raw_skips) if isinstance(raw_skips, dict) else {}
    if not isinstance(journal, dict):
        journal = {}
    # The journal's losses are skips to the user: same console line, count and fix.
    for reason, key in (("journal_dropped_at_cap", "dropped"), ("journal_torn_tail", "torn")):
        if _int(journal.get(key)):
            skips[reason] = _int(journal.get(key))
    held = data.get("held")
    return SourceStatus(
        plugin=str(data.get("plugin", "")),
        instance=str(data.get("instance", "")),
        path=Path(path),
        pid=_int(data.get("pid")),
        started_ns=_int(data.get("started_ns")),
        updated_ns=_int(data.get("updated_ns")),
        exited=bool(data.get("exited")),
        skips={str(k): _int(v) for k, v in skips.items() if _int(v)},
        held=str(held) if held else None,
        points=_int(data.get("points")),
    )


def source_statuses(state_dir: Path, sources: Iterable[SourceConfig]) -> dict[str, SourceStatus]:
    """Status per source name for ``sources`` (``Settings.active_sources()``), read now.

    A source without a file yet (nothing skipped or held so far, still running) gets an empty
    status, so callers can list every source.
    """
    out = {}
    for source in sources:
        name, plugin = source.name, source.plugin
        path = status_path(state_dir, plugin, name)
        out[name] = read_status(path) or SourceStatus(plugin=plugin, instance=name, path=path)
    return out
