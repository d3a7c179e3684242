"""The wrapper around taptap: restarts with backoff, staleness, bad lines, identities, messages.

taptap is replaced here by tests/helpers/fake_observe.py, a stand-in that replays recorded
`taptap observe` lines (the README samples, in both output formats): these tests are about
supervising a child, not decoding. Decoding by the real taptap is in test_taptap_real.py.
"""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest
from _taptap_rig import EXPECTED, SAMPLES, fake_observe, start_plugin
from telegraf_bridge.plugins.taptap.events import PowerReport
from telegraf_bridge.plugins.taptap.plugin import EventQueue, serial_port_problem

from telegraf_bridge.testing import parse_lines


def newer_format_file(tmp_path: Path) -> Path:
    """The README samples as unreleased taptap prints them, after an infrastructure report."""
    infra = {
        "event_type": "infrastructure_report",
        "gateways": {"4609": {"address": "04:C0:5B:30:00:02:BE:16", "version": "G8.59"}},
        "nodes": {"4609": {"116": {"address": "04:C0:5B:40:00:9A:57:A2", "barcode": "4-9A57A2L"}}},
    }
    lines = [json.dumps(infra)]
    for raw in SAMPLES.read_text().splitlines():
        doc = json.loads(raw)
        doc["event_type"] = "power_report"
        doc["gateway"] = doc["gateway"]["id"]
        doc["node"] = doc["node"]["id"]
        lines.append(json.dumps(doc))
    path = tmp_path / "newer.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_replayed_readme_samples_come_out_as_the_expected_points(tmp_path: Path) -> None:
    run = start_plugin(tmp_path, {"command": fake_observe(str(SAMPLES), "--hold", "30")})
    run.wait_for(lambda: len(run.points()) == 8)
    assert run.stop() == 0
    assert run.points() == EXPECTED.read_text().splitlines()
    assert run.log("E!") == []


def test_newer_format_with_infrastructure_report_tags_reports(tmp_path: Path) -> None:
    newer = newer_format_file(tmp_path)
    run = start_plugin(tmp_path, {"command": fake_observe(str(newer), "--hold", "30")})
    run.wait_for(lambda: len(run.points()) == 8)
    run.stop()
    points = parse_lines("\n".join(run.points()))
    node116 = [p for p in points if p.tags["node_id"] == "116"]
    assert {p.tags.get("barcode") for p in node116} == {"4-9A57A2L"}
    assert all(p.tags["gateway_addr"] == "04:C0:5B:30:00:02:BE:16" for p in points)
    assert all("barcode" not in p.tags for p in points if p.tags["node_id"] != "116")
    # Apart from the identity tags, the same points as the released format.
    bare = [
        line.replace(",gateway_addr=04:C0:5B:30:00:02:BE:16", "")
        .replace(",barcode=4-9A57A2L", "")
        .replace(",node_addr=04:C0:5B:40:00:9A:57:A2", "")
        for line in run.points()
    ]
    assert bare == EXPECTED.read_text().splitlines()


def test_identities_survive_a_plugin_restart(tmp_path: Path) -> None:
    newer = newer_format_file(tmp_path)
    # commit_delay 0: what the test read counts as delivered, so the journal replays nothing.
    first = start_plugin(
        tmp_path, {"command": fake_observe(str(newer), "--hold", "30"), "commit_delay": "0s"}
    )
    first.wait_for(lambda: len(first.points()) == 8)
    first.stop()
    # Second run: reports only, no infrastructure report (taptap restarted and knows nothing).
    reports_only = tmp_path / "reports.jsonl"
    reports_only.write_text("".join(newer.read_text().splitlines(True)[1:]))
    second = start_plugin(tmp_path, {"command": fake_observe(str(reports_only), "--hold", "30")})
    second.wait_for(lambda: len(second.points()) == 8)
    second.stop()
    tagged = [p for p in parse_lines("\n".join(second.points())) if p.tags["node_id"] == "116"]
    assert {p.tags.get("barcode") for p in tagged} == {"4-9A57A2L"}


def test_a_crash_loop_backs_off_instead_of_storming(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    run = start_plugin(
        tmp_path,
        {
            "command": fake_observe("--starts", str(starts), "--stderr", "panicked", "--exit", "3"),
            "restart_delay": "200ms",
            "restart_backoff_max": "1600ms",
            "interval": "20ms",
        },
    )
    run.wait_for(lambda: starts.exists() and len(starts.read_text().split()) >= 5, timeout=20)
    run.stop()
    times = [float(t) for t in starts.read_text().split()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 200 ms doubling (+-10 % jitter, plus start-up time): 0.2, 0.4, 0.8, 1.6 s.
    for gap, nominal in zip(gaps[:4], (0.2, 0.4, 0.8, 1.6), strict=False):
        assert nominal * 0.85 <= gap <= nominal * 1.1 + 0.6, gaps
    assert gaps[3] >= 1.3
    # Logged once, not once per exit; the child's panic line relayed at error level once.
    stopped = [line for line in run.stderr if "taptap stopped" in line]
    assert len(stopped) == 1 and stopped[0].startswith("W!")
    assert "exit status 3" in stopped[0] and "panicked" in stopped[0]
    assert len([line for line in run.log("E!") if "taptap: panicked" in line]) == 1


def test_a_child_that_ran_long_enough_restarts_after_the_initial_delay(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    run = start_plugin(
        tmp_path,
        {
            "command": fake_observe("--starts", str(starts), "--hold", "0.5"),
            "restart_delay": "200ms",
            "restart_backoff_max": "10s",
            "stable_after": "300ms",
            "interval": "20ms",
        },
    )
    run.wait_for(lambda: starts.exists() and len(starts.read_text().split()) >= 4, timeout=20)
    run.stop()
    times = [float(t) for t in starts.read_text().split()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Each run lasts 0.5 s >= stable_after, so every restart waits only the initial 200 ms.
    assert all(0.6 <= gap <= 1.2 for gap in gaps[:3]), gaps


def test_silence_is_logged_once_as_stale_and_once_when_reports_return(tmp_path: Path) -> None:
    run = start_plugin(
        tmp_path,
        {
            "command": fake_observe(
                str(SAMPLES), "--pause-after", "2", "--pause", "2.5", "--hold", "30"
            ),
            "stale_after": "1s",
            "status_interval": "1h",
        },
    )
    run.wait_for(lambda: len(run.points()) == 8)
    run.stop()
    stale = [line for line in run.stderr if "no power report for" in line]
    back = [line for line in run.stderr if "power reports arrive again" in line]
    assert len(stale) == 1 and stale[0].startswith("W!")
    assert len(back) == 1 and back[0].startswith("I!")
    assert any(s["stale"] is True for s in run.status())
    assert run.status()[0]["stale"] is False


def test_bad_lines_are_counted_and_skipped_and_good_ones_still_flow(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.jsonl"
    good = SAMPLES.read_text().splitlines()
    bad = [
        "garbage",
        good[0][:40],
        '{"event_type":"topology_report"}',
        good[1].replace('"rssi":132', '"rssi":"x"'),
        "x" * 200_000,
        good[2].replace('"voltage_out":30.2', '"voltage_out":0.0'),
    ]
    mixed.write_text("\n".join([good[0], *bad, good[1]]) + "\n" + good[3][:50])
    run = start_plugin(
        tmp_path, {"command": fake_observe(str(mixed), "--hold", "30"), "max_line_bytes": 4096}
    )
    run.wait_for(lambda: len(run.points()) == 3)
    run.stop()
    expected = EXPECTED.read_text().splitlines()
    assert run.points()[0] == expected[0] and run.points()[2] == expected[1]
    assert "current_out_a" not in run.points()[1]
    for reason in ("not_json", "unknown_event_type", "invalid_report", "line_too_long"):
        assert any(reason in line for line in run.log("W!")), reason
    summary = next(line for line in run.stderr if "skip/sanitise counts at exit" in line)
    assert "'not_json': 2" in summary and "'line_too_long': 1" in summary
    assert "'truncated_line': 1" in summary


def test_missing_binary_is_explained_once_and_the_plugin_keeps_running(tmp_path: Path) -> None:
    run = start_plugin(
        tmp_path,
        {"taptap": str(tmp_path / "no-taptap"), "tcp": "127.0.0.1", "restart_delay": "100ms"},
    )
    run.wait_for(lambda: any("was not found" in line for line in run.stderr))
    threading.Event().wait(1.0)
    assert run.proc.poll() is None
    assert run.stop() == 0
    (line,) = [line for line in run.stderr if "was not found" in line]
    assert line.startswith("E!") and "cargo install taptap --locked" in line


def test_missing_serial_port_lists_the_stable_names(tmp_path: Path) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    message = serial_port_problem("/dev/serial/by-id/usb-FTDI-gone", by_id)
    assert message is not None and "none (is the RS485 adapter plugged in?)" in message
    (by_id / "usb-FTDI_FT232R-if00-port0").symlink_to("/dev/null")
    message = serial_port_problem("/dev/serial/by-id/usb-FTDI-gone", by_id)
    assert message is not None and str(by_id / "usb-FTDI_FT232R-if00-port0") in message
    assert serial_port_problem("/dev/null", by_id) is None


def test_unreadable_serial_port_names_the_group_to_join(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root, who may open anything: the permission answer is simulated here.
    monkeypatch.setattr("os.access", lambda *_args, **_kw: False)
    message = serial_port_problem("/dev/null", tmp_path)
    assert message is not None and "sudo usermod -aG" in message and "restart Telegraf" in message


def test_missing_serial_port_in_the_plugin_is_logged_once(tmp_path: Path) -> None:
    run = start_plugin(
        tmp_path,
        {"taptap": "sh", "serial": "/dev/serial/by-id/usb-gone", "restart_delay": "100ms"},
    )
    run.wait_for(lambda: any("does not exist" in line for line in run.stderr))
    threading.Event().wait(0.8)
    run.stop()
    assert len([line for line in run.stderr if "does not exist" in line]) == 1


def test_config_needs_exactly_one_source_of_bytes(tmp_path: Path) -> None:
    run = start_plugin(tmp_path, {"serial": "/dev/ttyUSB0", "tcp": "10.0.0.1"})
    assert run.proc.wait(15) == 2
    run.stop()
    assert any("exactly one of" in line for line in run.log("E!"))


def test_status_point_reports_the_counters(tmp_path: Path) -> None:
    run = start_plugin(
        tmp_path,
        {"command": fake_observe(str(SAMPLES), "--hold", "30"), "status_interval": "1s"},
    )
    run.wait_for(lambda: any(s.get("reports") == 8 for s in run.status()), timeout=20)
    run.stop()
    last = run.status()[-1]
    assert last["running"] is True and last["restarts"] == 0 and last["skipped_lines"] == 0
    assert isinstance(last["last_report_age_s"], float)
    (point,) = parse_lines(run.points("taptap_status")[-1])
    assert point.tags == {"src": "tigo", "source": "taptap"}
    assert point.time_ns is not None and point.time_ns % 1_000_000_000 == 0


def test_a_full_queue_holds_the_reader_instead_of_dropping() -> None:
    stop = threading.Event()
    queue = EventQueue(2, stop)
    report = PowerReport(1, 2, 3, 1.0, 1.0, 1.0, 1.0, 1.0, 1)
    queue.put(report)
    queue.put(report)
    third = threading.Thread(target=queue.put, args=(report,))
    third.start()
    third.join(0.3)
    assert third.is_alive() and len(queue) == 2
    assert len(queue.take(1)) == 1
    third.join(2)
    assert not third.is_alive() and len(queue) == 2
