"""The JSON answer of InfluxDB 1.x's ``/query``, typed once where it is read.

Why: the client's queries, the device queries, preflight and the admin backend all walk the same
``results -> series -> columns/values`` shape. Reading it here, with every value's type checked,
means a server that answers an odd shape gives empty results instead of a ``TypeError`` deep in a
command, and the callers get named, typed fields.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Series:
    """One series of a statement's result: its name, tags, columns and rows."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[object]]

    def rows(self) -> list[dict[str, object]]:
        """Each row as ``{column: value}``."""
        return [dict(zip(self.columns, row, strict=False)) for row in self.values]


@dataclass(frozen=True)
class StatementResult:
    """The result of one statement of a query (statements are separated by ``;``)."""

    statement_id: int
    series: list[Series]
    error: str


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _series(raw: object) -> Series:
    doc = raw if isinstance(raw, dict) else {}
    tags = doc.get("tags")
    return Series(
        name=str(doc.get("name") or ""),
        tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {},
        columns=[str(c) for c in _list(doc.get("columns"))],
        values=[row for row in _list(doc.get("values")) if isinstance(row, list)],
    )


def statement_result(raw: object) -> StatementResult:
    """One entry of ``results``, typed; a value of the wrong type reads as absent."""
    doc = raw if isinstance(raw, dict) else {}
    statement_id = doc.get("statement_id")
    return StatementResult(
        statement_id=statement_id if isinstance(statement_id, int) else 0,
        series=[_series(s) for s in _list(doc.get("series"))],
        error=str(doc.get("error") or ""),
    )


def results_of(doc: object) -> list[StatementResult]:
    """Every statement result of one answer document (``{"results": [...]}``)."""
    results = doc.get("results") if isinstance(doc, dict) else None
    return [statement_result(r) for r in _list(results)]
