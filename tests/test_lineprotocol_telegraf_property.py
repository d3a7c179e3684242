"""Property: any Unicode tag value, tag key, field key or string field becomes exactly one point
that the real Telegraf parses back to the same values (after the documented sanitising of line
breaks and invalid surrogates). Telegraf re-serialises what it parsed as JSON, so the check does
not depend on our own line-protocol reader.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support import HELPERS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rig import TelegrafProcess, wait_for
from telegraf_bridge.plugins.common import LineProtocolSerializer, Point, SkipCounter

pytestmark = pytest.mark.telegraf

BASE_T = 1_800_000_000_000_000_000


def sanitised(text: str, *, key_or_tag: bool) -> str:
    """What the documented rules (plugins/common/README.md) turn ``text`` into."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    table = {"\n": "\\n", "\r": "\\r"}
    if not key_or_tag:
        return "".join(table.get(ch, ch) for ch in text)
    table |= {"\t": "\\t", "\f": "\\f", "\v": "\\v"}
    text = "".join(table.get(ch, ch) for ch in text)
    out = []
    for index, ch in enumerate(text):
        unsafe = ch == "\\" and (index == len(text) - 1 or text[index + 1] in ',= "')
        out.append("\uff3c" if unsafe else ch)
    return "".join(out)


class TelegrafParser:
    """One Telegraf reading lines from a FIFO and writing every metric as JSON."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.fifo = workdir / "lines.fifo"
        os.mkfifo(self.fifo)
        self.out = workdir / "metrics.json"
        conf = workdir / "telegraf.conf"
        command = json.dumps([sys.executable, str(HELPERS / "relay.py"), str(self.fifo)])
        conf.write_text(
            f"""
[agent]
  interval = "1s"
  flush_interval = "100ms"
  metric_batch_size = 5000
  metric_buffer_limit = 100000
  omit_hostname = true
[[inputs.execd]]
  command = {command}
  signal = "none"
  data_format = "influx"
[[outputs.file]]
  files = ["{self.out}"]
  data_format = "json"
  json_timestamp_units = "1ns"
""",
            encoding="utf-8",
        )
        self.telegraf = TelegrafProcess(binary, conf, workdir)
        self.seen = 0

    def parse(self, lines: list[str]) -> list[dict[str, object]]:
        with self.fifo.open("wb") as fifo:
            fifo.write(("\n".join(lines) + "\n").encode("utf-8"))
        want = self.seen + len(lines)
        wait_for(lambda: self._count() >= want, timeout=30, what=f"{want} metrics from Telegraf")
        complete = self.out.read_text("utf-8").split("\n")[:-1]  # a last partial line waits
        metrics = [json.loads(x) for x in complete if x]
        new = metrics[self.seen :]
        self.seen = len(metrics)
        return new

    def _count(self) -> int:
        if not self.out.exists():
            return 0
        return self.out.read_bytes().count(b"\n")


@pytest.fixture(scope="module")
def telegraf_parser(
    telegraf_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TelegrafParser]:
    parser = TelegrafParser(telegraf_bin, tmp_path_factory.mktemp("prop"))
    with parser.telegraf:
        yield parser


texts = st.text(min_size=1, max_size=40)
points_strategy = st.lists(
    st.tuples(
        st.dictionaries(texts, texts, min_size=1, max_size=3),  # tags
        texts,  # field key
        st.text(max_size=60),  # string field value
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=int(os.environ.get("BRIDGE_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=points_strategy)
def test_any_unicode_round_trips_through_telegraf(
    telegraf_parser: TelegrafParser, batch: list[tuple[dict[str, str], str, str]]
) -> None:
    serializer = LineProtocolSerializer(counter=SkipCounter())
    lines: list[str] = []
    expected: list[tuple[dict[str, str], dict[str, object]]] = []
    for index, (tags, field_key, value) in enumerate(batch):
        ts = BASE_T + telegraf_parser.seen * 1000 + index
        point = Point("prop", {**tags, "seq": str(index)}, {field_key: value, "n": 1.0}, ts)
        line = serializer.line(point)
        assert line is not None
        assert "\n" not in line and "\r" not in line
        lines.append(line)
        want_tags: dict[str, str] = {}
        for k, v in {**tags, "seq": str(index)}.items():
            key = sanitised(k, key_or_tag=True)
            want_tags.setdefault(key, sanitised(v, key_or_tag=True))
        want_fields: dict[str, object] = {"n": 1.0}
        want_fields.setdefault(
            sanitised(field_key, key_or_tag=True), sanitised(value, key_or_tag=False)
        )
        expected.append((want_tags, want_fields))

    metrics = telegraf_parser.parse(lines)
    assert len(metrics) == len(lines), "every line must become exactly one metric"
    for metric, (want_tags, want_fields), line in zip(metrics, expected, lines, strict=True):
        assert metric["name"] == "prop", line
        assert metric["tags"] == want_tags, line
        got_fields = dict(metric["fields"])  # type: ignore[call-overload]
        if got_fields.get("n") == 1:
            got_fields["n"] = 1.0
        assert got_fields == want_fields, line
