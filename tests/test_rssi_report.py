"""bridge-cli rssi-report on the real influxd (v1) and the v2/v3 fakes: ordering, numbers, p95,
--json, --top and the --hours window."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _sink_rig import Backend, ago, backend
from click.testing import CliRunner, Result
from rig import free_port
from telegraf_bridge.cli.commands.rssi_report import NodeStats
from telegraf_bridge.cli.main import cli

__all__ = ["backend"]

pytestmark = pytest.mark.influxd

M = "tigo_power_report"
# node -> RSSI values reported in the last hour
NODES = {
    "n1": list(range(1, 21)),  # 20 reports, mean 10.5, p95 (rank 19) = 19
    "n2": [50, 60, 70, 80, 90],  # 5 reports, mean 70, p95 (rank 5) = 90
    "n3": [30] * 10,  # 10 reports, mean 30, p95 30
}


def seed(backend: Backend) -> None:
    lines = []
    for node, values in NODES.items():
        for i, value in enumerate(values):
            minutes = 1 + i * 2 + int(node[1])  # distinct timestamps within the last hour
            lines.append(
                f"{M},gateway_id=g1,node_id={node} rssi={value}i,power_w=10.5 {ago(minutes)}"
            )
    # Not counted: a report without rssi, another measurement, and one 25 h old (n4).
    lines.append(f"{M},gateway_id=g1,node_id=n1 power_w=99.5 {ago(3)}")
    lines.append(f"other,node_id=n1 rssi=-1i {ago(3)}")
    lines.append(f"{M},gateway_id=g1,node_id=n4 rssi=100i {ago(25 * 60)}")
    backend.write(lines)


def report(backend: Backend, tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["rssi-report", "--config", str(backend.config(tmp_path)), *args],
        catch_exceptions=False,
    )


def test_json_sections_order_and_numbers(backend: Backend, tmp_path: Path) -> None:
    seed(backend)
    result = report(backend, tmp_path, "--hours", "24", "--top", "15", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["nodes"] == 3 and doc["reports"] == 35 and doc["median_count"] == 10
    assert doc["percentile_method"] == "nearest-rank" and doc["tag"] == "node_id"
    assert [r["tag_value"] for r in doc["lowest_counts"]] == ["n2", "n3", "n1"]
    assert [r["tag_value"] for r in doc["best_mean"]] == ["n2", "n3", "n1"]
    assert [r["tag_value"] for r in doc["worst_mean"]] == ["n1", "n3", "n2"]
    rows = {r["tag_value"]: r for r in doc["lowest_counts"]}
    assert rows["n1"] == {
        "tag_value": "n1",
        "count": 20,
        "count_vs_median": 2.0,
        "mean": 10.5,
        "min": 1.0,
        "max": 20.0,
        "p95": 19.0,
    }
    assert rows["n2"]["count"] == 5 and rows["n2"]["mean"] == 70 and rows["n2"]["p95"] == 90
    assert rows["n2"]["count_vs_median"] == 0.5
    assert rows["n3"]["p95"] == 30 and rows["n3"]["min"] == rows["n3"]["max"] == 30


def test_table_and_top(backend: Backend, tmp_path: Path) -> None:
    seed(backend)
    result = report(backend, tmp_path, "--top", "1")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "3 node_id value(s), 35 report(s), median 10 per node_id" in text
    sections = text.split("\n\n")
    assert sections[1].splitlines()[0] == "Lowest report counts (top 1):"
    assert sections[1].splitlines()[2].split() == ["n2", "5", "50%", "70.0", "50", "90", "90"]
    assert sections[2].splitlines()[0] == "Best mean rssi (top 1):"
    assert sections[2].splitlines()[2].split()[0] == "n2"
    assert sections[3].splitlines()[0] == "Worst mean rssi (top 1):"
    assert sections[3].splitlines()[2].split() == ["n1", "20", "200%", "10.5", "1", "20", "19"]
    assert "p95: nearest-rank percentile" in text


def test_hours_window_cuts_off_old_reports(backend: Backend, tmp_path: Path) -> None:
    seed(backend)
    day = json.loads(report(backend, tmp_path, "--hours", "24", "--json").stdout)
    assert "n4" not in {r["tag_value"] for r in day["lowest_counts"]}
    longer = json.loads(report(backend, tmp_path, "--hours", "26", "--json").stdout)
    assert longer["lowest_counts"][0]["tag_value"] == "n4"
    assert longer["best_mean"][0] == {
        "tag_value": "n4",
        "count": 1,
        "count_vs_median": pytest.approx(1 / 7.5, abs=1e-3),
        "mean": 100.0,
        "min": 100.0,
        "max": 100.0,
        "p95": 100.0,
    }


def test_other_measurement_field_and_tag(backend: Backend, tmp_path: Path) -> None:
    seed(backend)
    doc = json.loads(
        report(
            backend,
            tmp_path,
            "--measurement",
            M,
            "--field",
            "power_w",
            "--tag",
            "gateway_id",
            "--json",
        ).stdout
    )
    assert doc["nodes"] == 1 and doc["reports"] == 36
    assert doc["lowest_counts"][0]["tag_value"] == "g1"


def test_no_data_is_an_empty_report(backend: Backend, tmp_path: Path) -> None:
    result = report(backend, tmp_path, "--measurement", "nothing")
    assert result.exit_code == 0
    assert result.stdout.startswith("No nothing.rssi points in the last 24h on sink ")
    doc = json.loads(report(backend, tmp_path, "--measurement", "nothing", "--json").stdout)
    assert doc["nodes"] == 0 and doc["lowest_counts"] == []


def test_unreachable_sink_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "b.yaml"
    config.write_text(
        f"sinks:\n  - name: gone\n    type: influxdb_v1\n    url: http://127.0.0.1:{free_port()}\n"
        "    database: x\n"
    )
    result = CliRunner().invoke(cli, ["rssi-report", "--config", str(config)])
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:" in result.output


@pytest.mark.parametrize(
    ("values", "p95"),
    [
        ([5.0], 5.0),
        ([1.0, 2.0], 2.0),
        (list(map(float, range(1, 101))), 95.0),
        ([3.0, 1.0, 2.0] * 7, 3.0),
    ],
)
def test_nearest_rank_percentile(values: list[float], p95: float) -> None:
    stats = NodeStats()
    for value in values:
        stats.add(value)
    assert stats.percentile(95) == p95
    assert stats.percentile(50) == sorted(values)[max(0, -(-len(values) // 2) - 1)]
