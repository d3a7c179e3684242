"""Shared helpers for the benchmarks: SmartSolar-shaped data, the Telegraf builds, timing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START = 1_772_323_200  # 2026-03-01T00:00:00Z
STATES = ("OFF", "BULK", "ABSORPTION", "FLOAT")
DEVICES = (("SmartSolar HQ22189Q3QF", "DF:C9:B0:6E:3F:EF"), ("SmartSolar HQ2", "AA:BB:CC:DD:EE:FF"))


def smartsolar_line(index: int) -> str:
    """Record ``index``: devices alternate, one record per device every 10 s."""
    name, address = DEVICES[index % 2]
    ts = START + (index // 2) * 10
    return json.dumps(
        {
            "timestamp": datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds"),
            "device_name": name,
            "device_address": address,
            "parsed_data": {
                "battery_voltage": round(12.0 + (index % 200) / 100, 2),
                "battery_charging_current": round((index % 70) / 10, 1),
                "charge_state": STATES[index % 4],
                "charger_error": "NO_ERROR",
                "external_device_load": 0.5,
                "solar_power": float(index % 400),
                "yield_today": float(index % 5000),
            },
            "raw_data": "100253a001064dcb7890fa1f3d90c77f4707d674",
        },
        separators=(",", ":"),
    )


def telegraf_binary(extra_tags: str = "") -> Path:
    """The pinned custom Telegraf (built if needed), optionally with extra plugins."""
    env = {**os.environ}
    if extra_tags:
        env["TELEGRAF_EXTRA_TAGS"] = extra_tags
    out = subprocess.run(
        ["bash", str(REPO / "telegraf" / "build.sh")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


class LineCounter:
    """Lines in a file that only grows, counted from where the last look stopped.

    Polled every 50 ms: reading the whole output each time (69 MiB at the end of an
    ndjson_throughput run) cost the 2-core machine up to a core, taken from the pipelines
    being measured.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines = 0

    def __call__(self) -> int:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    self.offset += len(chunk)
                    self.lines += chunk.count(b"\n")
        except FileNotFoundError:
            return 0
        return self.lines


def run_until(cmd: list[str], done: callable, *, timeout: float, log: Path) -> float:  # type: ignore[valid-type]
    """Start ``cmd``, return the seconds until ``done()`` is true, then stop it."""
    with log.open("wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            while not done():
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd[0]} exited early; see {log}")
                if time.monotonic() - start > timeout:
                    raise TimeoutError(f"not done within {timeout}s; see {log}")
                time.sleep(0.05)
            return time.monotonic() - start
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def python() -> str:
    return sys.executable


# `1767225600.123456 write(5</path>, ""..., 312) = 312 <0.000020>` (strace -ttt -T -y)
_TRACED_CALL = re.compile(r"^(\d+\.\d+) (\w+)\((\d+)<([^>]*)>.*\) += (-?\d+)")


def strace_command(cmd: list[str], prefix: Path, calls: str) -> list[str]:
    """``cmd`` under strace, tracing only ``calls`` (e.g. ``"fsync,fdatasync"``).

    ``--seccomp-bpf`` stops the tracee only at those calls, so the cost is a few us per traced
    call rather than per system call; ``-ff`` writes one file per thread (``<prefix>.<tid>``),
    so no call is split into "unfinished"/"resumed" halves; ``-y`` names each fd's file.
    """
    options = ["-f", "-ff", "-ttt", "-T", "-y", "-s", "0", "--seccomp-bpf"]
    return ["strace", *options, "-e", f"trace={calls}", "-o", str(prefix), *cmd]


@dataclass(frozen=True)
class TracedCall:
    """One call from a :func:`strace_command` trace."""

    at: float  # epoch seconds
    name: str  # "fsync", "write" ...
    path: str  # the fd's file, as strace -y names it ("pipe:[123]" for a pipe)
    result: int  # bytes for a write
    seconds: float  # time spent in the call


def traced_calls(prefix: Path, start: float, end: float) -> list[TracedCall]:
    """The calls traced under ``prefix`` between ``start`` and ``end`` (epoch seconds)."""
    found: list[TracedCall] = []
    for path in prefix.parent.glob(f"{prefix.name}.*"):
        for line in path.read_text(errors="replace").splitlines():
            match = _TRACED_CALL.match(line)
            if match is None or not start <= float(match[1]) < end:
                continue
            took = line.rsplit("<", 1)[-1].rstrip(">")
            seconds = float(took) if re.fullmatch(r"\d+\.\d+", took) else 0.0
            found.append(TracedCall(float(match[1]), match[2], match[4], int(match[5]), seconds))
    return found
