"""gpio_pulse in-process: bounce filtering, window rows, totals across restarts, overflow.

Edges are pushed into the plugin's queue as a backend would push them (the sim backend runs
at rate 0 so it adds none), with a hand-moved wall clock.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from telegraf_bridge.plugins.common import ConfigError, LineProtocolSerializer, Point
from telegraf_bridge.plugins.gpio_pulse.channels import Channel
from telegraf_bridge.plugins.gpio_pulse.plugin import FIELD_TYPES, PulseSource
from telegraf_bridge.plugins.gpio_pulse.sim import SimBackend, SimConfig

from telegraf_bridge.testing import plugin_ctx

S = 1_000_000_000
T0 = 1_800_000_000 * S  # a minute boundary (1_800_000_000 % 60 == 0)
BASE: dict[str, Any] = {
    "backend": "sim",
    "sim": {"rate": 0},
    "channels": [
        {"name": "Import", "pin": 20},
        {"name": "Export", "pin": 26, "impulses_per_kwh": 800},
    ],
}


class Clock:
    def __init__(self, wall: int = T0) -> None:
        self.wall = wall
        self.mono = 100.0

    def wall_ns(self) -> int:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


def make(tmp_path: Path, clock: Clock, **extra: Any) -> tuple[PulseSource, io.BytesIO]:
    out = io.BytesIO()
    ctx = plugin_ctx("gpio_pulse", {**BASE, **extra}, tmp_path, stdout=out)
    return PulseSource(ctx, wall_ns=clock.wall_ns, monotonic=clock.monotonic), out


def gather(source: PulseSource) -> list[str]:
    points: list[Point] = []
    while source.gather(points.append):
        pass
    # Serialised with the types the plugin declares, as its own writer does.
    return LineProtocolSerializer(field_types=FIELD_TYPES, time_floor_ns=0).lines(points)


def test_raw_pulses_are_the_seeds_lines_stamped_at_the_edge(tmp_path: Path) -> None:
    clock = Clock(T0 + 5 * S)
    source, _ = make(tmp_path, clock)
    source.queue.push(0, T0 + 1_234_567_891)
    source.queue.push(1, T0 + 2 * S)
    lines = gather(source)
    assert lines[:2] == [
        f"PowerPulse,PulseType=Import Pulse=1i {T0 + 1_234_567_891}",
        f"PowerPulse,PulseType=Export Pulse=1i {T0 + 2 * S}",
    ]
    source.close()


def test_bounce_inside_min_interval_is_counted_not_written(tmp_path: Path) -> None:
    clock = Clock(T0 + 5 * S)
    source, _ = make(tmp_path, clock)
    for t in (T0, T0 + 1_000_000, T0 + 19_000_000, T0 + 20_000_000, T0 + 500_000_000):
        source.queue.push(0, t)
    lines = gather(source)
    assert [line for line in lines if "Pulse=1i" in line] == [
        f"PowerPulse,PulseType=Import Pulse=1i {t}" for t in (T0, T0 + 20_000_000, T0 + 500_000_000)
    ]
    assert source.bounces == [2, 0]
    source.close()


def test_window_rows_count_energy_and_power_per_channel_at_window_start(tmp_path: Path) -> None:
    clock = Clock(T0 + 10 * S)
    source, _ = make(tmp_path, clock)
    for k in range(12):
        source.queue.push(0, T0 + k * S)  # 12 pulses at 1000 imp/kWh = 12 Wh in a minute
    for k in range(8):
        source.queue.push(1, T0 + k * S)  # 8 pulses at 800 imp/kWh = 10 Wh
    assert not [line for line in gather(source) if line.startswith("PowerMeter")]
    clock.wall = T0 + 60 * S + 5 * S  # window end + grace
    rows = [line for line in gather(source) if line.startswith("PowerMeter")]
    assert rows == [
        "PowerMeter,PulseType=Import energy_total_wh=12.0,energy_wh=12.0,power_w=720.0,"
        f"pulses=12i,pulses_total=12i {T0}",
        "PowerMeter,PulseType=Export energy_total_wh=10.0,energy_wh=10.0,power_w=600.0,"
        f"pulses=8i,pulses_total=8i {T0}",
    ]
    source.close()


def test_a_replayed_window_is_byte_identical(tmp_path: Path) -> None:
    edges = [(k % 2, T0 + k * 700_000_000) for k in range(200)]

    def run(where: Path) -> list[str]:
        clock = Clock(T0 + 1)
        source, _ = make(where, clock)
        out = []
        for channel, t in edges:
            source.queue.push(channel, t)
            clock.wall = t + 1
            if t % (10 * S) < 700_000_000:
                out += gather(source)
        clock.wall = edges[-1][1] + 120 * S
        out += gather(source)
        source.close()
        return [line for line in out if not line.startswith("gpio_pulse_status")]

    first = run(tmp_path / "a")
    second = run(tmp_path / "b")
    assert first == second
    assert (
        sum(1 for line in first if line.startswith("PowerMeter")) == 2 * 4
    )  # pulses in 3 windows, then a quiet one


def test_quiet_windows_read_zero_and_totals_never_reset(tmp_path: Path) -> None:
    clock = Clock(T0 + 1)
    source, _ = make(tmp_path, clock)
    source.queue.push(0, T0 + 2 * S)
    clock.wall = T0 + 3 * 60 * S + 6 * S
    rows = [line for line in gather(source) if line.startswith("PowerMeter,PulseType=Import")]
    assert [r.split(" ")[1] for r in rows] == [
        "energy_total_wh=1.0,energy_wh=1.0,power_w=60.0,pulses=1i,pulses_total=1i",
        "energy_total_wh=1.0,energy_wh=0.0,power_w=0.0,pulses=0i,pulses_total=1i",
        "energy_total_wh=1.0,energy_wh=0.0,power_w=0.0,pulses=0i,pulses_total=1i",
    ]
    source.close()


def test_counters_and_the_open_window_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock(T0 + 1)
    source, _ = make(tmp_path, clock)
    for k in range(5):
        source.queue.push(0, T0 + k * S)
    clock.wall = T0 + 65 * S
    gather(source)  # closes the first window: 5 pulses
    for k in range(3):
        source.queue.push(0, T0 + 70 * S + k * S)  # 3 in the open second window
    gather(source)
    source.close()

    again, _ = make(tmp_path, clock)
    again.queue.push(0, T0 + 100 * S)  # a 4th pulse in the same window after the restart
    clock.wall = T0 + 125 * S
    rows = [line for line in gather(again) if line.startswith("PowerMeter,PulseType=Import")]
    assert rows == [
        "PowerMeter,PulseType=Import energy_total_wh=9.0,energy_wh=4.0,power_w=240.0,pulses=4i,"
        f"pulses_total=9i {T0 + 60 * S}"
    ]
    again.close()


def test_a_corrupt_state_file_warns_and_starts_from_scratch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(T0 + 1)
    source, _ = make(tmp_path, clock)
    source.close()
    (state,) = tmp_path.glob("gpio_pulse-*.json")
    doc = json.loads(state.read_text())
    doc["data"]["meter"]["Import"]["total"] = "lots"
    state.write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        again, _ = make(tmp_path, clock)
    assert "counters start again" in caplog.text
    assert again.meter.totals["Import"] == 0
    state.write_text("{not json")
    third, _ = make(tmp_path, clock)  # the StateFile's own fallback: no crash
    third.close()


def test_a_full_queue_drops_counts_and_logs_without_blocking(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(T0 + 1)
    source, _ = make(tmp_path, clock, queue_size=10, min_interval="0s")
    for k in range(25):
        source.queue.push(0, T0 + k * 1000)
    assert source.queue.overflows == [15, 0]
    with caplog.at_level(logging.WARNING):
        lines = gather(source)
    assert sum("Pulse=1i" in line for line in lines) == 10
    assert "edge queue full" in caplog.text
    clock.wall = T0 + 70 * S
    status = [
        line for line in gather(source) if line.startswith("gpio_pulse_status,PulseType=Import")
    ]
    assert "overflows=15i" in status[0] and "edges=25i" in status[0]
    source.close()


def test_edges_not_written_at_shutdown_are_replayed_on_the_next_start(tmp_path: Path) -> None:
    class Broken(io.BytesIO):
        def write(self, data: Any) -> int:
            raise BrokenPipeError("Telegraf went away")

    clock = Clock(T0 + 1)
    ctx = plugin_ctx("gpio_pulse", BASE, tmp_path, stdout=Broken())
    source = PulseSource(ctx, wall_ns=clock.wall_ns, monotonic=clock.monotonic)
    source.queue.push(0, T0 + S)
    source.queue.push(1, T0 + 2 * S)
    source.close()

    again, _ = make(tmp_path, clock)
    lines = gather(again)
    assert f"PowerPulse,PulseType=Import Pulse=1i {T0 + S}" in lines
    assert f"PowerPulse,PulseType=Export Pulse=1i {T0 + 2 * S}" in lines
    clock.wall = T0 + 70 * S
    meter = [line for line in gather(again) if line.startswith("PowerMeter,PulseType=Import")]
    assert "pulses_total=1i" in meter[0], "counted once, not twice"
    again.close()


def test_own_tier_rows_are_routed_and_skip_empty_windows(tmp_path: Path) -> None:
    clock = Clock(T0 + 1)
    source, _ = make(
        tmp_path,
        clock,
        route_tag="bridge_tier",
        raw_tier="PowerLogger_raw",
        tiers=[
            {"window": "1m", "tier": "PowerLogger_1m"},
            {"window": "5m", "tier": "PowerLogger_5m"},
        ],
    )
    for k in range(6):
        source.queue.push(0, T0 + k * 10 * S)
    clock.wall = T0 + 6 * 60 * S
    lines = gather(source)
    assert f"PowerPulse,PulseType=Import,bridge_tier=PowerLogger_raw Pulse=1i {T0}" in lines
    tier = [line for line in lines if "bridge_tier=PowerLogger_1m" in line or "_5m" in line]
    assert tier == [
        f"PowerPulse,PulseType=Import,bridge_tier=PowerLogger_1m energy_wh=6.0,power_w=360.0,pulses=6i {T0}",
        f"PowerPulse,PulseType=Import,bridge_tier=PowerLogger_5m energy_wh=6.0,power_w=72.0,pulses=6i {T0}",
    ]
    source.close()


def test_a_pulse_late_for_a_closed_window_corrects_it(tmp_path: Path) -> None:
    clock = Clock(T0 + 1)
    source, _ = make(tmp_path, clock, grace="1s")
    source.queue.push(0, T0 + S)
    clock.wall = T0 + 62 * S
    gather(source)
    source.queue.push(0, T0 + 30 * S)  # captured before the close, delivered after it
    rows = [line for line in gather(source) if line.startswith("PowerMeter,PulseType=Import")]
    assert rows == [
        "PowerMeter,PulseType=Import energy_total_wh=2.0,energy_wh=2.0,power_w=120.0,pulses=2i,"
        f"pulses_total=2i {T0}"
    ]
    source.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"channels": [{"name": "A", "pin": 20}, {"name": "B", "pin": 20}]},
            "pin 20 is used twice",
        ),
        ({"channels": [{"name": "A b", "pin": 20}]}, "PulseType tag"),
        ({"channels": [{"name": "A"}]}, "pin is required"),
        ({"channels": [{"name": "A", "pin": 20, "colour": "red"}]}, "colour is not a known option"),
        ({"window": "7s"}, "dividing a day"),
        ({"backend": "gpiod", "sim": {"rate": 1}}, "only read with backend"),
        ({"sim": {"rate": 1, "profile": "house"}}, "rate or profile"),
        ({"sim": {"profile": [["10s", -1]]}}, "pulses per second"),
        ({"tiers": [{"window": "1m", "tier": "x"}]}, "needs route_tag"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make(tmp_path, Clock(), **options)


def test_the_simulator_is_deterministic_and_stops_at_its_limit() -> None:
    channels = [Channel("Import", 20), Channel("Export", 26)]
    clock = Clock(T0)
    got: list[tuple[int, int]] = []

    def fast_clock() -> int:
        clock.wall += 50_000_000  # 50 ms per look: the generator never sleeps long
        return clock.wall

    for _ in range(2):
        sim = SimBackend(
            channels,
            SimConfig(profile=((1.0, 20.0),), jitter=0.2, bounce=0.5, seed=7, limit=30),
            wall_ns=fast_clock,
        )
        edges: list[tuple[int, int]] = []
        sim.start(lambda c, t, out=edges: out.append((c, t - T0)))
        assert sim.finished.wait(10)
        sim.stop()
        assert sim.generated == [30, 30]
        assert sum(1 for c, _ in edges if c == 0) == 30 + sim.bounces[0]
        got.append(edges)
        clock.wall = T0
    assert got[0] == got[1], "same seed, same edges"
    gaps = [b - a for (c, a), (d, b) in zip(got[0], got[0][1:], strict=False) if c == d == 1]
    assert min(gaps) < 2_000_000 and max(gaps) > 40_000_000, "bounce and jitter both present"
