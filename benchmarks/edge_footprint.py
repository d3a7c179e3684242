"""edge_footprint: the demo config with every plugin under the real Telegraf for --seconds;
reports the size of the custom Telegraf (amd64 and ARMv6) and the resident (RSS),
proportional (PSS) and private (USS) memory of Telegraf and of each plugin process.

Targets: the custom Telegraf's stripped binary <= 30 MB, the whole bundle's PSS <= 80 MB (MB
taken as 10^6 bytes, the stricter reading). "Whole bundle" is Telegraf plus every process
below it: the six plugins and taptap's decoder. Its PSS is checked as "bundle PSS": each
resident page split among the bundle processes that map it (from /proc/<pid>/pagemap), i.e.
the PSS the bundle would have with nothing else running. The kernel's own PSS (from
smaps_rollup) is reported too; it is lower here because this benchmark's Python and any other
Python on the machine share libpython's pages with the plugins.

Every plugin works while it is measured, against real peers on loopback: demo; gpio_pulse
(sim backend); ndjson_tail (the files demo writes); hoymiles polling a pymodbus Modbus TCP
server holding DTU registers every 5 s; taptap running the real taptap decoder (crates.io),
fed synthesised RS485 bus bytes over TCP; iotflow's HTTP listener, posted to once a second,
and Telegraf's mqtt_consumer on a real Mosquitto (not part of the bundle; measured apart),
published to once a second, with a registry made by the iotflow registry code. The config is
examples/demo.yaml plus those sources, rendered by the project's renderer, into a file sink.
The points each plugin wrote are counted in that file; a plugin with none fails the run.

The figures are amd64 (x86_64) figures: pointers are 8 bytes here and 4 on ARMv6, so a Pi Zero
uses less; they are not Pi figures.

Usage: .venv/bin/python benchmarks/edge_footprint.py [--seconds 60] [--sample-every 2]
       [--influxd] [--official PATH] [--plugins a,b] [--host] [--no-bytecode]
--host renders with agent.plugin_host: true: the Python sources run in one plugin host
process (plugins/common/_host.py) instead of one process each. The package's modules are
compiled to .pyc first, as an installed package has them (--no-bytecode: compiled from source
at every plugin start instead).
The last line printed is one JSON object with the figures; the exit status is 1 when a target
is missed or a plugin wrote nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from _bench import REPO, telegraf_binary
from _footprint import Sampler, binary_figures, bundle_processes, mib
from telegraf_bridge.cli import iotflow_files, render
from telegraf_bridge.cli.settings import load_settings
from telegraf_bridge.cli.telegraf_bin import telegraf_path
from telegraf_bridge.plugins.common import Section
from telegraf_bridge.plugins.iotflow import options as iotflow_options
from telegraf_bridge.plugins.iotflow import registry

# The test servers (tests/rig) and the DTU and bus stand-ins of the tests
# (tests/_hoymiles_rig.py, tests/_taptap_bus.py).
sys.path.insert(0, str(REPO / "tests"))
from _hoymiles_rig import ModbusDtu, Row
from _taptap_bus import PowerReading, TapBus, repeat_cycles, taptap_server
from _taptap_rig import taptap_bin
from rig import InfluxD1, Mosquitto, TelegrafProcess, free_port, wait_for

BINARY_TARGET_BYTES = 30 * 10**6
BUNDLE_PSS_TARGET_BYTES = 80 * 10**6
PLUGINS = ("demo", "gpio_pulse", "ndjson_tail", "hoymiles", "taptap", "iotflow")
HTTP_TYPE = "bench_http"
MQTT_TYPE = "bench_mqtt"
# Measurement -> who wrote it; the first group of each is its data, the second its status rows.
MEASUREMENTS = {
    "demo": (("demo",), ()),
    "gpio_pulse": (("PowerPulse", "PowerMeter"), ("gpio_pulse_status",)),
    "ndjson_tail": (("smartsolar", "smartsolar_raw"), ()),
    "hoymiles": (("dtu", "inverter", "port"), ()),
    "taptap": (("tigo_power_report",), ("taptap_status",)),
    "iotflow": ((HTTP_TYPE,), ("iotflow_http_status",)),
    "iotflow_mqtt": ((MQTT_TYPE,), ()),
}
GW = 0x1201
READINGS = [
    PowerReading(GW, 116, 30.6, 30.2, 6.94, 1.0, 26.8, 132),
    PowerReading(GW, 82, 30.55, 0.0, 6.845, 0.0, -7.5, 147),
    PowerReading(GW, 121, 29.8, 21.9, 5.25, 194 / 255, 29.8, 120),
]
NOTE = (
    "amd64 (x86_64) figures: pointers are 8 bytes here and 4 on ARMv6, so a Pi Zero uses "
    "less memory; these are not Pi figures"
)


def log(message: str) -> None:
    print(message, flush=True)


# --- binaries ---------------------------------------------------------------------------------


def armv6_binary(build: bool) -> Path | None:
    """The ARMv6 cross-build (telegraf/build.sh with GOARCH=arm GOARM=6); built if missing
    unless ``build`` is false (then None)."""
    env = {**os.environ, "GOOS": "linux", "GOARCH": "arm", "GOARM": "6"}
    script = ["bash", str(REPO / "telegraf" / "build.sh")]
    found = subprocess.run(
        [*script, "--path-only"], capture_output=True, text=True, env=env, check=False
    )
    if found.returncode == 0:
        return Path(found.stdout.strip().splitlines()[-1])
    if not build:
        return None
    log("building the ARMv6 Telegraf (GOARCH=arm GOARM=6; a few minutes, cached afterwards)")
    built = subprocess.run(script, capture_output=True, text=True, env=env, check=True)
    return Path(built.stdout.strip().splitlines()[-1])


def official_binary(explicit: str | None, custom: Path) -> Path | None:
    """An official (full) Telegraf already on this machine, for comparison; never downloaded."""
    candidates = [explicit] if explicit else [shutil.which("telegraf"), "/usr/bin/telegraf"]
    for candidate in candidates:
        if not candidate or not Path(candidate).is_file():
            continue
        path = Path(candidate).resolve()
        if path != custom.resolve() and "telegraf-bridge" not in str(path):
            return path
    return None


# --- the config -------------------------------------------------------------------------------


def iotflow_setup(tmp: Path, http_port: int, mqtt_port: int) -> tuple[dict[str, Any], str, str]:
    """Two devices in a registry; returns the source options and each device's API key."""
    raw: dict[str, Any] = {
        "registry": str(tmp / "iotflow" / "devices.yaml"),
        "http": {"listen": f"127.0.0.1:{http_port}"},
        "mqtt": {
            "servers": [f"tcp://127.0.0.1:{mqtt_port}"],
            "broker_port": mqtt_port,
            "broker_bind": "127.0.0.1",
        },
    }
    opts = iotflow_options.parse(Section(raw, "iotflow"))
    reg = registry.Registry()
    keys = []
    for device_id, name in (("bench_http", "HTTP sensor"), ("bench_mqtt", "MQTT sensor")):
        key_id, key = registry.new_key(d.key_id for d in reg.devices.values())
        reg.devices[device_id] = registry.Device(
            id=device_id,
            name=name,
            type="environmental",
            location="bench",
            key_id=key_id,
            key_hash=registry.hash_key(key),
        )
        keys.append(key)
    iotflow_files.regenerate(opts, reg)
    registry.save(opts.registry, reg)
    return raw, keys[0], keys[1]


def bridge_yaml(
    tmp: Path,
    plugins: tuple[str, ...],
    *,
    dtu_port: int,
    taptap: Path,
    bus_host: str,
    iotflow: dict[str, Any],
) -> dict[str, Any]:
    """examples/demo.yaml with its paths moved into ``tmp``, plus the other three plugins;
    only the sources of ``plugins`` are kept."""
    doc: dict[str, Any] = yaml.safe_load((REPO / "examples" / "demo.yaml").read_text())
    agent = doc["agent"]
    agent["buffer_directory"] = str(tmp / "buffer")
    agent["state_directory"] = str(tmp / "state")
    agent["health_listen"] = f"127.0.0.1:{free_port()}"
    for source in doc["sources"]:
        options = source.setdefault("options", {})
        if "ndjson_dir" in options:
            options["ndjson_dir"] = str(tmp / "smartsolar")
        if "files" in options:
            options["files"] = [str(tmp / "smartsolar" / "*.ndjson")]
    doc["sources"] += [
        {
            "name": "dtu",
            "plugin": "hoymiles",
            # The modbus minimum; the default 60 s would poll once or not at all in a short run.
            "interval": "5s",
            "options": {"host": "127.0.0.1", "port": dtu_port, "timeout": "2s"},
        },
        {
            "name": "tigo",
            "plugin": "taptap",
            "options": {"taptap": str(taptap), "tcp": bus_host, "status_interval": "10s"},
        },
        {"name": "iot", "plugin": "iotflow", "options": iotflow},
    ]
    doc["sources"] = [source for source in doc["sources"] if source["plugin"] in plugins]
    doc["sinks"] = [{"name": "local", "type": "file", "path": str(tmp / "metrics.lp")}]
    return doc


def setup_influxdb(doc: dict[str, Any], tmp: Path) -> None:
    """`bridge-cli setup-influxdb`: the meter-pulse retention policies gpio_pulse writes to."""
    config = tmp / "bridge.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    options = ["--config", str(config), "--sink", "influx", "--secrets-dir", str(tmp / "secrets")]
    subprocess.run(
        [sys.executable, "-m", "telegraf_bridge.cli.main", "setup-influxdb", *options],
        check=True,
        capture_output=True,
    )


def render_config(doc: dict[str, Any], out_dir: Path, *, host: bool = False) -> Path:
    """telegraf.conf and the plugin configs, by the same code as `bridge-cli render-config`;
    with ``host``, as `agent.plugin_host: true` renders them (one plugin host process)."""
    if host:
        doc = {**doc, "agent": {**(doc.get("agent") or {}), "plugin_host": True}}
    settings = load_settings(None, {}, text=yaml.safe_dump(doc, sort_keys=False), base_dir=out_dir)
    output = out_dir / "telegraf.conf"
    render.write(render.render(settings, output), output)
    return output


# --- device traffic ---------------------------------------------------------------------------


class Traffic:
    """A device posting to the HTTP listener and one publishing over MQTT, once a second each."""

    def __init__(self, http_port: int, http_key: str, mqtt_port: int, mqtt_key: str) -> None:
        self.http_port = http_port
        self.http_key = http_key
        self.mqtt_port = mqtt_port
        self.mqtt_key = mqtt_key
        self.stop = threading.Event()
        self.http_ok = 0
        self.http_failed = 0
        self.mqtt_sent = 0
        self.threads = [
            threading.Thread(target=self._http, daemon=True, name="http-device"),
            threading.Thread(target=self._mqtt, daemon=True, name="mqtt-device"),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            if thread.ident is not None:  # started
                thread.join(10)

    def _http(self) -> None:
        headers = {"Content-Type": "application/json", "X-API-Key": self.http_key}
        seq = 0
        while not self.stop.wait(1.0):
            body = {"data": {"temperature": 20.0 + seq % 10, "humidity": 50.0}, "type": HTTP_TYPE}
            conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
            try:
                conn.request("POST", "/api/v1/devices/telemetry", json.dumps(body), headers)
                status = conn.getresponse().status
            except (OSError, http.client.HTTPException):
                status = 0
            finally:
                conn.close()
            if status == 200:
                self.http_ok += 1
            else:
                self.http_failed += 1
            seq += 1

    def _mqtt(self) -> None:
        import paho.mqtt.client as mqtt  # noqa: PLC0415 - dev dependency, only needed here
        from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415 - as above

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:6]}")
        client.username_pw_set("bench_mqtt", self.mqtt_key)
        client.connect("127.0.0.1", self.mqtt_port, keepalive=30)
        client.loop_start()
        topic = f"iotflow/devices/bench_mqtt/telemetry/{MQTT_TYPE}"
        try:
            seq = 0
            while not self.stop.wait(1.0):
                payload = json.dumps({"power_w": float(seq % 100), "voltage": 230.0})
                client.publish(topic, payload, qos=1)
                self.mqtt_sent += 1
                seq += 1
        finally:
            client.loop_stop()
            client.disconnect()


# --- counting points --------------------------------------------------------------------------


def measurement_counts(path: Path) -> Counter[str]:
    """Points per measurement in a line-protocol file."""
    counts: Counter[str] = Counter()
    with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
        for raw in handle:
            line = raw.rstrip(b"\n")
            if not line or line.startswith(b"#"):
                continue
            end = 0
            while end < len(line) and line[end : end + 1] not in (b",", b" "):
                end += 2 if line[end : end + 1] == b"\\" else 1
            counts[line[:end].replace(b"\\", b"").decode(errors="replace")] += 1
    return counts


def points_per_plugin(
    counts: Counter[str], plugins: tuple[str, ...]
) -> tuple[dict[str, int], dict[str, int], int]:
    """(data points per plugin, status points per plugin, Telegraf's internal_* points)."""
    ran = {name: ms for name, ms in MEASUREMENTS.items() if name.split("_mqtt")[0] in plugins}
    data = {name: sum(counts[m] for m in ms) for name, (ms, _s) in ran.items()}
    status = {name: sum(counts[m] for m in ss) for name, (_d, ss) in ran.items() if ss}
    internal = sum(n for m, n in counts.items() if m.startswith("internal_"))
    return data, status, internal


# --- the run ----------------------------------------------------------------------------------


@contextlib.contextmanager
def peers(tmp: Path, with_influxd: bool) -> Iterator[dict[str, Any]]:
    """The DTU, the RS485 bus, the broker (and influxd): everything the plugins talk to."""
    http_port, mqtt_port = free_port(), free_port()
    iotflow, http_key, mqtt_key = iotflow_setup(tmp, http_port, mqtt_port)
    snippet = (tmp / "iotflow" / "mosquitto" / "iotflow.conf").read_text()
    rows: list[Row | list[int]] = [
        Row("116180000001", 1, pv_power=101.5, today=500, total=80_000),
        Row("116180000001", 2, pv_power=99.5, today=490, total=79_000),
    ]
    bus = TapBus(gateway_addresses={GW: bytes.fromhex("04C05B300002BE16")})
    stream = bus.stream(repeat_cycles(READINGS), interval_s=1.0)
    with contextlib.ExitStack() as stack:
        dtu = stack.enter_context(ModbusDtu(rows))
        server = stack.enter_context(taptap_server(stream))
        broker = stack.enter_context(
            Mosquitto(tmp / "broker", extra_config=snippet, port=mqtt_port)
        )
        influxd = stack.enter_context(InfluxD1(tmp / "influxd")) if with_influxd else None
        yield {
            "dtu_port": dtu.port,
            "bus_host": server.host,
            "broker": broker,
            "influxd": influxd,
            "iotflow": iotflow,
            "traffic": Traffic(http_port, http_key, mqtt_port, mqtt_key),
        }


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    taptap = taptap_bin()
    with peers(tmp, args.influxd) as rig:
        doc = bridge_yaml(
            tmp,
            args.plugins,
            dtu_port=rig["dtu_port"],
            taptap=taptap,
            bus_host=rig["bus_host"],
            iotflow=rig["iotflow"],
        )
        if rig["influxd"] is not None:
            doc["sinks"].append(
                {
                    "name": "influx",
                    "type": "influxdb_v1",
                    "url": rig["influxd"].url,
                    "database": "edge",
                }
            )
            setup_influxdb(doc, tmp)
        conf = render_config(doc, tmp / "out", host=args.host)
        binary = telegraf_path()
        log(f"Telegraf: {binary}; config rendered into {conf}")
        sampler = Sampler()
        traffic: Traffic = rig["traffic"]
        with TelegrafProcess(binary, conf, tmp / "tg") as telegraf:
            assert telegraf.proc is not None
            started = time.monotonic()
            expected = {"host"} if args.host else set(args.plugins)
            if "taptap" in args.plugins:
                expected.add("host/taptap" if args.host else "taptap/taptap")
            wait_for(
                lambda: expected <= set(bundle_processes(telegraf.proc.pid)),
                timeout=60,
                what="every plugin process (and taptap's decoder) under Telegraf",
            )
            if "iotflow" in args.plugins:
                telegraf.wait_for_log("listening on http://", timeout=60)
                telegraf.wait_for_log("Connected", timeout=60)  # the MQTT consumer
                traffic.start()
            log(f"all plugins running after {time.monotonic() - started:.1f} s; sampling")
            next_sample = time.monotonic()
            while True:
                processes = bundle_processes(telegraf.proc.pid)
                bundle = set(processes)
                processes["mosquitto"] = rig["broker"].proc.pid
                total = sampler.sample(processes, bundle)
                elapsed = time.monotonic() - started
                parts = ", ".join(
                    f"{label} {mib(s.final.get('bpss', s.final['pss'])):.1f}"
                    for label, s in sampler.series.items()
                    if label in bundle
                )
                log(
                    f"t={elapsed:5.1f}s bundle PSS {mib(total.get('bpss', total['pss'])):.1f} MiB "
                    f"(kernel PSS {mib(total['pss']):.1f}, RSS sum {mib(total['rss']):.1f}): "
                    f"{parts}"
                )
                if elapsed >= args.seconds:
                    break
                next_sample += args.sample_every
                time.sleep(max(0.0, min(next_sample, started + args.seconds) - time.monotonic()))
            traffic.close()
            measured_s = time.monotonic() - started
            running_log = telegraf.log()
        # Telegraf's execd logs "read |0: file already closed" now and then while it stops a
        # plugin (after the plugin's clean exit): counted apart from errors during the run.
        shutdown_log = telegraf.log()[len(running_log) :]
    errors = [line for line in running_log.splitlines() if "E! " in line]
    for line in errors[:5]:
        log(f"Telegraf logged: {line}")
    counts = measurement_counts(tmp / "metrics.lp")
    return {
        "sampler": sampler,
        "counts": counts,
        "measured_s": measured_s,
        "traffic": traffic,
        "telegraf_errors": len(errors),
        "telegraf_errors_at_shutdown": shutdown_log.count("E! "),
        "telegraf_binary": binary,
    }


def package_bytecode(compiled: bool) -> None:
    """Compile the package's modules to ``__pycache__`` (gitignored), as ``pip install`` does;
    with ``compiled`` false, remove those caches so every plugin compiles from source.

    The plugins run from this checkout; where ``PYTHONDONTWRITEBYTECODE`` is set (as in the
    development environment) they would compile every module from source at each start,
    which leaves each process about 0.8 MiB larger than an installed package's (measured on
    ``plugins.common``'s imports). The standard library and the dependencies already have
    their ``.pyc`` files.
    """
    folders = [REPO / "plugins", REPO / "src"]
    if compiled:
        command = [sys.executable, "-m", "compileall", "-q", *map(str, folders)]
        subprocess.run(command, check=True)
        return
    for folder in folders:
        for cache in folder.rglob("__pycache__"):
            shutil.rmtree(cache)


def plugin_list(text: str) -> tuple[str, ...]:
    """``--plugins``: known names; ndjson_tail needs demo, which writes the files it reads."""
    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(set(chosen) - set(PLUGINS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown plugins {unknown}; choose from {PLUGINS}")
    if "ndjson_tail" in chosen and "demo" not in chosen:
        raise argparse.ArgumentTypeError("ndjson_tail reads the files demo writes: add demo")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the bundle runs")
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--influxd", action="store_true", help="also write to a real influxd 1.x")
    parser.add_argument("--official", help="an official Telegraf binary to compare sizes with")
    parser.add_argument(
        "--no-build-armv6",
        action="store_true",
        help="report the ARMv6 size only if that build is cached (make telegraf-armv6)",
    )
    parser.add_argument(
        "--plugins",
        type=plugin_list,
        default=PLUGINS,
        help=f"comma-separated subset to run (default: all of {','.join(PLUGINS)})",
    )
    parser.add_argument("--workdir", help="keep the run's files (config, logs, metrics) here")
    parser.add_argument(
        "--host",
        action="store_true",
        help="run every Python source in one plugin host process (plugins/common/_host.py)",
    )
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="leave the package's modules uncompiled (compiled at every plugin start) instead "
        "of compiling them first, as pip does when it installs the package",
    )
    args = parser.parse_args()

    log(f"note: {NOTE}")
    custom = telegraf_binary()
    amd64 = binary_figures(custom)
    armv6_path = armv6_binary(build=not args.no_build_armv6)
    armv6 = binary_figures(armv6_path) if armv6_path else None
    found = official_binary(args.official, custom)
    official = binary_figures(found) if found else None
    for name, figures in (("amd64", amd64), ("armv6", armv6), ("official", official)):
        if figures is None:
            why = "not downloaded" if name == "official" else "not built: make telegraf-armv6"
            log(f"{name} Telegraf: not on this machine ({why})")
            continue
        log(
            f"{name} Telegraf: {figures['bytes']:,} bytes ({figures['mib']} MiB), "
            f"stripped={figures['stripped']} dwarf={figures['dwarf']}: {figures['path']}"
        )

    package_bytecode(compiled=not args.no_bytecode)
    if args.workdir:
        workdir = Path(args.workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=False)
        result = run(args, workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp_name:
            result = run(args, Path(tmp_name))

    sampler: Sampler = result["sampler"]
    data, status, internal = points_per_plugin(result["counts"], args.plugins)
    processes = {label: s.figures() for label, s in sampler.series.items()}
    bundle_labels = [label for label in processes if label != "mosquitto"]
    bpss_peak = sampler.peak_total("bpss")
    kernel_pss_peak = sampler.peak_total("pss") or 0
    checked_pss_kib = bpss_peak if bpss_peak is not None else kernel_pss_peak
    binaries_ok = all(b["stripped"] and not b["dwarf"] for b in (amd64, armv6) if b)
    results = {
        "telegraf_binary_le_30mb": bool(
            amd64["stripped"] and not amd64["dwarf"] and amd64["bytes"] <= BINARY_TARGET_BYTES
        ),
        "bundle_pss_le_80mb": checked_pss_kib * 1024 <= BUNDLE_PSS_TARGET_BYTES,
    }
    missing = [name for name, n in data.items() if n == 0]
    for label in bundle_labels:
        f = processes[label]
        log(
            f"{label:>16}: RSS peak {f['rss_peak_mib']:6.1f} final {f['rss_final_mib']:6.1f} | "
            f"PSS peak {f['pss_peak_mib']:5.1f} final {f['pss_final_mib']:5.1f} | bundle PSS "
            f"peak {f.get('bundle_pss_peak_mib', 0):5.1f} | USS final {f['uss_final_mib']:5.1f}"
            f" MiB | restarts {f['restarts']}"
        )
    log(
        "points written: "
        + ", ".join(f"{name} {n}" for name, n in data.items())
        + f" (status rows {sum(status.values())}, internal {internal})"
    )
    log(
        f"targets (MB = 10^6 bytes): custom Telegraf amd64 {amd64['mb']} MB <= 30 MB -> "
        f"{'PASS' if results['telegraf_binary_le_30mb'] else 'FAIL'} "
        f"(ARMv6 {armv6['mb'] if armv6 else '?'} MB); "
        f"bundle PSS peak {checked_pss_kib * 1024 / 1e6:.1f} MB <= 80 MB -> "
        f"{'PASS' if results['bundle_pss_le_80mb'] else 'FAIL'}"
    )
    if missing:
        log(f"FAIL: no points from {', '.join(missing)}")
    targets_met = all(results.values())
    traffic: Traffic = result["traffic"]
    figures = {
        "benchmark": "edge_footprint",
        "arch": platform.machine(),
        "note": NOTE,
        "plugins_run": list(args.plugins),
        "bytecode": not args.no_bytecode,
        "host": args.host,
        "seconds": round(result["measured_s"], 1),
        "samples": len(sampler.totals),
        "telegraf_binary_bytes_amd64": amd64["bytes"],
        "telegraf_binary_bytes_armv6": armv6["bytes"] if armv6 else None,
        "telegraf_binary_mb_amd64": amd64["mb"],
        "telegraf_binary_mb_armv6": armv6["mb"] if armv6 else None,
        "binaries": {"amd64": amd64, "armv6": armv6, "official": official},
        "binaries_stripped": binaries_ok,
        "telegraf_run": str(result["telegraf_binary"]),
        "bundle_pss_peak_mib": mib(checked_pss_kib),
        "bundle_pss_final_mib": mib(sampler.final_total("bpss") or sampler.final_total("pss") or 0),
        "bundle_kernel_pss_peak_mib": mib(kernel_pss_peak),
        "bundle_kernel_pss_final_mib": mib(sampler.final_total("pss") or 0),
        "bundle_rss_sum_peak_mib": mib(sampler.peak_total("rss") or 0),
        "bundle_uss_final_mib": mib(sampler.final_total("uss") or 0),
        "telegraf": processes.get("telegraf"),
        "plugins": {label: processes[label] for label in bundle_labels if label != "telegraf"},
        "external": {"mosquitto": processes.get("mosquitto")},
        "points": data,
        "status_points": status,
        "internal_points": internal,
        "all_plugins_wrote": not missing,
        "http_requests_ok": traffic.http_ok,
        "http_requests_failed": traffic.http_failed,
        "mqtt_published": traffic.mqtt_sent,
        "telegraf_errors": result["telegraf_errors"],
        "telegraf_errors_at_shutdown": result["telegraf_errors_at_shutdown"],
        "targets": {
            "telegraf_binary_max_bytes": BINARY_TARGET_BYTES,
            "bundle_pss_max_bytes": BUNDLE_PSS_TARGET_BYTES,
        },
        "target_results": results,
        "targets_met": targets_met,
    }
    print(json.dumps(figures), flush=True)
    if not (targets_met and not missing):
        sys.exit(1)


if __name__ == "__main__":
    main()
