"""One NDJSON line to one line-protocol line, or to a counted skip naming ``file:line``.

Two paths with one result: the fused fast path (:mod:`.fastpath`) for plain records, and the
general path (decode, convert to a Point, serialise) for every line the fast path leaves,
which does all the counting. The plugin and the differential test both use this class.
"""

from __future__ import annotations

from telegraf_bridge.plugins.common._lineprotocol import LineProtocolSerializer
from telegraf_bridge.plugins.ndjson_tail.convert import RecordConverter, RecordError, load_record
from telegraf_bridge.plugins.ndjson_tail.fastpath import FastPath
from telegraf_bridge.plugins.ndjson_tail.files import Line


class RecordLines:
    """Turns read lines into line-protocol lines; ``fast=False`` keeps to the general path."""

    def __init__(
        self,
        converter: RecordConverter,
        serializer: LineProtocolSerializer,
        max_future_ns: int,
        *,
        fast: bool = True,
    ) -> None:
        self.converter = converter
        self.serializer = serializer
        self.counter = serializer.counter
        self.max_future_ns = max_future_ns
        self._fast = FastPath(converter, serializer, max_future_ns).line if fast else None

    def line(self, line: Line, now_ns: int, clock_sane: bool) -> str | None:
        """The line for one read line, or None when it was skipped (and counted)."""
        if self._fast is not None and not line.too_long:
            rendered = self._fast(line.data, now_ns, clock_sane)
            if rendered is not None:
                return rendered
        return self.general(line, now_ns, clock_sane)

    def general(self, line: Line, now_ns: int, clock_sane: bool) -> str | None:
        """The general path: every check, every count, every ``file:line``."""
        where = f"{line.path}:{line.number}"
        count = self.counter.count
        if line.too_long:
            count("line_too_long", where)
            return None
        if not line.data.strip():
            count("empty_line", where)
            return None
        try:
            obj, duplicates = load_record(line.data, self.converter.timestamp_key)
            point, problems = self.converter.convert(obj)
        except RecordError as exc:
            count(exc.reason, f"{where}: {exc}")
            return None
        for key in duplicates:
            count("duplicate_json_key", f"{where}: {key}")
        for reason, detail in problems:
            count(reason, f"{where}: {detail}")
        if clock_sane and point.time_ns > now_ns + self.max_future_ns:
            count("timestamp_in_future", f"{where}: {point.time_ns}")
            return None
        return self.serializer.line(point)
