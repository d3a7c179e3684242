"""journal_sd_card: what each plugin writes to disk, and how often it fsyncs, at the seeds'
real rates: the SD-card cost of the delivery journal (and of ndjson_tail's state file).

Every plugin runs as Telegraf runs it (``python -m telegraf_bridge.plugins.<name> --config
plugin.toml``, stdin held open, a thread reading its stdout continuously as Telegraf's execd
does, so the journal's delivery rule retires entries), all five in parallel, each fed by a
real peer on loopback at a real rate:

- ndjson_tail: a SmartSolar record appended every 5 s (two controllers, each every 10 s);
  it has no journal (its files are its journal), only its position state file;
- gpio_pulse: the seed's three channels on the ``sim`` backend at 0.5, 0.3 and 0.8 pulses/s
  (1.8, 1.1 and 2.9 kW at 1000 imp/kWh: a house importing, exporting and generating);
- taptap: the real taptap decoder fed a synthesised RS-485 bus (tests/_taptap_bus.py) with 40
  optimisers on one gateway, each reporting every 20 s (two reports a second);
- hoymiles: a pymodbus DTU (tests/_hoymiles_rig.py) with 4 inverters of 2 ports, polled
  every 60 s (the seed's period);
- iotflow: 50 devices, each posting one point over HTTP every 30 s (a new connection each,
  spread evenly), every 2xx after the journal's fsync.

Each plugin runs under ``strace -f -ff --seccomp-bpf -e trace=write,pwrite64,fsync,fdatasync
-y``: only those calls stop the tracee, so the overhead is per call (a few us), not per
system call. From the trace, within the measured window: fsync/fdatasync calls and the bytes
of write() calls, by file (journal segments, state files, the status file). From
``/proc/<pid>/io`` at the start and end of the window: ``wchar`` (every byte written,
pipes included), ``syscw`` and ``write_bytes`` minus ``cancelled_write_bytes`` (bytes the
process dirtied in the page cache for the block layer: a page rewritten before writeback
counts once, a page dirtied again after an fsync counts again). Not counted anywhere: the
filesystem's own journal (ext4's jbd2 commits a few metadata blocks per fsync), and the
card's erase-block write amplification. Figures are scaled to one hour.

At the end stdin is closed (Telegraf's shutdown), and the journal's own figures are read from
each plugin's status file (``journal``: entries, bytes, oldest age, replays, drops, torn).

Usage: .venv/bin/python benchmarks/journal_sd_card.py [--minutes 10] [--warmup 40]
       [--plugins gpio_pulse,taptap,...] [--workdir DIR]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _bench import REPO, python, smartsolar_line, strace_command, traced_calls
from _footprint import children
from http_ingest import make_registry

# The test servers (tests/rig) and the DTU and bus stand-ins of the tests
# (tests/_hoymiles_rig.py, tests/_taptap_bus.py).
sys.path.insert(0, str(REPO / "tests"))
from _hoymiles_rig import ModbusDtu, Row
from _taptap_bus import PowerReading, TapBus, taptap_server
from _taptap_rig import taptap_bin
from rig import free_port, wait_for

PLUGINS = ("ndjson_tail", "gpio_pulse", "taptap", "hoymiles", "iotflow")
HOUR = 3600.0
# The rates (see the module docstring).
NDJSON_EVERY_S = 5.0
GPIO_RATES = (0.5, 0.3, 0.8)  # pulses/s: Import, Export, Generate
TIGO_OPTIMISERS = 40
TIGO_EVERY_S = 20.0
HOYMILES_INTERVAL = "60s"
HOYMILES_INVERTERS = 4
HOYMILES_PORTS = 2
IOT_DEVICES = 50
IOT_EVERY_S = 30.0
GW = 0x1201
TRACED = "write,pwrite64,fsync,fdatasync"


def log(message: str) -> None:
    print(message, flush=True)


# --- one traced plugin --------------------------------------------------------------------------


@dataclass
class Traced:
    """A plugin process under strace, its stdout drained by a thread (Telegraf's execd)."""

    name: str
    config: Path
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    stdout_bytes: int = 0
    stdout_lines: int = 0
    io_start: dict[str, int] = field(default_factory=dict)
    io_end: dict[str, int] = field(default_factory=dict)
    _reader: threading.Thread | None = None

    @property
    def trace_prefix(self) -> Path:
        return self.workdir / f"{self.name}.strace"

    def start(self) -> None:
        plugin = [python(), "-m", f"telegraf_bridge.plugins.{self.name}", "--config"]
        cmd = strace_command([*plugin, str(self.config)], self.trace_prefix, TRACED)
        stderr = (self.workdir / f"{self.name}.stderr").open("wb")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
        stderr.close()
        self._reader = threading.Thread(target=self._read, name=f"{self.name}-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(1 << 16):
            self.stdout_bytes += len(chunk)
            self.stdout_lines += chunk.count(b"\n")

    def pids(self) -> list[int]:
        """The plugin and every process below it (not strace itself)."""
        assert self.proc is not None
        found: list[int] = []
        stack = children(self.proc.pid)
        while stack:
            pid = stack.pop()
            found.append(pid)
            stack += children(pid)
        return found

    def io(self) -> dict[str, int]:
        """/proc/<pid>/io summed over the plugin's processes."""
        total: dict[str, int] = {}
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                    key, _, value = line.partition(":")
                    total[key] = total.get(key, 0) + int(value)
        return total

    def stop(self) -> int:
        """Close stdin (Telegraf's shutdown) and wait for the plugin and strace to exit."""
        assert self.proc is not None and self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            if self._reader is not None:
                self._reader.join(5)

    def calls(self, start: float, end: float) -> dict[str, Any]:
        """fsyncs and written bytes by kind of file, between ``start`` and ``end`` (epoch s)."""
        fsyncs: Counter[str] = Counter()
        written: Counter[str] = Counter()
        writes: Counter[str] = Counter()
        fsync_s = 0.0
        for call in traced_calls(self.trace_prefix, start, end):
            kind = file_kind(call.path)
            if call.name in ("fsync", "fdatasync"):
                fsyncs[kind] += 1
                fsync_s += call.seconds
            elif call.result > 0:
                written[kind] += call.result
                writes[kind] += 1
        return {"fsyncs": fsyncs, "bytes": written, "writes": writes, "fsync_s": fsync_s}

    def status(self, state_dir: Path) -> dict[str, Any]:
        """The plugin's status file (written at exit)."""
        for path in state_dir.glob(f"{self.name}-*.status.json"):
            doc: dict[str, Any] = json.loads(path.read_text())["data"]
            return doc
        return {}


def file_kind(target: str) -> str:
    """What a traced file descriptor is: journal, status, state, stdout (pipe) or other."""
    if target.startswith("pipe:"):
        return "pipe"
    if ".journal/" in target or target.endswith(".journal"):
        return "journal"
    if ".status.json" in target:
        return "status"
    if "/state/" in target:
        return "state"
    return "other"


# --- configs and peers -----------------------------------------------------------------------


def common_options(tmp: Path) -> str:
    """The options render-config writes for every plugin (the disk buffer and its cap)."""
    return (
        f'state_dir = "{tmp / "state"}"\n'
        "require_clock_sync = false\n"
        f'buffer_directory = "{tmp / "buffer"}"\n'
        "buffer_max_size_mb = 500\n"
    )


class Feeder:
    """Background threads that play the devices; ``stop`` ends them."""

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.counts: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def count(self, name: str, ok: bool = True) -> None:
        with self._lock:
            table = self.counts if ok else self.failures
            table[name] = table.get(name, 0) + 1

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(10)


def ndjson_tail(tmp: Path, feeder: Feeder, _stack: contextlib.ExitStack) -> str:
    data = tmp / "smartsolar"
    data.mkdir()
    target = data / "smartsolar-2026.ndjson"

    def write() -> None:
        for index in itertools.count():
            with target.open("a", encoding="utf-8") as handle:
                handle.write(smartsolar_line(index) + "\n")
            feeder.count("ndjson_tail")
            if feeder.stop_event.wait(NDJSON_EVERY_S):
                return

    feeder.spawn("smartsolar", write)
    return f'files = ["{data}/*.ndjson"]\n'


def gpio_pulse(_tmp: Path, _feeder: Feeder, _stack: contextlib.ExitStack) -> str:
    scale = ", ".join(str(rate / GPIO_RATES[0]) for rate in GPIO_RATES)
    return (
        'backend = "sim"\n'
        'interval = "1s"\n'
        "[sim]\n"
        f"rate = {GPIO_RATES[0]}\n"
        f"scale = [{scale}]\n"
        "jitter = 0.2\n"
        "seed = 7\n"
    )


def tigo_cycles() -> Iterator[list[PowerReading]]:
    """Each second the next ``TIGO_OPTIMISERS / TIGO_EVERY_S`` optimisers report."""
    per_cycle = round(TIGO_OPTIMISERS / TIGO_EVERY_S)
    for cycle in itertools.count():
        nodes = [(cycle * per_cycle + i) % TIGO_OPTIMISERS + 1 for i in range(per_cycle)]
        yield [
            PowerReading(GW, node, 30.5, 30.1, 6.9, 1.0, 26.5, 130 + node % 20) for node in nodes
        ]


def taptap(_tmp: Path, _feeder: Feeder, stack: contextlib.ExitStack) -> str:
    bus = TapBus(gateway_addresses={GW: bytes.fromhex("04C05B300002BE16")})
    server = stack.enter_context(taptap_server(bus.stream(tigo_cycles(), interval_s=1.0)))
    return f'taptap = "{taptap_bin()}"\ntcp = "{server.host}"\n'


def hoymiles(_tmp: Path, _feeder: Feeder, stack: contextlib.ExitStack) -> str:
    rows: list[Row | list[int]] = [
        Row(f"11618000000{inverter}", port, pv_power=100.0 + port, today=500, total=80_000)
        for inverter in range(1, HOYMILES_INVERTERS + 1)
        for port in range(1, HOYMILES_PORTS + 1)
    ]
    dtu = stack.enter_context(ModbusDtu(rows))
    return f'host = "127.0.0.1"\nport = {dtu.port}\ninterval = "{HOYMILES_INTERVAL}"\n'


def iotflow(tmp: Path, feeder: Feeder, _stack: contextlib.ExitStack) -> str:
    devices = make_registry(tmp / "devices.yaml", IOT_DEVICES)
    port = free_port()

    def post(key: str, offset: float) -> None:
        headers = {"Content-Type": "application/json", "X-API-Key": key}
        if feeder.stop_event.wait(offset):
            return
        for seq in itertools.count():
            body = {"data": {"temperature": 20.0 + seq % 10, "humidity": 50.0}, "type": "sd"}
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("POST", "/api/v1/devices/telemetry", json.dumps(body), headers)
                ok = conn.getresponse().status == 200
            except (OSError, http.client.HTTPException):
                ok = False
            finally:
                conn.close()
            feeder.count("iotflow", ok)
            if feeder.stop_event.wait(IOT_EVERY_S):
                return

    def start() -> None:
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: _listening(port), timeout=60, what="the iotflow listener")
        for index, (_device, key) in enumerate(devices):
            feeder.spawn(f"device-{index}", post, key, index * IOT_EVERY_S / IOT_DEVICES)

    feeder.spawn("iot-start", start)
    return (
        f'registry = "{tmp / "devices.yaml"}"\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        "[mqtt]\nenabled = false\n"
    )


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


SETUP = {
    "ndjson_tail": ndjson_tail,
    "gpio_pulse": gpio_pulse,
    "taptap": taptap,
    "hoymiles": hoymiles,
    "iotflow": iotflow,
}
WORKLOAD = {
    "ndjson_tail": f"1 SmartSolar record / {NDJSON_EVERY_S:g} s",
    "gpio_pulse": f"3 channels, {sum(GPIO_RATES):g} pulses/s in all",
    "taptap": f"{TIGO_OPTIMISERS} optimisers, 1 report / {TIGO_EVERY_S:g} s each",
    "hoymiles": f"1 DTU ({HOYMILES_INVERTERS}x{HOYMILES_PORTS} ports) / {HOYMILES_INTERVAL}",
    "iotflow": f"{IOT_DEVICES} devices, 1 POST / {IOT_EVERY_S:g} s each",
}


# --- the run ----------------------------------------------------------------------------------


def per_hour(value: float, seconds: float) -> int:
    return round(value * HOUR / seconds)


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    (tmp / "state").mkdir()
    (tmp / "buffer").mkdir()
    feeder = Feeder()
    plugins: dict[str, Traced] = {}
    with contextlib.ExitStack() as stack:
        for name in args.plugins:
            options = SETUP[name](tmp, feeder, stack)
            config = tmp / f"{name}.toml"
            # The shared options first: a plugin's own tables ([sim], [http]) end the top level.
            config.write_text(common_options(tmp) + options)
            plugins[name] = Traced(name, config, tmp)
            plugins[name].start()
        log(f"started {', '.join(plugins)}; warming up for {args.warmup:g} s")
        time.sleep(args.warmup)
        load_start = os.getloadavg()
        start = time.time()
        for plugin in plugins.values():
            plugin.io_start = plugin.io()
        lines_start = {name: p.stdout_lines for name, p in plugins.items()}
        deadline = time.monotonic() + args.minutes * 60
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(60.0, left))
            log(
                f"{args.minutes * 60 - max(left - 60, 0):5.0f} s: "
                + ", ".join(f"{n} {p.stdout_lines} lines" for n, p in plugins.items())
            )
        for plugin in plugins.values():
            plugin.io_end = plugin.io()
        end = time.time()
        load_end = os.getloadavg()
        lines = {name: p.stdout_lines - lines_start[name] for name, p in plugins.items()}
        feeder.stop()
        exits = {name: plugin.stop() for name, plugin in plugins.items()}
    seconds = end - start
    rows = {}
    for name, plugin in plugins.items():
        calls = plugin.calls(start, end)
        io = {k: plugin.io_end.get(k, 0) - plugin.io_start.get(k, 0) for k in plugin.io_end}
        fsyncs = calls["fsyncs"]
        written = calls["bytes"]
        status = plugin.status(tmp / "state")
        rows[name] = {
            "workload": WORKLOAD[name],
            "points_per_h": per_hour(lines[name], seconds),
            "journal_appends_per_h": per_hour(calls["writes"].get("journal", 0), seconds),
            "journal_bytes_per_h": per_hour(written.get("journal", 0), seconds),
            "state_bytes_per_h": per_hour(written.get("state", 0), seconds),
            "status_bytes_per_h": per_hour(written.get("status", 0), seconds),
            "file_bytes_per_h": per_hour(
                sum(v for k, v in written.items() if k != "pipe"), seconds
            ),
            "fsyncs_per_h": per_hour(sum(fsyncs.values()), seconds),
            "journal_fsyncs_per_h": per_hour(fsyncs.get("journal", 0), seconds),
            "other_fsyncs_per_h": per_hour(
                sum(v for k, v in fsyncs.items() if k != "journal"), seconds
            ),
            "fsync_ms_mean": round(1000 * calls["fsync_s"] / max(sum(fsyncs.values()), 1), 2),
            "wchar_per_h": per_hour(io.get("wchar", 0), seconds),
            "syscw_per_h": per_hour(io.get("syscw", 0), seconds),
            "write_bytes_per_h": per_hour(
                io.get("write_bytes", 0) - io.get("cancelled_write_bytes", 0), seconds
            ),
            "journal_status": status.get("journal"),
            "exit_status": exits[name],
        }
    return {
        "seconds": round(seconds, 1),
        "rows": rows,
        "load_start": [round(v, 2) for v in load_start],
        "load_end": [round(v, 2) for v in load_end],
        "device_posts": feeder.counts,
        "device_failures": feeder.failures,
    }


def kib(value: float) -> str:
    return f"{value / 1024:,.0f}"


def table(rows: dict[str, dict[str, Any]]) -> str:
    """The Markdown table of docs/delivery.md."""
    out = [
        "| plugin | load | points/h | journal appends/h | journal KiB/h | state + status "
        "KiB/h | fsyncs/h (journal + other) | write_bytes KiB/h | wchar KiB/h |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        out.append(
            f"| {name} | {r['workload']} | {r['points_per_h']:,} | "
            f"{r['journal_appends_per_h']:,} | {kib(r['journal_bytes_per_h'])} | "
            f"{kib(r['state_bytes_per_h'] + r['status_bytes_per_h'])} | "
            f"{r['fsyncs_per_h']:,} ({r['journal_fsyncs_per_h']:,} + "
            f"{r['other_fsyncs_per_h']:,}) | {kib(r['write_bytes_per_h'])} | "
            f"{kib(r['wchar_per_h'])} |"
        )
    return "\n".join(out)


def plugin_list(text: str) -> tuple[str, ...]:
    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(set(chosen) - set(PLUGINS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown plugins {unknown}; choose from {PLUGINS}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="the measured window")
    parser.add_argument(
        "--warmup",
        type=float,
        default=40.0,
        help="seconds before the window (start-up, and commit_delay's first 30 s)",
    )
    parser.add_argument(
        "--plugins",
        type=plugin_list,
        default=PLUGINS,
        help=f"comma-separated subset (default: all of {','.join(PLUGINS)})",
    )
    parser.add_argument("--workdir", help="keep the run's files (configs, traces, state) here")
    args = parser.parse_args()
    if args.workdir:
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=False)
        result = run(args, workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-sd-", dir=os.environ.get("TMPDIR")) as t:
            result = run(args, Path(t))
    rows = result["rows"]
    log(
        f"measured {result['seconds']:.0f} s, scaled to one hour; load average "
        f"{result['load_start']} at the start, {result['load_end']} at the end"
    )
    log(table(rows))
    for name, r in rows.items():
        log(
            f"{name}: journal at exit {r['journal_status']}; mean fsync {r['fsync_ms_mean']} ms; "
            f"write() calls {r['syscw_per_h']:,}/h; exit status {r['exit_status']}"
        )
    print(
        json.dumps(
            {
                "benchmark": "journal_sd_card",
                "seconds": result["seconds"],
                "load_average_start": result["load_start"],
                "load_average_end": result["load_end"],
                "device_posts": result["device_posts"],
                "device_failures": result["device_failures"],
                "plugins": rows,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
