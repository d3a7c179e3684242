"""``bridge-cli rssi-report``: which optimizers report rarely, and how good their radio link is.

Replaces seed 004's ``rssi_report.py`` on any sink. The seed's lesson: a node that sends far
fewer reports than the rest is what makes "missing" power, more than its RSSI value, so the
lowest report counts come first, then the best and the worst mean RSSI for comparison.

The raw ``(node, rssi)`` values of the window are streamed from the sink and aggregated here,
identically for InfluxQL, Flux and SQL (whose percentile functions disagree). Memory per node
is one counter per distinct value: RSSI takes few distinct values, so a day of reports from a
large array fits a Pi Zero.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import click
from telegraf_bridge.cli.commands._sink_options import sink_options
from telegraf_bridge.cli.influx.sinks import load_query_settings, open_sink, select_sink
from telegraf_bridge.cli.influx.transport import SinkError
from telegraf_bridge.plugins.common import format_rfc3339_ns

PERCENTILE = 95  # the report's "p95" key and column name it
PERCENTILE_METHOD = "nearest-rank"


@dataclass
class NodeStats:
    """Running statistics of one tag value; ``values`` counts each distinct value once."""

    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    values: Counter[float] = field(default_factory=Counter)

    def add(self, value: float) -> None:
        """Take one report."""
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        self.values[value] += 1

    @property
    def mean(self) -> float:
        """Arithmetic mean of the reports."""
        return self.total / self.count

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile: the smallest value with at least p% of reports <= it.

        The rank is ``ceil(p/100 * n)`` (1-based) in ascending order, so the answer is always
        a value that was actually reported (no interpolation).
        """
        rank = max(1, math.ceil(p / 100 * self.count))
        seen = 0
        for value in sorted(self.values):
            seen += self.values[value]
            if seen >= rank:
                return value
        return self.maximum


def aggregate(rows: Iterable[tuple[str, float]]) -> dict[str, NodeStats]:
    """Fold ``(tag value, value)`` pairs into per-tag statistics."""
    nodes: dict[str, NodeStats] = {}
    for key, value in rows:
        if math.isnan(value):
            continue
        stats = nodes.get(key)
        if stats is None:
            stats = nodes[key] = NodeStats()
        stats.add(value)
    return nodes


class ReportRow(TypedDict):
    """One tag value's row (``p95`` is the :data:`PERCENTILE` percentile)."""

    tag_value: str
    count: int
    count_vs_median: float | None
    mean: float
    min: float
    max: float
    p95: float


class ReportMeta(TypedDict):
    """What was asked, and of which sink."""

    measurement: str
    field: str
    tag: str
    hours: float
    start_utc: str
    end_utc: str
    sink: str
    sink_type: str


class Report(ReportMeta):
    """The whole report, as ``--json`` prints it."""

    nodes: int
    reports: int
    median_count: float
    percentile: int
    percentile_method: str
    lowest_counts: list[ReportRow]
    best_mean: list[ReportRow]
    worst_mean: list[ReportRow]


def _row(key: str, stats: NodeStats, median_count: float) -> ReportRow:
    return {
        "tag_value": key,
        "count": stats.count,
        "count_vs_median": round(stats.count / median_count, 3) if median_count else None,
        "mean": round(stats.mean, 3),
        "min": stats.minimum,
        "max": stats.maximum,
        "p95": stats.percentile(PERCENTILE),
    }


def build_report(nodes: dict[str, NodeStats], top: int, meta: ReportMeta) -> Report:
    """The three sections, each at most ``top`` rows (0: all), as plain JSON data."""
    median_count = statistics.median(s.count for s in nodes.values()) if nodes else 0
    limit = top or None
    by_count = sorted(nodes.items(), key=lambda kv: (kv[1].count, kv[0]))
    best = sorted(nodes.items(), key=lambda kv: (-kv[1].mean, kv[0]))
    worst = sorted(nodes.items(), key=lambda kv: (kv[1].mean, kv[0]))
    return {
        **meta,
        "nodes": len(nodes),
        "reports": sum(s.count for s in nodes.values()),
        "median_count": median_count,
        "percentile": PERCENTILE,
        "percentile_method": PERCENTILE_METHOD,
        "lowest_counts": [_row(k, s, median_count) for k, s in by_count[:limit]],
        "best_mean": [_row(k, s, median_count) for k, s in best[:limit]],
        "worst_mean": [_row(k, s, median_count) for k, s in worst[:limit]],
    }


def _fmt(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.1f}"


def render_table(report: Report) -> str:
    """The report as three aligned text tables."""
    tag = report["tag"]
    lines = [
        f"{report['measurement']}.{report['field']} per {tag}, last {report['hours']:g}h "
        f"({report['start_utc']} .. {report['end_utc']}) on sink {report['sink']}: "
        f"{report['nodes']} {tag} value(s), {report['reports']} report(s), "
        f"median {_fmt(report['median_count'])} per {tag}",
    ]
    pcol = "p95"
    headers = [tag or "tag", "count", "% of median", "mean", "min", "max", pcol]
    sections = (
        ("Lowest report counts", report["lowest_counts"]),
        (f"Best mean {report['field']}", report["best_mean"]),
        (f"Worst mean {report['field']}", report["worst_mean"]),
    )
    for title, rows in sections:
        table = [
            [
                row["tag_value"] or "(none)",
                str(row["count"]),
                "-" if row["count_vs_median"] is None else f"{row['count_vs_median'] * 100:.0f}%",
                f"{row['mean']:.1f}",
                _fmt(row["min"]),
                _fmt(row["max"]),
                _fmt(row["p95"]),
            ]
            for row in rows
        ]
        widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
        lines += ["", f"{title} (top {len(rows)}):"]
        lines.append(
            "  ".join(
                h.ljust(w) if i == 0 else h.rjust(w)
                for i, (h, w) in enumerate(zip(headers, widths, strict=True))
            )
        )
        for cells in table:
            lines.append(
                "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(cells, widths, strict=True))
                )
            )
    lines += ["", f"{pcol}: {PERCENTILE_METHOD} percentile of the raw reports."]
    return "\n".join(lines)


@click.command("rssi-report")
@sink_options
@click.option(
    "--measurement",
    default="tigo_power_report",
    show_default=True,
    envvar=["BRIDGE_RSSI_MEASUREMENT", "INFLUX_MEASUREMENT"],
    help="Measurement to read (env: BRIDGE_RSSI_MEASUREMENT, INFLUX_MEASUREMENT).",
)
@click.option("--field", "field_name", default="rssi", show_default=True, help="Numeric field.")
@click.option("--tag", default="node_id", show_default=True, help="Tag that names a node.")
@click.option(
    "--hours",
    type=click.FloatRange(min=0, min_open=True),
    default=24.0,
    show_default=True,
    help="Window: the last this many hours.",
)
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=15,
    show_default=True,
    help="Rows per section; 0 lists every node.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds per request to the sink; default: the sink's own timeout.",
)
def command(  # noqa: PLR0913, PLR0917 - click passes every option positionally
    config_path: Path | None,
    sink_name: str | None,
    measurement: str,
    field_name: str,
    tag: str,
    hours: float,
    top: int,
    as_json: bool,
    timeout: float | None,
) -> None:
    """Report count, mean/min/max and p95 of a field (RSSI) per node over the last hours.

    Three sections of --top rows each: the lowest report counts (nodes that drop out), the
    best and the worst mean. p95 is the nearest-rank 95th percentile of the raw values.
    Works on InfluxDB 1.x, v2/Cloud and 3 sinks; exits 1 when the sink cannot be queried.
    """
    end_ns = time.time_ns()
    start_ns = end_ns - int(hours * 3600e9)
    note = ""
    try:
        settings = load_query_settings(config_path)
        sink = select_sink(settings, sink_name)
        query = open_sink(sink, timeout=timeout)
        try:
            nodes = aggregate(query.series(measurement, field_name, tag, start_ns))
        except SinkError as exc:
            if exc.reason != "not_found":
                raise
            nodes, note = {}, str(exc)
    except SinkError as exc:
        raise click.ClickException(str(exc)) from None
    meta: ReportMeta = {
        "measurement": measurement,
        "field": field_name,
        "tag": tag,
        "hours": hours,
        "start_utc": format_rfc3339_ns(start_ns),
        "end_utc": format_rfc3339_ns(end_ns),
        "sink": sink.name,
        "sink_type": sink.type,
    }
    report = build_report(nodes, top, meta)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    if not nodes:
        why = f" ({note})" if note else ""
        click.echo(
            f"No {measurement}.{field_name} points in the last {hours:g}h on sink {sink.name}{why}"
        )
        return
    click.echo(render_table(report))
