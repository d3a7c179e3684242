"""``bridge-cli query latest|range``: one device's newest values, or its points in a time range.

Seed 002 (IoTFlow) answered these over HTTP (``/device/{id}/latest``, ``/device/{id}/data``)
from InfluxDB v2 only; here they run from the command line against any configured sink
(InfluxQL, Flux or SQL: see :mod:`telegraf_bridge.cli.influx.devices`). Output is a readable
table by default, or one JSON document with ``--json``. Both exit 0 when the query worked,
also when the device has no data (``count`` 0), and 1 when the sink cannot be queried.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from telegraf_bridge.cli.commands._sink_options import sink_options
from telegraf_bridge.cli.config_model import InfluxSink
from telegraf_bridge.cli.influx.devices.base import DEVICE_TAG, DeviceQueries, device_queries
from telegraf_bridge.cli.influx.devices.results import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    LatestValue,
    Point,
    RangeResult,
)
from telegraf_bridge.cli.influx.devices.times import Window, parse_time_arg, validate_name
from telegraf_bridge.cli.influx.sinks import load_query_settings, open_sink, select_sink
from telegraf_bridge.cli.influx.transport import SinkError
from telegraf_bridge.plugins.common import format_rfc3339_ns

F = TypeVar("F", bound=Callable[..., object])


# -- options and set-up shared with delete-data ----------------------------------------------------


def _checked(what: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    def callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_name(value, what)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def device_options(func: F) -> F:
    """``--device`` (required) and ``--measurement``, both validated (no control characters)."""
    func = click.option(
        "--measurement",
        callback=_checked("the measurement"),
        help="Only this measurement (the telemetry type, e.g. environmental).",
    )(func)
    return click.option(
        "--device",
        "device",
        required=True,
        callback=_checked("the device ID"),
        help=f"The device: its {DEVICE_TAG} tag (e.g. esp32_001).",
    )(func)


def timeout_option(func: F) -> F:
    """``--timeout`` seconds per request, as in the other query commands."""
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        help="Seconds per request to the sink; default: the sink's own timeout.",
    )(func)


def time_arg(text: str, now_ns: int, option: str) -> int:
    """A ``--start``/``--stop`` value in ns, or a usage error naming the option."""
    try:
        return parse_time_arg(text, now_ns)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None


def window_of(start_ns: int, stop_ns: int) -> Window:
    """The half-open window, or a usage error when it is empty."""
    try:
        return Window(start_ns, stop_ns)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def open_device_queries(
    config_path: Path | None, sink_name: str | None, timeout: float | None
) -> tuple[InfluxSink, DeviceQueries]:
    """The selected sink and its per-device queries; exit 1 with the reason when unusable."""
    try:
        settings = load_query_settings(config_path)
        sink = select_sink(settings, sink_name)
        return sink, device_queries(open_sink(sink, timeout=timeout))
    except SinkError as exc:
        raise click.ClickException(str(exc)) from None


# -- formatting ------------------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """A field value for a table: ``true``/``false``, floats without a trailing ``.0``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def format_age(time_ns: int, now_ns: int) -> str:
    """How long ago, coarsely (``42s``, ``5m``, ``3h``, ``2d``); ``in the future`` if ahead."""
    seconds = (now_ns - time_ns) // 1_000_000_000
    if seconds < 0:
        return "in the future"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, trailing blanks trimmed."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return lines


def render_latest(values: list[LatestValue], now_ns: int) -> str:
    """One row per measurement and field: value, time and age."""
    rows = [
        [
            v.measurement,
            v.field,
            format_value(v.value),
            format_rfc3339_ns(v.time_ns),
            format_age(v.time_ns, now_ns),
        ]
        for v in values
    ]
    return "\n".join(table(["MEASUREMENT", "FIELD", "VALUE", "TIME", "AGE"], rows))


def render_range(points: list[Point]) -> str:
    """Points as one section per measurement, readable on a terminal.

    The tags every point of a section shares go in its title, then a table of time, the tags
    that vary and the fields. ``device_id`` is left out: it was asked for.
    """
    sections: dict[str, list[Point]] = {}
    for point in points:
        sections.setdefault(point.measurement, []).append(point)
    out: list[str] = []
    for name, group in sections.items():
        keys = sorted({k for p in group for k in p.tags} - {DEVICE_TAG})
        shared = {
            k: group[0].tags[k]
            for k in keys
            if all(k in p.tags and p.tags[k] == group[0].tags[k] for p in group)
        }
        varying = [k for k in keys if k not in shared]
        fields = sorted({f for p in group for f in p.fields})
        title = ", ".join(f"{k}={v}" for k, v in shared.items())
        out.append(f"{name}" + (f" ({title})" if title else "") + f": {points_text(len(group))}")
        rows = [
            [format_rfc3339_ns(p.time_ns)]
            + [p.tags.get(k, "") for k in varying]
            + [format_value(p.fields[f]) if f in p.fields else "" for f in fields]
            for p in group
        ]
        out += ["  " + line for line in table(["time", *varying, *fields], rows)]
        out.append("")
    return "\n".join(out).rstrip()


def _meta(
    device: str, sink: InfluxSink, measurement: str | None, window: Window
) -> dict[str, object]:
    return {
        "device_id": device,
        "sink": sink.name,
        "sink_type": sink.type,
        "measurement": measurement,
        "start": format_rfc3339_ns(window.start_ns),
        "stop": format_rfc3339_ns(window.stop_ns),
    }


def points_text(count: int) -> str:
    """``1 point``, ``2 points``."""
    return f"{count} point{'s' if count != 1 else ''}"


def _scope(device: str, measurement: str | None) -> str:
    where = f" in measurement {measurement!r}" if measurement is not None else ""
    return f"device {device!r}{where}"


# -- the commands ----------------------------------------------------------------------------------


@click.group("query")
def command() -> None:
    """Query one device's telemetry (latest values, a time range) on any InfluxDB sink.

    Points are selected by their device_id tag. Works on InfluxDB 1.x (InfluxQL), v2/Cloud
    (Flux) and InfluxDB 3 (SQL); --sink picks the sink, default the first enabled one.
    """


@command.command("latest")
@sink_options
@device_options
@click.option(
    "--start",
    default="-30d",
    show_default=True,
    help="How far back to look: a duration before now (-1h, -7d) or an RFC 3339 time.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@timeout_option
def latest(  # noqa: PLR0917 - click passes every option positionally
    config_path: Path | None,
    sink_name: str | None,
    device: str,
    measurement: str | None,
    start: str,
    as_json: bool,
    timeout: float | None,
) -> None:
    """The newest value of every field of a device, per measurement, with its time.

    Example: bridge-cli query latest --device esp32_001 --measurement environmental
    """
    now_ns = time.time_ns()
    window = window_of(time_arg(start, now_ns, "--start"), now_ns + 1)
    sink, queries = open_device_queries(config_path, sink_name, timeout)
    note = ""
    try:
        values = queries.latest(device, measurement, window)
    except SinkError as exc:
        if exc.reason != "not_found":
            raise click.ClickException(str(exc)) from None
        values, note = [], str(exc)
    if as_json:
        doc = {
            **_meta(device, sink, measurement, window),
            "count": len(values),
            "values": [v.to_json() for v in values],
        }
        if note:
            doc["note"] = note
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    if not values:
        why = f" ({note})" if note else ""
        click.echo(
            f"No data for {_scope(device, measurement)} since {format_rfc3339_ns(window.start_ns)}"
            f" on sink {sink.name} ({queries.describe()}){why}. Check the device ID, or "
            "look further back with --start."
        )
        return
    click.echo(f"Latest values of {_scope(device, measurement)} on sink {sink.name}:")
    click.echo(render_latest(values, now_ns))


@command.command("range")
@sink_options
@device_options
@click.option(
    "--start",
    default="-1h",
    show_default=True,
    help="Start (included): now, a duration before now (-1h, -30m, -7d) or RFC 3339.",
)
@click.option(
    "--stop",
    default="now",
    show_default=True,
    help="Stop (excluded): now, a duration before now or an RFC 3339 time.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIMIT),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Print at most this many points (the earliest of the window).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@timeout_option
def range_(  # noqa: PLR0913, PLR0917 - click passes every option positionally
    config_path: Path | None,
    sink_name: str | None,
    device: str,
    measurement: str | None,
    start: str,
    stop: str,
    limit: int,
    as_json: bool,
    timeout: float | None,
) -> None:
    """Every point of a device between --start and --stop: time, measurement, tags, fields.

    Points are printed in time order, at most --limit of them (the earliest); the output says
    when the window holds more.

    Example: bridge-cli query range --device esp32_001 --start -1h --json
    """
    now_ns = time.time_ns()
    window = window_of(time_arg(start, now_ns, "--start"), time_arg(stop, now_ns, "--stop"))
    sink, queries = open_device_queries(config_path, sink_name, timeout)
    note = ""
    try:
        result = queries.range(device, measurement, window, limit)
    except SinkError as exc:
        if exc.reason != "not_found":
            raise click.ClickException(str(exc)) from None
        result, note = RangeResult([], truncated=False), str(exc)
    more = (
        f"Showing the first {points_text(limit)}; the window holds more: narrow --start/--stop "
        f"or raise --limit (at most {MAX_LIMIT})."
    )
    if as_json:
        doc = {
            **_meta(device, sink, measurement, window),
            "limit": limit,
            "truncated": result.truncated,
            "count": len(result.points),
            "points": [p.to_json() for p in result.points],
        }
        if note:
            doc["note"] = note
        click.echo(json.dumps(doc, ensure_ascii=False))
        if result.truncated:
            click.echo(more, err=True)
        return
    span = f"{format_rfc3339_ns(window.start_ns)} .. {format_rfc3339_ns(window.stop_ns)}"
    if not result.points:
        why = f" ({note})" if note else ""
        click.echo(
            f"No points for {_scope(device, measurement)} in {span} on sink {sink.name} "
            f"({queries.describe()}){why}."
        )
        return
    click.echo(
        f"{points_text(len(result.points))} of {_scope(device, measurement)} in {span} "
        f"on sink {sink.name}:"
    )
    click.echo("")
    click.echo(render_range(result.points))
    if result.truncated:
        click.echo("")
        click.echo(more)
