"""The InfluxQL that InfluxDB 1.x downsampling needs: continuous queries, written and compared.

Two facts about influxd shape this module (both checked against the real server in
``tests/test_admin_v1.py``):

- influxd stores a continuous query as its own re-rendering of the statement: identifiers lose
  their quotes where they need none, durations are re-spelled (``3600s`` -> ``1h``) and every
  number literal is printed with exactly three decimals. A stored CQ is therefore compared
  with the wanted one through :func:`canonical`, never character by character.
- Because of the three decimals, a literal such as ``0.0016666`` would silently become
  ``0.002`` in the CQ that runs. Energy per pulse is therefore written as an exact fraction of
  integers (``count("Pulse") * 5.0 / 3.0`` for 600 impulses/kWh), which survives the
  re-rendering unchanged.

Field types: ``count()`` and ``sum()`` of integers are integers, so ``pulses`` is an integer in
every tier; ``energy_wh`` and ``power_w`` always multiply by a float literal, so they are floats
in every tier (the plugin writes the same types; a conflict would make writes fail).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from telegraf_bridge.cli.influx.admin._http import influx_duration
from telegraf_bridge.cli.influx.influxql import influxql_ident, influxql_string
from telegraf_bridge.cli.tiers import RAW_FIELD, Layout, Tier

PULSE_TAG = "PulseType"
# Largest denominator when a float constant is written as a fraction of integers.
_MAX_DENOMINATOR = 10**6
_NUMBER = re.compile(r"(?<![\w.])(\d+\.\d+)(?![\w.])")
_DURATION_AFTER = re.compile(r"\b(EVERY|FOR|time\()\s*(\d+)(ns|u|µ|ms|s|m|h|d|w)\b")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_INTO = re.compile(r"\bINTO\s+(\S+?)\.(\S+?)\.")


def _float_literal(value: int) -> str:
    return f"{value}.0"


def scaled(expression: str, factor: float | Fraction) -> str:
    """``expression * N.0 [/ D.0]``: ``factor`` as an exact ratio of integers (a float result)."""
    ratio = Fraction(factor).limit_denominator(_MAX_DENOMINATOR)
    text = f"{expression} * {_float_literal(ratio.numerator)}"
    if ratio.denominator != 1:
        text += f" / {_float_literal(ratio.denominator)}"
    return text


@dataclass(frozen=True)
class ContinuousQuery:
    """One CQ the layout needs: its name, the tier it fills and the full CREATE statement."""

    name: str
    tier: Tier
    statement: str
    every: str = ""
    span: str = ""


def rp_duration(tier: Tier) -> str:
    """``INF`` or the retention as an InfluxQL duration literal."""
    return "INF" if tier.forever else influx_duration(tier.retention_s)


def _select_fields(layout: Layout, tier: Tier, wh: float) -> str:
    per_hour = Fraction(3600, tier.every_s)
    if tier.source == "raw":
        count = f"count({influxql_ident(RAW_FIELD)})"
        return (
            f"{count} AS pulses, {scaled(count, Fraction(wh))} AS energy_wh, "
            f"{scaled(count, Fraction(wh) * per_hour)} AS power_w"
        )
    energy = f"sum({influxql_ident('energy_wh')})"
    return (
        f"sum({influxql_ident('pulses')}) AS pulses, {energy} AS energy_wh, "
        f"{scaled(energy, per_hour)} AS power_w"
    )


def continuous_queries(
    layout: Layout, database: str, *, resample_every_s: int | None = None
) -> list[ContinuousQuery]:
    """The CQs for every aggregate tier of ``layout`` in ``database``.

    The 1-minute tier counts raw pulses, and the energy of a pulse depends on the channel, so it
    gets one CQ per Wh group (:meth:`Layout.wh_groups`), each restricted to its channels by a
    ``WHERE`` on ``PulseType``; with a single group (the usual meter) there is one CQ and no
    ``WHERE``. The coarser tiers only add up ``pulses`` and ``energy_wh``, which is the same
    for every channel, so one CQ each suffices.

    Each CQ recomputes ``layout.lookback_for(tier)`` seconds (``FOR``) every window
    (``RESAMPLE EVERY``, or ``resample_every_s`` when given: the tests use 1 s), so points
    that arrive late from Telegraf's disk buffer are still counted.
    """
    measurement = layout.measurement
    db = influxql_ident(database)
    queries: list[ContinuousQuery] = []
    for tier in layout.aggregates:
        source = layout.tier(str(tier.source))
        every = influx_duration(resample_every_s or tier.every_s)
        span = influx_duration(layout.lookback_for(tier))
        window = influx_duration(tier.every_s)
        into = f"{db}.{influxql_ident(tier.name)}.{influxql_ident(measurement)}"
        source_ref = f"{db}.{influxql_ident(source.name)}.{influxql_ident(measurement)}"
        groups: list[tuple[float, tuple[str, ...]]] = (
            layout.wh_groups() if tier.source == "raw" else [(1.0, ())]
        )
        for index, (wh, channels) in enumerate(groups, start=1):
            where = ""
            if len(groups) > 1:
                terms = " OR ".join(
                    f"{influxql_ident(PULSE_TAG)} = {influxql_string(c)}" for c in channels
                )
                where = f" WHERE ({terms})"
            name = f"{tier.name}_cq" + (f"_{index}" if len(groups) > 1 else "")
            statement = (
                f"CREATE CONTINUOUS QUERY {influxql_ident(name)} ON {db} "  # noqa: S608 - quoted
                f"RESAMPLE EVERY {every} FOR {span} BEGIN "
                f"SELECT {_select_fields(layout, tier, wh)} INTO {into} FROM {source_ref}"
                f"{where} GROUP BY time({window}), {influxql_ident(PULSE_TAG)} END"
            )
            queries.append(ContinuousQuery(name, tier, statement, every, span))
    return queries


def _duration(match: re.Match[str]) -> str:
    unit = match[3]
    if unit in _UNIT_SECONDS:
        return f"{match[1]} {influx_duration(int(match[2]) * _UNIT_SECONDS[unit])}"
    return match[0]


def canonical(statement: str) -> str:
    """A CQ statement reduced to what influxd's re-rendering keeps.

    Quotes are dropped, whitespace collapsed, number literals printed with three decimals and
    durations after ``EVERY``/``FOR``/``time(`` spelled with their largest exact unit, on both
    sides of the comparison.
    """
    text = " ".join(statement.replace('"', "").split())
    text = _NUMBER.sub(lambda m: f"{float(m[1]):.3f}", text)
    return _DURATION_AFTER.sub(_duration, text).replace("time( ", "time(")


def into_target(statement: str) -> tuple[str, str] | None:
    """``(database, retention policy)`` a CQ writes into, from its (canonical) text."""
    match = _INTO.search(canonical(statement))
    return (match[1], match[2]) if match else None
