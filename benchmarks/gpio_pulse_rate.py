"""gpio_pulse_rate: the sim backend drives pulses at rising rates through the gpio_pulse plugin
under the real Telegraf into outputs.file; reports the highest rate with zero pulses lost and
the CPU cost per pulse (plugin and Telegraf).

A rate "holds" when every generated pulse is in the file (none lost, none dropped at the
capture queue) and the pipeline kept pace: every pulse was in the file at most 4 s later
than the rate's nominal duration after Telegraf started (its start-up plus a flush). The
bounce filter is off (min_interval = 0) so every edge must come through.

Usage: .venv/bin/python benchmarks/gpio_pulse_rate.py [--rates 500,1000,2000,4000,8000]
       [--seconds 5]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _bench import REPO, telegraf_binary
from _footprint import children, cpu_seconds
from telegraf_bridge.cli import render
from telegraf_bridge.cli.settings import load_settings

# The test servers (tests/rig).
sys.path.insert(0, str(REPO / "tests"))
from rig import TelegrafProcess

CHANNELS = 3


def config(workdir: Path, per_channel: float, limit: int) -> Path:
    text = f"""
agent:
  interval: 1s
  flush_interval: 1s
  metric_batch_size: 10000
  metric_buffer_limit: 2000000
  buffer_strategy: memory
  state_directory: {workdir / "state"}
  require_clock_sync: false
  time_floor: "2020-01-01T00:00:00Z"
  health_listen: ""
sources:
  - name: meter
    plugin: gpio_pulse
    options:
      backend: sim
      min_interval: 0s
      sim: {{rate: {per_channel}, limit: {limit}}}
sinks:
  - name: out
    type: file
    path: {workdir / "metrics.lp"}
"""
    settings = load_settings(None, {}, text=text, base_dir=workdir)
    output = workdir / "telegraf.conf"
    render.write(render.render(settings, output), output)
    return output


def count_pulses(path: Path) -> tuple[int, int]:
    """Raw pulse lines and the largest overflow count in the status points."""
    pulses = overflows = 0
    try:
        with path.open("rb") as handle:
            for line in handle:
                if b" Pulse=1i " in line:
                    pulses += 1
                elif line.startswith(b"gpio_pulse_status"):
                    value = line.split(b"overflows=", 1)[1].split(b"i", 1)[0]
                    overflows = max(overflows, int(value))
    except FileNotFoundError:
        pass
    return pulses, overflows


def run_rate(binary: Path, rate: int, seconds: float) -> dict[str, float | int | bool]:
    per_channel = rate / CHANNELS
    limit = round(per_channel * seconds)
    expected = limit * CHANNELS
    with tempfile.TemporaryDirectory(prefix="gpio-bench-") as tmp:
        workdir = Path(tmp)
        conf = config(workdir, per_channel, limit)
        out = workdir / "metrics.lp"
        with TelegrafProcess(binary, conf, workdir / "tg") as telegraf:
            assert telegraf.proc is not None
            started = time.monotonic()
            plugin_cpu = 0.0
            plugin_pid = None
            got = overflows = 0
            last_change = started
            while True:
                time.sleep(0.25)
                if plugin_pid is None:
                    found = children(telegraf.proc.pid)
                    plugin_pid = found[0] if found else None
                if plugin_pid is not None:
                    plugin_cpu = max(plugin_cpu, cpu_seconds(plugin_pid))
                now_got, overflows = count_pulses(out)
                now = time.monotonic()
                if now_got != got:
                    got, last_change = now_got, now
                if got >= expected or now - last_change > 5 or now - started > seconds * 4 + 30:
                    break
            done_at = last_change - started
            telegraf_cpu = cpu_seconds(telegraf.proc.pid)
            log = telegraf.log()
    lost = expected - got
    # The generator starts about 1 s after Telegraf; pace is judged on the tail end.
    kept_pace = done_at <= seconds + 4.0
    return {
        "rate": rate,
        "expected": expected,
        "written": got,
        "lost": lost,
        "queue_overflows": overflows,
        "seconds_to_all_written": round(done_at, 2),
        "kept_pace": kept_pace,
        "plugin_cpu_us_per_pulse": round(plugin_cpu / max(got, 1) * 1e6, 1),
        "telegraf_cpu_us_per_pulse": round(telegraf_cpu / max(got, 1) * 1e6, 1),
        "errors_logged": log.count("E! "),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rates",
        default="500,1000,2000,4000,8000,16000,32000,64000",
        help="pulses/s, all channels together",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="pulses per rate: rate x s")
    args = parser.parse_args()
    binary = telegraf_binary()
    results = []
    best = 0
    for rate in (int(r) for r in args.rates.split(",")):
        result = run_rate(binary, rate, args.seconds)
        results.append(result)
        holds = result["lost"] == 0 and result["kept_pace"] and not result["queue_overflows"]
        print(
            f"{rate:>7} pulses/s: written {result['written']}/{result['expected']}, lost "
            f"{result['lost']}, all in after {result['seconds_to_all_written']} s, plugin "
            f"{result['plugin_cpu_us_per_pulse']} us/pulse, Telegraf "
            f"{result['telegraf_cpu_us_per_pulse']} us/pulse -> {'holds' if holds else 'FAILS'}",
            flush=True,
        )
        if holds:
            best = max(best, rate)
    at_best = next((r for r in results if r["rate"] == best), None)
    print(
        json.dumps(
            {
                "max_rate_zero_loss_pulses_per_s": best,
                "target_pulses_per_s": 2000,
                "plugin_cpu_us_per_pulse_at_max": at_best["plugin_cpu_us_per_pulse"]
                if at_best
                else None,
                "telegraf_cpu_us_per_pulse_at_max": at_best["telegraf_cpu_us_per_pulse"]
                if at_best
                else None,
                "seconds_per_rate": args.seconds,
                "runs": results,
            }
        )
    )


if __name__ == "__main__":
    main()
