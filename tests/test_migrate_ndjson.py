"""bridge-cli migrate-ndjson: array files become NDJSON safely, idempotently, in bounded memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from telegraf_bridge.cli.main import cli
from telegraf_bridge.cli.ndjson_migration import NotMigratable, iter_array, migrate
from telegraf_bridge.plugins.common._clock import DEFAULT_TIME_FLOOR

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


# -- over a whole directory, again and again ------------------------------------------------------


def _tree(root: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(root.iterdir())}


def test_rerunning_over_a_directory_skips_its_own_backups_and_outputs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.json").write_text(json.dumps(RECORDS))
    (data / "b.ndjson").write_text(json.dumps(RECORDS))  # the seed's case: an array in .ndjson
    (data / "c.ndjson").write_text('{"timestamp": 1}\n')  # NDJSON already
    runner = CliRunner()

    def run_glob() -> Result:
        return runner.invoke(cli, ["migrate-ndjson", *sorted(str(p) for p in data.iterdir())])

    first = run_glob()
    assert first.exit_code == 0, first.output
    assert "2 migrated, 1 skipped, 0 refused" in first.output
    after_first = _tree(data)
    assert sorted(after_first) == ["a.json.bak", "a.ndjson", "b.ndjson", "b.ndjson.bak", "c.ndjson"]
    for _ in range(2):
        again = run_glob()
        assert again.exit_code == 0, again.output
        assert "0 migrated, 5 skipped, 0 refused" in again.output
        assert (
            f"skip {data / 'a.json.bak'}: the backup of a.json, already migrated to a.ndjson"
            in (again.output)
        )
        assert f"skip {data / 'b.ndjson.bak'}: the backup of b.ndjson" in again.output
        assert f"skip {data / 'a.ndjson'}: already NDJSON" in again.output
        assert _tree(data) == after_first, "no *.json.ndjson, no *.bak.bak"


def test_backups_and_temporary_files_are_never_converted(tmp_path: Path) -> None:
    lone = tmp_path / "old.json.bak.bak"
    lone.write_text(json.dumps(RECORDS))
    temp = tmp_path / "x.ndjson.migrating"
    temp.write_text(json.dumps(RECORDS))
    result = CliRunner().invoke(cli, ["migrate-ndjson", str(lone), str(temp), str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "backups are never converted (rename it to old.json to convert it)" in result.output
    assert "the temporary file of an interrupted migration" in result.output
    assert f"skip {tmp_path}: a directory" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [lone.name, temp.name]


# -- what ndjson_tail will skip, on the console -----------------------------------------------------

OLD = {"timestamp": "1999-12-31T23:59:59Z", "parsed_data": {"v": 1.5}}
NEW = {"timestamp": "2026-02-01T00:00:00Z", "parsed_data": {"v": 2.5}}


def test_records_ndjson_tail_would_skip_are_counted_with_the_fix(tmp_path: Path) -> None:
    src = tmp_path / "history.json"
    records = [OLD, OLD, OLD, NEW, {"parsed_data": {"v": 1.0}}, {"timestamp": NEW["timestamp"]}]
    src.write_text(json.dumps(records))
    result = CliRunner().invoke(cli, ["migrate-ndjson", str(src)])
    assert result.exit_code == 0, result.output
    assert f"(ndjson_tail's defaults, time_floor {DEFAULT_TIME_FLOOR}) will write 1 of 6" in (
        result.output
    )
    assert (
        f"3 record(s) stamped before agent.time_floor {DEFAULT_TIME_FLOOR} would be skipped; "
        "set agent.time_floor earlier to keep them"
    ) in result.output
    assert "1 record(s) without a 'timestamp' key would be skipped; set the source's " in (
        result.output
    )
    assert "1 record(s) with none of the field containers parsed_data would be skipped" in (
        result.output
    )


def test_the_configs_time_floor_and_source_options_decide(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "h.json").write_text(json.dumps([OLD, NEW, {"time": 1_700_000_000, "readings": {}}]))
    config = tmp_path / "bridge.yaml"
    config.write_text(
        "agent:\n  time_floor: '1990-01-01T00:00:00Z'\nsources:\n"
        f"  - name: solar\n    plugin: ndjson_tail\n    options:\n"
        f"      files: ['{data}/*.ndjson']\n      field_containers: [parsed_data, readings]\n"
        "sinks:\n  - {name: local, type: file, path: out.lp}\n"
    )
    result = CliRunner().invoke(
        cli, ["migrate-ndjson", "--config", str(config), str(data / "h.json")]
    )
    assert result.exit_code == 0, result.output
    assert "(source solar, time_floor 1990-01-01T00:00:00Z) will write 2 of 3 records:" in (
        result.output
    )
    assert "1 record(s) without a 'timestamp' key" in result.output
    assert "time_floor 1990" in result.output and "stamped before" not in result.output
    config.write_text("agent:\n  time_floor: nonsense\n")
    bad = CliRunner().invoke(
        cli, ["migrate-ndjson", "--config", str(config), str(data / "h.ndjson")]
    )
    assert bad.exit_code == 1 and "time_floor" in bad.output


def test_a_clean_file_says_every_record_arrives(tmp_path: Path) -> None:
    src = tmp_path / "new.json"
    src.write_text(json.dumps([NEW, NEW]))
    result = CliRunner().invoke(cli, ["migrate-ndjson", str(src)])
    assert result.exit_code == 0, result.output
    assert "will read all 2 records" in result.output
