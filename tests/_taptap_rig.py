"""Run the taptap plugin as Telegraf runs it: a subprocess with a config file, stdin held open.

Closing stdin stops it (Telegraf's shutdown), so every run also goes through the plugin's
close path: the child is stopped and the identities are saved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from _support import HELPERS, REPO

from telegraf_bridge.testing import parse_lines

TESTDATA = REPO / "plugins" / "taptap" / "testdata"
SAMPLES = TESTDATA / "observe_v0.1.1_readme.jsonl"
EXPECTED = TESTDATA / "tigo_ingest_expected_from_readme.lp"
FAKE_OBSERVE = HELPERS / "fake_observe.py"
OptionValue = str | int | float | bool | list[str]


def taptap_bin() -> Path:
    """The real taptap, built by `make setup` (scripts/install-taptap.sh) or named by TAPTAP_BIN."""
    explicit = os.environ.get("TAPTAP_BIN")
    if explicit:
        return Path(explicit)
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-taptap.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cannot build taptap: {result.stderr[-2000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def fake_observe(*args: str) -> list[str]:
    """The command line of the stand-in taptap."""
    return [sys.executable, str(FAKE_OBSERVE), *args]


def toml_config(options: Mapping[str, OptionValue]) -> str:
    """A flat TOML document (JSON strings are valid TOML basic strings)."""
    lines = []
    for key, value in options.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, list | str):
            lines.append(f"{key} = {json.dumps(value)}")
        else:
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


BASE_OPTIONS: dict[str, OptionValue] = {
    "interval": "100ms",
    "require_clock_sync": False,
    "time_floor": "2020-01-01T00:00:00Z",
    "status_interval": "1h",
}


@dataclass
class PluginRun:
    """A running plugin; stdout and stderr are collected by threads as they arrive."""

    proc: subprocess.Popen[bytes]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def points(self, measurement: str = "tigo_power_report") -> list[str]:
        return [line for line in list(self.stdout) if line.startswith(measurement + ",")]

    def status(self) -> list[dict[str, object]]:
        return [p.fields for p in parse_lines("\n".join(self.points("taptap_status")))]

    def log(self, prefix: str = "") -> list[str]:
        return [line for line in list(self.stderr) if line.startswith(prefix)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out; stdout={self.stdout[-5:]!r} stderr={self.stderr[-10:]!r}"
                )
            if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                raise AssertionError(f"plugin exited {self.proc.returncode}: {self.stderr!r}")
            time.sleep(0.02)

    def stop(self, timeout: float = 15.0) -> int:
        """Close stdin as Telegraf does; returns the exit status."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        for thread in self._threads:
            thread.join(5)
        return code


def start_plugin(tmp_path: Path, options: Mapping[str, OptionValue]) -> PluginRun:
    config = tmp_path / "taptap.conf"
    merged = {**BASE_OPTIONS, "state_dir": str(tmp_path / "state"), **options}
    config.write_text(toml_config(merged), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "telegraf_bridge.plugins.taptap", "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    run = PluginRun(proc)

    def pump(stream: object, sink: list[str]) -> None:
        for raw in stream:  # type: ignore[attr-defined]
            sink.append(raw.decode("utf-8", "replace").rstrip("\n"))

    for stream, sink in ((proc.stdout, run.stdout), (proc.stderr, run.stderr)):
        thread = threading.Thread(target=pump, args=(stream, sink), daemon=True)
        thread.start()
        run._threads.append(thread)
    return run
