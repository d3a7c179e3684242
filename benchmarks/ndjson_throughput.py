"""ndjson_throughput: lines/s of ndjson_tail under the real Telegraf vs Telegraf's own
inputs.tail + json_v2, on the same file, into outputs.file, in the same run.

Usage: .venv/bin/python benchmarks/ndjson_throughput.py [--lines 200000] [--no-accel]
``--no-accel`` runs ndjson_tail without orjson (TELEGRAF_BRIDGE_NO_ACCEL=1: the standard
library's decoder, as on a Pi Zero, where orjson has no wheel). Besides lines per second each
side's CPU time is reported (Telegraf and, for ours, the plugin it runs): on a busy 2-core
machine it moves less than wall time, and on a 1-core Pi Zero it is what bounds throughput.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import tempfile
from pathlib import Path

from _bench import LineCounter, python, run_until, smartsolar_line, telegraf_binary

from telegraf_bridge.testing import parse_lines

AGENT = """
[agent]
  interval = "1s"
  ## Short, so the end of a run is not rounded up to the next flush (both sides alike).
  flush_interval = "100ms"
  metric_batch_size = 10000
  metric_buffer_limit = 1000000
  omit_hostname = true
  skip_processors_after_aggregators = true
"""

OUTPUT = """
[[outputs.file]]
  files = ["{out}"]
  data_format = "influx"
"""

OURS = """
[[inputs.execd]]
  command = {command}
  signal = "none"
  data_format = "influx"
  environment = {environment}
"""

TAIL = """
[[inputs.tail]]
  files = ["{data}"]
  initial_read_offset = "beginning"
  watch_method = "poll"
  ## Not throttled below the output batch: tail waits for delivery of this many lines.
  max_undelivered_lines = 20000
  path_tag = ""
  data_format = "json_v2"
  [[inputs.tail.json_v2]]
    measurement_name = "smartsolar"
    timestamp_path = "timestamp"
    timestamp_format = "2006-01-02T15:04:05.999999999Z07:00"
    [[inputs.tail.json_v2.tag]]
      path = "device_name"
    [[inputs.tail.json_v2.tag]]
      path = "device_address"
    [[inputs.tail.json_v2.object]]
      path = "parsed_data"
      disable_prepend_keys = true
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians reported")
    parser.add_argument(
        "--no-accel", action="store_true", help="ndjson_tail without orjson (stdlib json)"
    )
    args = parser.parse_args()
    environment = ["TELEGRAF_BRIDGE_NO_ACCEL=1"] if args.no_accel else []
    telegraf = telegraf_binary("inputs.tail,parsers.json_v2")
    with tempfile.TemporaryDirectory(prefix="bench-ndjson-") as tmp_name:
        tmp = Path(tmp_name)
        data_dir = tmp / "data"
        data_dir.mkdir()
        data = data_dir / "data_2026-03-01.ndjson"
        with data.open("w") as handle:
            for index in range(args.lines):
                handle.write(smartsolar_line(index) + "\n")
        print(f"input: {args.lines} lines, {data.stat().st_size / 2**20:.1f} MiB")

        plugin_conf = tmp / "ndjson.toml"
        plugin_conf.write_text(
            f'files = ["{data_dir}/*.ndjson"]\nstate_dir = "{tmp / "state"}"\n'
            'require_clock_sync = false\ninterval = "100ms"\n'
            'watch = "poll"\ncommit_delay = "1s"\n'
        )
        command = json.dumps(
            [python(), "-m", "telegraf_bridge.plugins.ndjson_tail", "--config", str(plugin_conf)]
        )
        ours_conf = OURS.format(command=command, environment=json.dumps(environment))
        runs = [("ours", ours_conf), ("telegraf_tail", TAIL.format(data=data))]
        rates: dict[str, list[float]] = {"ours": [], "telegraf_tail": []}
        cpu: dict[str, list[float]] = {"ours": [], "telegraf_tail": []}
        outputs: dict[str, Path] = {}
        for attempt in range(args.repeat):
            # Alternate the order so neither side always runs second (warmer caches).
            for name, inputs in runs if attempt % 2 == 0 else runs[::-1]:
                out = tmp / f"{name}.out"
                out.unlink(missing_ok=True)
                shutil.rmtree(tmp / "state", ignore_errors=True)  # ours starts from the top
                conf = tmp / f"{name}.conf"
                conf.write_text(AGENT + inputs + OUTPUT.format(out=out))
                before = _children_cpu_s()
                counter = LineCounter(out)
                seconds = run_until(
                    [str(telegraf), "--config", str(conf), "--strict-env-handling"],
                    lambda counter=counter: counter() >= args.lines,
                    timeout=900,
                    log=tmp / f"{name}.log",
                )
                # Telegraf and the plugin it ran (reaped by Telegraf before it exits).
                cpu[name].append(_children_cpu_s() - before)
                rates[name].append(args.lines / seconds)
                outputs[name] = out
                rate = rates[name][-1]
                print(
                    f"{name}: {args.lines} lines in {seconds:.2f} s = {rate:,.0f} lines/s, "
                    f"CPU {cpu[name][-1]:.2f} s"
                )
        results = {name: statistics.median(values) for name, values in rates.items()}
        cpu_s = {name: statistics.median(values) for name, values in cpu.items()}

        ours = _points(outputs["ours"])
        theirs = _points(outputs["telegraf_tail"])
        same = len(ours & theirs)
        print("e.g. ours:  ", outputs["ours"].read_text().splitlines()[0])
        print("e.g. theirs:", outputs["telegraf_tail"].read_text().splitlines()[0])
        print(f"points with identical tags, fields and timestamps: {same} of {args.lines}")
    figures = {
        "benchmark": "ndjson_throughput",
        "lines": args.lines,
        "ours_lines_per_s": round(results["ours"]),
        "telegraf_tail_json_v2_lines_per_s": round(results["telegraf_tail"]),
        "ratio": round(results["ours"] / results["telegraf_tail"], 3),
        "accel": "stdlib json" if args.no_accel else _accel(),
        "ours_cpu_s": round(cpu_s["ours"], 2),
        "telegraf_tail_cpu_s": round(cpu_s["telegraf_tail"], 2),
        "cpu_ratio": round(cpu_s["telegraf_tail"] / cpu_s["ours"], 3),
        "runs_each": args.repeat,
        "identical_points": same,
    }
    print(json.dumps(figures))


def _children_cpu_s() -> float:
    """User + system CPU seconds of every child process reaped so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _accel() -> str:
    """Which decoder ndjson_tail uses here by default."""
    try:
        import orjson  # noqa: PLC0415 - only to name it in the figures
    except ImportError:
        return "stdlib json (orjson not installed)"
    return f"orjson {orjson.__version__}"


def _points(path: Path) -> set[tuple[object, ...]]:
    """Each point as comparable values (field order and number formatting aside)."""
    out = set()
    for p in parse_lines(path.read_text()):
        out.add(
            (
                p.measurement,
                tuple(sorted(p.tags.items())),
                tuple(sorted(p.fields.items())),
                p.time_ns,
            )
        )
    return out


if __name__ == "__main__":
    main()
