"""A deterministic pulse generator standing in for a meter, for tests, benchmarks and demos.

Why a generator and not recorded edges: rates, jitter and contact bounce are what the capture
path must survive, and a seeded generator produces them at any rate for any duration while the
test still knows exactly how many real pulses it sent (``generated``) and how many bounce edges
(``bounces``) it added on top.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from telegraf_bridge.plugins.common import ConfigError, Section, parse_duration
from telegraf_bridge.plugins.gpio_pulse.channels import Channel

EdgeSink = Callable[[int, int], None]
NS = 1_000_000_000
# Named rate profiles (pulses/s per channel for a duration): a quick taste of real patterns.
PRESETS: dict[str, tuple[tuple[float, float], ...]] = {
    # A kettle switching on and off over a 5 kW base load at 1000 imp/kWh.
    "house": ((20.0, 1.4), (10.0, 2.8), (20.0, 1.4), (10.0, 0.0)),
    "steady": ((60.0, 1.0),),
}


@dataclass(frozen=True)
class SimConfig:
    """The ``[sim]`` table of the plugin config."""

    profile: tuple[tuple[float, float], ...] = PRESETS["steady"]
    repeat: bool = True
    jitter: float = 0.0
    bounce: float = 0.0
    seed: int = 1
    limit: int = 0
    scale: tuple[float, ...] = ()

    @classmethod
    def from_section(cls, sec: Section) -> SimConfig:
        """Parse and check ``[sim]``; ``rate`` is a shortcut for a constant profile."""
        rate = sec.raw("rate")
        raw_profile = sec.raw("profile")
        if rate is not None and raw_profile is not None:
            raise ConfigError(f"{sec.where}: set rate or profile, not both")
        if rate is not None:
            value = sec.number("rate", 1.0, minimum=0.0)
            profile: tuple[tuple[float, float], ...] = ((60.0, value),)
        elif raw_profile is None:
            profile = PRESETS["steady"]
        elif isinstance(raw_profile, str):
            if raw_profile not in PRESETS:
                raise ConfigError(
                    f"{sec.where}.profile = {raw_profile!r} is invalid: expected one of "
                    + ", ".join(repr(p) for p in PRESETS)
                    + ' or a list of ["duration", pulses per second] steps'
                )
            profile = PRESETS[raw_profile]
        else:
            profile = _parse_steps(raw_profile, f"{sec.where}.profile")
        scale = sec.raw("scale")
        if scale is not None and not (
            isinstance(scale, list)
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in scale)
        ):
            raise ConfigError(
                f"{sec.where}.scale = {scale!r} is invalid: expected a list of numbers, one "
                "factor per channel"
            )
        config = cls(
            profile=profile,
            repeat=sec.boolean("repeat", True),
            jitter=sec.number("jitter", 0.0, minimum=0.0),
            bounce=sec.number("bounce", 0.0, minimum=0.0),
            seed=sec.integer("seed", 1),
            limit=sec.integer("limit", 0, minimum=0),
            scale=tuple(float(v) for v in scale or ()),
        )
        if config.jitter >= 0.5:
            raise ConfigError(f"{sec.where}.jitter = {config.jitter} must be below 0.5")
        if config.bounce > 1.0:
            raise ConfigError(f"{sec.where}.bounce = {config.bounce} must be at most 1")
        sec.check_unknown()
        return config


def _parse_steps(raw: object, where: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f'{where} = {raw!r} is invalid: expected [["30s", 2.5], ...] steps')
    steps = []
    for step in raw:
        if (
            not isinstance(step, list)
            or len(step) != 2
            or isinstance(step[1], bool)
            or not isinstance(step[1], int | float)
            or step[1] < 0
        ):
            raise ConfigError(
                f'{where}: step {step!r} is invalid: expected ["duration", pulses per second]'
            )
        seconds = parse_duration(step[0], key=where)
        if seconds <= 0:
            raise ConfigError(f"{where}: step {step!r} needs a duration above zero")
        steps.append((seconds, float(step[1])))
    return tuple(steps)


class SimBackend:
    """Generates edges on its own thread at the profile's rates, in real time."""

    name = "sim"

    def __init__(
        self,
        channels: Sequence[Channel],
        config: SimConfig,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.channels = list(channels)
        self.config = config
        self.wall_ns = wall_ns
        self.generated = [0] * len(self.channels)
        self.bounces = [0] * len(self.channels)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._problem: str | None = None
        self.finished = threading.Event()

    def start(self, on_edge: EdgeSink) -> None:
        """Start generating into ``on_edge``."""
        self._thread = threading.Thread(
            target=self._run, args=(on_edge,), name="gpio-sim", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop generating; idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def problem(self) -> str | None:
        """A failure of the generator thread, if any."""
        return self._problem

    def _rate(self, index: int, elapsed_s: float) -> tuple[float, float]:
        """The channel's rate at ``elapsed_s`` and when that step ends (inf: never)."""
        steps = self.config.profile
        cycle = sum(d for d, _ in steps)
        if not self.config.repeat and elapsed_s >= cycle:
            return 0.0, float("inf")
        base = (elapsed_s // cycle) * cycle if self.config.repeat else 0.0
        offset = elapsed_s - base
        end = base
        for duration, rate in steps:
            end += duration
            if offset < end - base:
                factor = self.config.scale[index] if index < len(self.config.scale) else 1.0
                return rate * factor, end
        return 0.0, float("inf")

    def _run(self, on_edge: EdgeSink) -> None:
        try:
            self._generate(on_edge)
        except Exception as exc:
            self._problem = f"the simulator stopped: {exc!r}"
        finally:
            self.finished.set()

    def _generate(self, on_edge: EdgeSink) -> None:
        cfg = self.config
        start_ns = self.wall_ns()
        rngs = [random.Random(cfg.seed * 1000 + i) for i in range(len(self.channels))]  # noqa: S311 - simulation, not security
        heap: list[tuple[int, int]] = []
        for i in range(len(self.channels)):
            first = self._next_after(i, start_ns, start_ns, rngs[i])
            if first is not None:
                heapq.heappush(heap, (first, i))
        while heap and not self._stop.is_set():
            due, index = heap[0]
            now = self.wall_ns()
            if due > now:
                self._stop.wait(min((due - now) / NS, 0.5))
                continue
            heapq.heappop(heap)
            on_edge(index, due)
            self.generated[index] += 1
            rng = rngs[index]
            if cfg.bounce and rng.random() < cfg.bounce:
                for k in range(rng.randint(1, 3)):
                    on_edge(index, due + (k + 1) * rng.randint(200_000, 900_000))
                    self.bounces[index] += 1
            if cfg.limit and self.generated[index] >= cfg.limit:
                continue
            following = self._next_after(index, due, start_ns, rng)
            if following is not None:
                heapq.heappush(heap, (following, index))

    def _next_after(self, index: int, t_ns: int, start_ns: int, rng: random.Random) -> int | None:
        """When the channel's next pulse is due after ``t_ns`` (None: never again)."""
        elapsed = (t_ns - start_ns) / NS
        if not any(rate > 0 for _, rate in self.config.profile):
            return None
        while True:
            rate, step_end = self._rate(index, elapsed)
            if rate > 0:
                period = 1.0 / rate
                jitter = self.config.jitter
                if jitter:
                    period *= 1.0 + rng.uniform(-jitter, jitter)
                candidate = elapsed + period
                if candidate <= step_end or step_end == float("inf"):
                    return start_ns + round(candidate * NS)
                elapsed = step_end
                continue
            if step_end == float("inf"):
                return None
            elapsed = step_end
