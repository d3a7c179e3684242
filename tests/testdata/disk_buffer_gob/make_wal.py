"""Write this directory's WAL: 200 points in Telegraf's disk buffer, written by a Telegraf
*without* telegraf/patches/0002 (every record a gob stream), with InfluxDB unreachable.

Usage: .venv/bin/python tests/testdata/disk_buffer_gob/make_wal.py TELEGRAF_BINARY
Writes points.json (what the WAL holds) and wal/ (the output's segment files) next to this file.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/: _disk_buffer, _support, rig

from _disk_buffer import (  # noqa: E402 - after the path to tests/ is set
    COMPACT_RECORD,
    buffered,
    config,
    output_wal,
    points,
    wal_records,
    write_points_file,
)
from rig import TelegrafProcess, free_port, wait_for  # noqa: E402 - as above

COUNT = 200


def points_json(doc: dict[str, Any]) -> str:
    """The points as JSON, one point per line."""
    lines = [json.dumps(p, ensure_ascii=False) for p in doc["points"]]
    types = json.dumps(doc["types"])
    return f'{{"types": {types}, "points": [\n' + ",\n".join(lines) + "\n]}\n"


def main() -> None:
    telegraf = Path(sys.argv[1])
    doc = points(COUNT, "gobwal")
    with tempfile.TemporaryDirectory(prefix="gob-wal-") as tmp_name:
        tmp = Path(tmp_name)
        buffer = tmp / "buffer"
        unreachable = f"http://127.0.0.1:{free_port()}"
        inputs = write_points_file(tmp / "points.json", doc)
        conf = tmp / "telegraf.conf"
        conf.write_text(config(buffer, unreachable, "gobwal", inputs, batch=50))
        with TelegrafProcess(telegraf, conf, tmp / "telegraf"):
            wait_for(lambda: buffered(buffer) == COUNT, timeout=60, what=f"{COUNT} WAL records")
        wal = output_wal(buffer)
        records = wal_records(wal)
        if len(records) != COUNT or any(r[0] == COMPACT_RECORD for r in records):
            sys.exit(
                f"expected {COUNT} gob records, found {len(records)}: use a binary without 0002"
            )
        (HERE / "points.json").write_text(points_json(doc), encoding="utf-8")
        target = HERE / "wal"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        for segment in wal.iterdir():
            shutil.copyfile(segment, target / segment.name)
    print(f"wrote {COUNT} gob records to {target}")


if __name__ == "__main__":
    main()
