"""bridge-cli migrate-ndjson: array files become NDJSON safely, idempotently, in bounded memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.ndjson_migration import NotMigratable, iter_array, migrate

RECORDS = [
    {
        "timestamp": "2025-05-25T23:13:07.914587+00:00",
        "device_name": "SmartSolar ☀",
        "parsed_data": {"battery_voltage": 12.34},
    },
    {"timestamp": "2025-05-25T23:14:07+00:00", "n": 1e-7, "s": 'a,b\n"c"', "nested": {"x": [1, 2]}},
]


def test_array_becomes_ndjson_with_backup(tmp_path: Path) -> None:
    src = tmp_path / "data_2025-05-25.json"
    src.write_text(json.dumps(RECORDS, indent=2))
    result = CliRunner().invoke(cli, ["migrate-ndjson", str(src)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "data_2025-05-25.ndjson"
    assert [json.loads(x) for x in out.read_text().splitlines()] == RECORDS
    assert (tmp_path / "data_2025-05-25.json.bak").exists() and not src.exists()
    assert "migrated" in result.output and "2 records" in result.output


def test_running_twice_is_harmless(tmp_path: Path) -> None:
    src = tmp_path / "data.ndjson"  # the seed's case: an array in a .ndjson file
    src.write_text(json.dumps(RECORDS))
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate-ndjson", str(src)]).exit_code == 0
    first = src.read_text()
    again = runner.invoke(cli, ["migrate-ndjson", str(src)])
    assert again.exit_code == 0 and "already NDJSON" in again.output
    assert src.read_text() == first


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "element 0 is a int, not an object"),
        ('[{"a": 1}, {"b": ', "not valid JSON"),
        ('[{"a": 1}', "not closed"),
        ('"text"', "neither a JSON array nor NDJSON"),
        ("", "empty file"),
        ('[{"a": 1}] trailing', "unexpected data after"),
    ],
)
def test_files_it_does_not_understand_are_refused_untouched(
    tmp_path: Path, content: str, message: str
) -> None:
    src = tmp_path / "x.json"
    src.write_text(content)
    result = CliRunner().invoke(cli, ["migrate-ndjson", str(src)])
    assert result.exit_code == 1
    assert message in result.output
    assert src.read_text() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"], "no partial output left behind"


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps(RECORDS))
    (tmp_path / "x.ndjson").write_text("mine\n")
    with pytest.raises(NotMigratable, match="already exists"):
        migrate(tmp_path / "x.json")
    assert (tmp_path / "x.ndjson").read_text() == "mine\n"


def test_large_file_streams_in_chunks(tmp_path: Path) -> None:
    src = tmp_path / "big.json"
    count = 60_000
    with src.open("w") as handle:
        handle.write("[\n")
        for i in range(count):
            handle.write(
                json.dumps({"i": i, "v": i / 7, "pad": "y" * 40})
                + (",\n" if i < count - 1 else "\n")
            )
        handle.write("]\n")
    progressed: list[int] = []
    seen = sum(1 for _ in iter_array(src, progressed.append))
    assert seen == count
    assert len(progressed) > 3, "read in several chunks, not at once"
    outcome = migrate(src)
    assert outcome.records == count
