"""The Flux that InfluxDB v2/Cloud runs for the meter-pulse tiers, and the admin queries.

Why generated text: a downsampling task is a Flux script stored on the server, and whether an
existing task is "the right one" is decided by comparing its script with the one the layout
requires. So the script must be a pure function of the layout (and the organization), with
every name quoted by :func:`flux_string`.

What a task computes follows the tier row shape of :mod:`telegraf_bridge.cli.tiers`:

- the 1-minute tier counts ``Pulse`` values of the raw pulses per ``PulseType`` in windows
  stamped with the window START (``timeSrc: "_start"``, as the InfluxQL continuous queries and
  the plugin's own aggregates do); ``energy_wh`` is the count times the channel's Wh per pulse
  (a conditional on ``PulseType`` when channels differ); ``power_w`` is ``energy_wh * 3600 /
  window``;
- the 5-minute and 1-hour tiers sum ``pulses`` and ``energy_wh`` of the finer tier and compute
  ``power_w`` again for their window;
- ``PulseType`` is the only tag written (``to(tagColumns: ["PulseType"])``); ``pulses`` stays an
  integer, the other fields floats, in every tier.

Each run recomputes ``Layout.lookback_for(tier)`` seconds, rounded up to whole windows: a task
runs at the window boundaries (``every``), so the range starts on a boundary and the first
window is never a partial one that would overwrite a complete row with a smaller count.
"""

from __future__ import annotations

import math
from decimal import Decimal

from telegraf_bridge.cli.influx.flux import flux_string
from telegraf_bridge.cli.tiers import RAW_FIELD, Layout, Tier

TAG = "PulseType"
# Telegraf flushes every 10 s by default: the 1-minute task waits 30 s past the window; each
# coarser task waits for the finer one to have run. The next run's lookback repairs a race.
_OFFSETS = {"1m": "30s", "5m": "2m", "1h": "4m"}
VERIFY_MEASUREMENT = "bridge_verify"
VERIFY_FIELD = "value"
VERIFY_TAG = "check"


def flux_duration(seconds: int) -> str:
    """A Flux duration literal: ``1h``, ``5m``, ``90s``."""
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def flux_float(value: float) -> str:
    """A Flux float literal: always a decimal point, never an exponent (Flux has none)."""
    text = format(Decimal(repr(float(value))), "f")
    return text if "." in text else text + ".0"


def task_name(layout: Layout, tier: Tier) -> str:
    """The task that fills ``tier``; the name is how an existing task is found."""
    source = layout.tier(str(tier.source))
    return f"telegraf-bridge: {source.name} -> {tier.name}"


def task_description(layout: Layout, tier: Tier) -> str:
    """What the InfluxDB UI shows under the task's name."""
    return (
        f"{tier.every_s // 60}-minute tier of {layout.measurement} (pulses, energy_wh, "
        "power_w per PulseType), written by bridge-cli setup-influxdb; do not edit: "
        "setup-influxdb reports a changed script as a mismatch"
    )


def lookback_seconds(layout: Layout, tier: Tier) -> int:
    """The recomputed span: at least ``lookback_for(tier)``, in whole windows."""
    every = tier.every_s
    return math.ceil(layout.lookback_for(tier) / every) * every


def task_flux(layout: Layout, tier: Tier, org: str) -> str:
    """The complete task script for an aggregate tier (raw has no task)."""
    if tier.source is None:
        raise ValueError(f"tier {tier.name} is the raw tier: nothing computes it")
    source = layout.tier(tier.source)
    every = flux_duration(tier.every_s)
    power_factor = flux_float(3600 / tier.every_s)
    header = (
        f"option task = {{name: {flux_string(task_name(layout, tier))}, every: {every}, "
        f"offset: {_OFFSETS.get(tier.key, '1m')}}}\n\n"
    )
    start = f"-{flux_duration(lookback_seconds(layout, tier))}"
    measurement = flux_string(layout.measurement)
    if source.source is None:
        body = (
            f"from(bucket: {flux_string(source.name)})\n"
            f"    |> range(start: {start})\n"
            f"    |> filter(fn: (r) => r._measurement == {measurement} and "
            f"r._field == {flux_string(RAW_FIELD)}{_channel_filter(layout)})\n"
            f'    |> group(columns: ["_measurement", "{TAG}"])\n'
            f'    |> aggregateWindow(every: {every}, fn: count, timeSrc: "_start", '
            "createEmpty: false)\n"
            "    |> map(fn: (r) => ({_time: r._time, _measurement: r._measurement, "
            f"{TAG}: r.{TAG}, pulses: r._value}}))\n"
            "    |> map(fn: (r) => ({r with energy_wh: float(v: r.pulses) * "
            f"{_wh_per_pulse(layout)}}}))\n"
        )
    else:
        body = (
            f"from(bucket: {flux_string(source.name)})\n"
            f"    |> range(start: {start})\n"
            f"    |> filter(fn: (r) => r._measurement == {measurement} and "
            '(r._field == "pulses" or r._field == "energy_wh"))\n'
            f'    |> group(columns: ["_measurement", "{TAG}", "_field"])\n'
            f'    |> aggregateWindow(every: {every}, fn: sum, timeSrc: "_start", '
            "createEmpty: false)\n"
            # pivot joins the per-field tables itself; a group() without _field first would
            # put integer pulses and float energy_wh in one _value column, which Flux refuses
            # ("schema collision detected: column _value is both of type int and float").
            '    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
            "    |> map(fn: (r) => ({_time: r._time, _measurement: r._measurement, "
            f"{TAG}: r.{TAG}, pulses: r.pulses, energy_wh: r.energy_wh}}))\n"
        )
    return (
        header
        + body
        + f"    |> map(fn: (r) => ({{r with power_w: r.energy_wh * {power_factor}}}))\n"
        + f"    |> to(bucket: {flux_string(tier.name)}, org: {flux_string(org)}, "
        f'tagColumns: ["{TAG}"], '
        "fieldFn: (r) => ({pulses: r.pulses, energy_wh: r.energy_wh, power_w: r.power_w}))\n"
    )


def _wh_per_pulse(layout: Layout) -> str:
    """The Wh-per-pulse expression: a constant, or a conditional on the channel."""
    groups = layout.wh_groups()
    if len(groups) == 1:
        return flux_float(groups[0][0])
    expr = flux_float(groups[-1][0])
    for wh, names in reversed(groups[:-1]):
        test = " or ".join(f"r.{TAG} == {flux_string(n)}" for n in names)
        expr = f"(if {test} then {flux_float(wh)} else {expr})"
    return expr


def _channel_filter(layout: Layout) -> str:
    """With several Wh constants, only declared channels (an unknown one has no constant)."""
    if len(layout.wh_groups()) == 1:
        return ""
    names = " or ".join(f"r.{TAG} == {flux_string(c.name)}" for c in layout.channels)
    return f" and ({names})"


def same_flux(a: str, b: str) -> bool:
    """Scripts equal but for whitespace (a server may re-indent or trim what it stores)."""
    return a.split() == b.split()


def count_flux(bucket: str, measurement: str, field: str) -> str:
    """How many points of ``measurement`` (one field each) ``bucket`` holds, ever."""
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        "  |> range(start: 0)\n"
        f"  |> filter(fn: (r) => r._measurement == {flux_string(measurement)} and "
        f"r._field == {flux_string(field)})\n"
        "  |> count()\n"
        "  |> group()\n"
        "  |> sum()\n"
    )


def readback_flux(bucket: str, start_rfc3339: str) -> str:
    """The ``verify`` marker points since ``start``: their value and ``check`` tag."""
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"  |> range(start: {start_rfc3339})\n"
        f"  |> filter(fn: (r) => r._measurement == {flux_string(VERIFY_MEASUREMENT)} and "
        f"r._field == {flux_string(VERIFY_FIELD)})\n"
        f'  |> keep(columns: ["_value", {flux_string(VERIFY_TAG)}])\n'
    )
