"""The one reader of InfluxDB 2's annotated CSV (the answer format of ``/api/v2/query``).

Why one: the monitoring queries, the per-device queries and the admin backend's read-backs all
read Flux answers; the format's corners (several tables, ``#default`` cells, the error table a
query that fails mid-answer writes) are handled here once. Streamed: one row in memory at a time.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from telegraf_bridge.cli.influx.transport import SinkError


def annotated_rows(
    lines: Iterable[str], sink: str = ""
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """Rows of an InfluxDB 2 (annotated) CSV answer: ``({column: text}, {column: datatype})``.

    Handles several tables with their own annotation and header rows, blank separator lines,
    ``#default`` cells, answers without annotations (every datatype then ``string``), and the
    error table (columns ``error``, ``reference``) that the server writes when a query fails
    after the answer has started.
    """
    header: list[str] | None = None
    defaults: list[str] = []
    datatypes: list[str] = []
    for row in csv.reader(lines):
        if not row or all(cell == "" for cell in row):
            header, defaults, datatypes = None, [], []
            continue
        if row[0].startswith("#"):
            if row[0] == "#default":
                defaults = row
            elif row[0] == "#datatype":
                datatypes = row
            header = None
            continue
        if header is None:
            header = row
            continue
        record: dict[str, str] = {}
        kinds: dict[str, str] = {}
        for index, name in enumerate(header):
            if not name:
                continue
            cell = row[index] if index < len(row) else ""
            if cell == "" and index < len(defaults):
                cell = defaults[index]
            record[name] = cell
            kinds[name] = datatypes[index] if index < len(datatypes) else "string"
        if "error" in record and "_value" not in record and "_time" not in record:
            raise SinkError("query_failed", f"sink {sink!r}: {record['error']}")
        yield record, kinds


def parse_annotated_csv(lines: Iterable[str], sink: str = "") -> Iterator[dict[str, str]]:
    """Records of an annotated CSV answer as ``{column: text}`` (numbers and booleans as text)."""
    for record, _kinds in annotated_rows(lines, sink):
        yield record


def _flux_value(cell: str, datatype: str) -> Any:
    """A CSV cell as the Python value its ``#datatype`` annotation declares."""
    if datatype == "double":
        return float(cell)
    if datatype in ("long", "unsignedLong"):
        return int(cell)
    if datatype == "boolean":
        return cell == "true"
    return cell


def typed_annotated_csv(lines: Iterable[str], sink: str = "") -> Iterator[dict[str, object]]:
    """Records of an annotated CSV answer with values typed by each table's ``#datatype``.

    :func:`annotated_rows` with a ``double`` as a float, a ``long`` as an int and a ``boolean``
    as a bool, so a string field "12" stays a string. An empty cell of a typed column is a null
    and left out of the record.
    """
    for texts, kinds in annotated_rows(lines, sink):
        record: dict[str, object] = {}
        for name, cell in texts.items():
            kind = kinds[name]
            if cell == "" and kind != "string":
                continue
            try:
                record[name] = _flux_value(cell, kind)
            except ValueError:
                raise SinkError(
                    "query_failed", f"sink {sink!r}: a {kind} cell holds {cell[:40]!r}"
                ) from None
        yield record
