"""The fault suite's rig: a source under the real Telegraf into its own real influxd 1.x, a
seeded random sequence of crashes while data flows, then an exact account of what was produced
against what InfluxDB holds.

What "produced" means is the plugin's own stdout: the rig renders ``agent.python`` as a wrapper
(tests/helpers/record_stdout.py) that runs the plugin module in the same process, with the same
stdout pipe, and appends every byte the pipe accepted to a record. Every recorded data line must
be stored, with the same fields, and every (series, time) the plugin wrote twice must have been
written with the same bytes (a replay InfluxDB stores once).

Status points (``*_status``) are left out of the exact account: they are snapshots of counters
stamped at emission (or at the window), so a restart legitimately writes a different snapshot for
the same stamp. The account still prints how many of them are missing, for information.

The seed comes from ``BRIDGE_FAULT_SEED`` (read at import, before conftest drops ``BRIDGE_*``)
or the test's fixed default; every assertion message starts with it, and the fault sequence, so
``BRIDGE_FAULT_SEED=<seed> pytest tests/test_fault_suite.py -k <plugin>`` replays the faults
(their timing is only as repeatable as the machine's scheduling).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _support import HELPERS, SOAK, render_yaml
from rig import InfluxD1, TelegrafProcess

from telegraf_bridge.testing import LineProtocolError, parse_line

SEED_ENV = "BRIDGE_FAULT_SEED"
_SEED_TEXT = os.environ.get(SEED_ENV, "")
TELEGRAF_SIGKILL = "telegraf_sigkill"
TELEGRAF_SIGTERM = "telegraf_sigterm"
PLUGIN_SIGKILL = "plugin_sigkill"
INFLUXD_BOUNCE = "influxd_stop_or_start"
GROUP_SIGKILL = "group_sigkill"
ALL_FAULTS = (TELEGRAF_SIGKILL, TELEGRAF_SIGTERM, PLUGIN_SIGKILL, INFLUXD_BOUNCE, GROUP_SIGKILL)
# The tag gpio_pulse routes tiers by; Telegraf's influxdb output turns it into the retention
# policy and does not store it (templates/outputs/influxdb_v1.toml.j2).
ROUTE_TAG = "bridge_tier"
# Drain: the account waits until every produced point is stored, or until the set of missing
# points has not shrunk for STALL_S with influxd up and Telegraf writing every 500 ms (a loss).
STALL_S = 15.0
DRAIN_MAX_S = 180.0

Key = tuple[str, tuple[tuple[str, str], ...], int]


def fault_seed(default: int) -> int:
    """``BRIDGE_FAULT_SEED`` when set, else the test's fixed ``default``."""
    return int(_SEED_TEXT) if _SEED_TEXT else default


def fault_count(short: int, soak: int) -> int:
    """Faults per run: a few in `make test`, many in `make soak`."""
    return soak if SOAK else short


def fast_agent(tmp: Path, python: Path) -> str:
    """An agent section for fast runs (500 ms flushes, disk buffer) with the recording python."""
    return f"""
agent:
  interval: 1s
  flush_interval: 500ms
  metric_batch_size: 1000
  buffer_strategy: disk
  buffer_directory: {tmp / "buffer"}
  state_directory: {tmp / "state"}
  require_clock_sync: false
  health_listen: ""
  time_floor: "2020-01-01T00:00:00Z"
  python: {python}
"""


@dataclass(frozen=True)
class Produced:
    """One recorded line, parsed, keyed as InfluxDB keys it (route tag removed)."""

    line: str
    key: Key
    fields: dict[str, Any]
    rp: str | None


def _parse(line: str) -> Produced:
    point = parse_line(line)
    assert point.time_ns is not None, f"a recorded line without a timestamp: {line!r}"
    tags = dict(point.tags)
    rp = tags.pop(ROUTE_TAG, None)
    return Produced(
        line,
        (point.measurement, tuple(sorted(tags.items())), point.time_ns),
        dict(point.fields),
        rp,
    )


def read_record(record_dir: Path) -> list[str]:
    """Every whole line in the record files (an unterminated tail is a torn write: dropped)."""
    lines: list[str] = []
    for path in sorted(record_dir.glob("*.lp")):
        data = path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]
        lines += [ln for ln in whole.decode("utf-8").split("\n") if ln]
    return lines


def is_status(measurement: str) -> bool:
    """Status points: counters snapshots, outside the exact account (see the module docstring)."""
    return measurement.endswith("_status")


@dataclass
class Account:
    """Produced versus stored, per key."""

    produced: dict[Key, Produced]
    conflicts: dict[Key, list[str]]
    missing: list[Key]
    differ: list[tuple[Key, dict[str, Any], dict[str, Any]]]
    status_missing: int

    def by_measurement(self, keys: Iterable[Key]) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for key in keys:
            counts[key[0]] += 1
        return dict(counts)


@dataclass
class FaultRig:
    """One source, one Telegraf at a time, one influxd of its own (the suite stops it)."""

    tmp: Path
    telegraf_bin: Path
    seed: int
    faults: tuple[str, ...] = ALL_FAULTS
    gap_s: tuple[float, float] = (1.0, 3.0)
    db: str = "fault"
    influxd: InfluxD1 = field(init=False)
    telegraf: TelegrafProcess | None = field(init=False, default=None)
    conf: Path | None = field(init=False, default=None)
    log: list[str] = field(init=False, default_factory=list)
    crashes: list[str] = field(init=False, default_factory=list)
    generation: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.started = time.monotonic()
        self.influxd = InfluxD1(self.tmp / "influxd")
        self.record_dir = self.tmp / "record"
        self.python = self.tmp / "python-recording"
        self.python.write_text(
            "#!/bin/sh\n"
            f"exec '{sys.executable}' '{HELPERS / 'record_stdout.py'}' '{self.record_dir}' \"$@\"\n"
        )
        self.python.chmod(0o755)
        self.out = self.tmp / "out"

    # -- set-up ----------------------------------------------------------------------------

    def agent_yaml(self) -> str:
        return fast_agent(self.tmp, self.python)

    def sink_yaml(self) -> str:
        return f"""
sinks:
  - name: home
    type: influxdb_v1
    url: {self.influxd.url}
    database: {self.db}
    timeout: 2s
"""

    def render(self, sources_yaml: str) -> Path:
        self.conf = render_yaml(self.agent_yaml() + sources_yaml + self.sink_yaml(), self.out)
        return self.conf

    def create_db(self, *rps: str) -> None:
        """The database (and retention policies) as `bridge-cli setup-influxdb` would make them."""
        self.influxd.query(f'CREATE DATABASE "{self.db}"', method="POST")
        for rp in rps:
            self.influxd.query(
                f'CREATE RETENTION POLICY "{rp}" ON "{self.db}" DURATION 30d REPLICATION 1',
                method="POST",
            )

    def say(self, text: str) -> str:
        """Start of every assertion message: how to replay this run."""
        return f"[{SEED_ENV}={self.seed}; faults: {', '.join(self.log) or 'none'}] {text}"

    # -- processes ---------------------------------------------------------------------------

    def start_telegraf(self) -> TelegrafProcess:
        assert self.conf is not None, "render() first"
        self.generation += 1
        self.telegraf = TelegrafProcess(
            self.telegraf_bin, self.conf, self.tmp / f"tg{self.generation}"
        ).start()
        return self.telegraf

    def plugin_pids(self) -> list[int]:
        """The plugin processes of this rig (their command line names its plugin configs)."""
        out = subprocess.run(
            ["pgrep", "-f", "--", f"--config {self.out}/telegraf.plugins/"],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(p) for p in out.stdout.split()]

    def wait_plugins_gone(self, timeout: float = 30.0) -> None:
        """A plugin orphaned by a Telegraf SIGKILL sees stdin close and stops by itself."""
        deadline = time.monotonic() + timeout
        while self.plugin_pids():
            assert time.monotonic() < deadline, self.say(
                f"the orphaned plugin {self.plugin_pids()} did not exit within {timeout} s"
            )
            time.sleep(0.1)

    def wait_plugin_running(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.plugin_pids():
            assert time.monotonic() < deadline, self.say("no plugin process came up")
            time.sleep(0.1)

    def stop_all(self) -> None:
        """Graceful end of the run (also after a failure)."""
        if self.telegraf is not None:
            self.telegraf.stop()
            self.telegraf.kill()
        self.influxd.stop()

    # -- faults ------------------------------------------------------------------------------

    def supervise(self) -> None:
        """Restart a Telegraf that died without being told to, as systemd's Restart= would, and
        keep its last log lines: a crash is a finding of its own (asserted by assert_no_crash)."""
        telegraf = self.telegraf
        if telegraf is None or telegraf.running():
            return
        tail = telegraf.log()[-1500:]
        self.crashes.append(
            f"Telegraf {self.generation} exited with {telegraf.proc and telegraf.proc.returncode}: ...{tail}"
        )
        self.log.append(f"CRASH@{time.monotonic() - self.started:.1f}s")
        self.wait_plugins_gone()
        self.start_telegraf()

    def assert_no_crash(self) -> None:
        assert not self.crashes, self.say(
            f"Telegraf died by itself {len(self.crashes)} time(s); the first: {self.crashes[0]}"
        )

    def inject(self, fault: str) -> None:
        """Apply one fault; after a Telegraf death a new Telegraf starts on the same dirs."""
        self.supervise()
        telegraf = self.telegraf
        assert telegraf is not None and telegraf.proc is not None
        if fault == TELEGRAF_SIGKILL:
            telegraf.proc.kill()
            telegraf.proc.wait()
            self.wait_plugins_gone()
            self.start_telegraf()
        elif fault == TELEGRAF_SIGTERM:
            telegraf.stop()
            self.wait_plugins_gone()
            self.start_telegraf()
        elif fault == GROUP_SIGKILL:
            telegraf.kill()  # os.killpg: Telegraf and its plugins share Telegraf's group
            self.wait_plugins_gone(timeout=5)
            self.start_telegraf()
        elif fault == PLUGIN_SIGKILL:
            self.wait_plugin_running()
            for pid in self.plugin_pids():
                os.kill(pid, signal.SIGKILL)
        elif fault == INFLUXD_BOUNCE:
            if self.influxd_up():
                self.influxd.stop()
            else:
                self.influxd.start()
        else:
            raise ValueError(fault)
        self.log.append(f"{fault}@{time.monotonic() - self.started:.1f}s")

    def influxd_up(self) -> bool:
        return self.influxd.proc is not None and self.influxd.proc.poll() is None

    def plan(self, count: int, telegraf_kills: int) -> list[str]:
        """``count`` faults in a random order: every kind of fault at least once, at least
        ``telegraf_kills`` Telegraf SIGKILLs (so `make soak` reaches its total by construction,
        not by chance), the rest drawn at random."""
        faults = list(self.faults)[:count]
        kills = faults.count(TELEGRAF_SIGKILL)
        if TELEGRAF_SIGKILL in self.faults:
            faults += [TELEGRAF_SIGKILL] * max(0, min(count - len(faults), telegraf_kills - kills))
        faults += [self.rng.choice(self.faults) for _ in range(count - len(faults))]
        self.rng.shuffle(faults)
        return faults

    def run_faults(
        self, count: int, telegraf_kills: int, *, during: Callable[[], None] | None = None
    ) -> None:
        """Random faults, a random gap of data flow before each; influxd up at the end."""
        for fault in self.plan(count, telegraf_kills):
            self.sleep(self.rng.uniform(*self.gap_s), during)
            self.inject(fault)
        self.sleep(self.rng.uniform(*self.gap_s), during)
        if not self.influxd_up():
            self.influxd.start()
            self.log.append(f"influxd_start@{time.monotonic() - self.started:.1f}s")

    def sleep(self, seconds: float, during: Callable[[], None] | None = None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.supervise()
            if during is not None:
                during()
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    # -- the account -------------------------------------------------------------------------

    def stored(self, measurements: Iterable[tuple[str | None, str]]) -> dict[Key, dict[str, Any]]:
        """Every stored point of ``(retention policy or None, measurement)``, by key."""
        out: dict[Key, dict[str, Any]] = {}
        for rp, measurement in measurements:
            source = f'"{self.db}"."{rp}"."{measurement}"' if rp else f'"{measurement}"'
            try:
                series = self.influxd.query(f"SELECT * FROM {source} GROUP BY *", db=self.db)
            except (RuntimeError, OSError):
                continue
            for s in series:
                tags = tuple(sorted((k, v) for k, v in s.get("tags", {}).items() if v != ""))
                for values in s["values"]:
                    row = dict(zip(s["columns"], values, strict=True))
                    when = int(row.pop("time"))
                    fields = {k: v for k, v in row.items() if v is not None}
                    out[(measurement, tags, when)] = fields
        return out

    def produced(self) -> tuple[dict[Key, Produced], dict[Key, list[str]], int]:
        """The record by key (last line wins, as in InfluxDB), conflicting duplicates, and the
        number of status points among them."""
        by_key: dict[Key, Produced] = {}
        lines_by_key: dict[Key, set[str]] = defaultdict(set)
        for line in read_record(self.record_dir):
            try:
                point = _parse(line)
            except LineProtocolError as exc:
                raise AssertionError(
                    self.say(f"the plugin wrote a bad line {line!r}: {exc}")
                ) from None
            by_key[point.key] = point
            lines_by_key[point.key].add(line)
        conflicts = {
            k: sorted(v) for k, v in lines_by_key.items() if len(v) > 1 and not is_status(k[0])
        }
        return by_key, conflicts, sum(1 for k in by_key if is_status(k[0]))

    def account(self, produced: dict[Key, Produced], conflicts: dict[Key, list[str]]) -> Account:
        where = {(p.rp, p.key[0]) for p in produced.values()}
        stored = self.stored(where)
        data = {k: p for k, p in produced.items() if not is_status(k[0])}
        missing = sorted(k for k in data if k not in stored)
        differ = [
            (k, stored[k], p.fields)
            for k, p in data.items()
            if k in stored and not _same_fields(stored[k], p.fields)
        ]
        status_missing = sum(1 for k in produced if is_status(k[0]) and k not in stored)
        return Account(produced, conflicts, missing, differ, status_missing)

    def drain(self, snapshot: dict[Key, Produced]) -> Account:
        """Wait until the snapshot's data points are stored or stop arriving; the account then."""
        assert self.influxd_up()
        start = time.monotonic()
        best = None
        best_at = start
        while True:
            self.supervise()
            account = self.account(snapshot, {})
            if not account.missing:
                break
            if best is None or len(account.missing) < best:
                best, best_at = len(account.missing), time.monotonic()
            now = time.monotonic()
            if now - best_at > STALL_S or now - start > DRAIN_MAX_S:
                break
            time.sleep(0.5)
        print(
            f"[fault suite] seed={self.seed} faults={self.log} drain={time.monotonic() - start:.1f}s"
            f" produced={len(snapshot)} missing={account.by_measurement(account.missing)}"
            f" status points missing={account.status_missing} telegraf crashes={len(self.crashes)}"
        )
        return account

    def assert_exact(self, account: Account, conflicts: dict[Key, list[str]]) -> None:
        """Nothing produced is missing, stored fields are the produced ones, replays identical."""
        data = [k for k in account.produced if not is_status(k[0])]
        self.assert_no_crash()
        assert data, self.say("the plugin produced no data at all: the rig recorded nothing")
        assert not account.missing, self.say(
            f"{len(account.missing)} of {len(data)} produced points are not in InfluxDB"
            f" (per measurement {account.by_measurement(account.missing)}), e.g."
            f" {[account.produced[k].line for k in account.missing[:3]]}"
        )
        assert not account.differ, self.say(
            f"{len(account.differ)} stored points differ from what was produced, e.g."
            f" {account.differ[:2]}"
        )
        assert not conflicts, self.say(
            f"{len(conflicts)} series+timestamps were written with different bytes, e.g."
            f" {list(conflicts.values())[:2]}"
        )


def _same_fields(stored: dict[str, Any], produced: dict[str, Any]) -> bool:
    """InfluxDB's JSON gives 1.0 back as 1; values otherwise compare as written."""
    return stored.keys() == produced.keys() and all(
        stored[k] == produced[k] and isinstance(stored[k], bool) == isinstance(produced[k], bool)
        for k in produced
    )
