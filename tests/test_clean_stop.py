"""A normal stop of the real Telegraf logs no error (finding 14).

Telegraf's execd reads a plugin's stdout while ``exec.Cmd.Wait`` closes that pipe once the
process has exited; when the exit wins the race, Telegraf logs ``E! [inputs.execd::<name>]
Error in plugin: read |0: file already closed``. The shim closes its stdout and stderr (so
Telegraf reads end-of-file) before the process exits, which takes the race away.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _support import fast_agent_yaml, render_yaml
from rig import TelegrafProcess, wait_for

pytestmark = pytest.mark.telegraf

ROUNDS = 3


def test_sigterm_stop_of_the_demo_logs_no_error(tmp_path: Path, telegraf_bin: Path) -> None:
    out = tmp_path / "metrics.lp"
    text = (
        fast_agent_yaml(tmp_path)
        + f"""
sources:
  - name: demo
    plugin: demo
    options: {{ndjson_dir: {tmp_path / "ndjson"}}}
  - name: meter
    plugin: gpio_pulse
    options: {{backend: sim}}
  - name: smartsolar
    plugin: ndjson_tail
    options: {{files: ["{tmp_path / "ndjson"}/*.ndjson"]}}
sinks:
  - name: local
    type: file
    path: {out}
"""
    )
    conf = render_yaml(text, tmp_path / "conf")
    for round_ in range(ROUNDS):
        workdir = tmp_path / f"run{round_}"
        with TelegrafProcess(telegraf_bin, conf, workdir) as telegraf:
            wait_for(lambda: out.exists() and "smartsolar," in out.read_text(), timeout=60)
            wait_for(lambda: "Starting process" in telegraf.log(), timeout=10)
            status = telegraf.stop()
        log = telegraf.log()
        assert status == 0, log
        errors = [line for line in log.splitlines() if " E! " in line]
        assert not errors, "\n".join(errors)
        out.unlink()
