"""The IoTFlow Grafana dashboards: their JSON, and every query they send, run for real.

- Structure (both files): valid JSON importable by Grafana 10/11 (schemaVersion 39, a uid),
  unique panel ids, a ``datasource`` variable every panel and query variable uses, a query in
  every panel, every ``$variable`` defined, and each variable interpolated with the format its
  language needs (InfluxQL: ``regex`` inside ``/^...$/``; SQL: ``sqlstring`` for literals, ``raw``
  only inside a double-quoted identifier or an INTERVAL string).
- InfluxQL, on the real InfluxDB 1.x and the real InfluxDB 2.x (through its mapping of the
  bucket as a database, as Grafana's InfluxQL source queries 2.x): points shaped like the
  iotflow plugin writes them (two telemetry types, three devices, float, string and boolean
  fields, one device without a registry type, one device id that a regex dot would confuse with
  another, and an unrelated measurement) go into a fresh database (bucket). Every
  template-variable query and every panel query is interpolated as Grafana does
  (``_interpolate``: the variable formats, ``$timeFilter``, ``$__interval``) and run against
  each server; the answers must hold the expected devices and values. The status table is
  checked after the panel's own ``groupBy`` transformation and value mappings, read from the JSON.
- SQL: the InfluxDB 3 fake (FakeInfluxV3) evaluates only the few query shapes bridge-cli sends,
  not GROUP BY, window functions or information_schema, so it cannot run these queries. Instead
  every SQL query is (1) always checked to tokenize sensibly after interpolation (balanced quotes
  and parentheses, one SELECT ... FROM statement, no variable or macro left), and (2) executed on
  Apache DataFusion, the engine InfluxDB 3 runs SQL on, over tables laid out as InfluxDB 3 lays
  them out (schema ``iox``, tags as dictionary strings, ``time`` as a naive ns timestamp), with
  the same expectations as the InfluxQL run. (2) needs the ``datafusion`` package and is skipped,
  saying so, where it is not installed; it is not a test of InfluxDB 3 itself.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _support import REPO
from rig import InfluxD1, InfluxD2

from telegraf_bridge.testing import ParsedPoint, parse_lines

DASHBOARDS = REPO / "plugins" / "iotflow" / "dashboards"
INFLUXQL = DASHBOARDS / "iotflow-influxql.json"
SQL = DASHBOARDS / "iotflow-sql.json"
MINUTE_NS = 60_000_000_000
BUILTINS = {"timeFilter", "__interval", "__interval_ms"}

InfluxQL = Callable[[str], list[dict[str, Any]]]  # a query -> the series of its first result

# The panels every dashboard has, by title prefix.
PANEL_KINDS = (("Device status", "table"), ("Latest values", "table"))


# --------------------------------------------------------------------------- Grafana emulation


@dataclass(frozen=True)
class Selection:
    """A variable's current value as Grafana holds it: one value, several, or All."""

    values: tuple[str, ...]
    multi: bool = False
    all_value: str | None = None  # the variable's custom "All" value
    is_all: bool = False


def _regex_escape(value: str) -> str:
    """Grafana's kbn.regexEscape."""
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


def _format(name: str, sel: Selection, fmt: str | None) -> str:
    """One variable formatted as Grafana's format registry does (the formats used here)."""
    if sel.is_all and sel.all_value is not None:
        return sel.all_value  # Grafana does not format a custom All value
    values = list(sel.values)
    if fmt == "regex":
        escaped = [_regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "sqlstring":
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)
    if fmt == "raw":
        return ",".join(values)
    if fmt is None and not sel.multi and len(values) == 1:
        return values[0]
    raise AssertionError(f"${name} used with format {fmt!r}: name a format for this variable")


_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


def _interpolate(
    query: str, selections: Mapping[str, Selection], builtins: Mapping[str, str]
) -> str:
    """A query as Grafana sends it; an unknown variable fails the test."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name in builtins:
            return builtins[name]
        if name not in selections:
            raise AssertionError(f"${name} in {query!r} is not a dashboard variable")
        return _format(name, selections[name], match.group(2))

    return _VARIABLE.sub(one, query)


def _sql_macros(query: str, start: datetime, end: datetime) -> str:
    """The SQL macros as the InfluxDB datasource's backend expands them (SDK sqlutil)."""
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    return query.replace(
        "$__timeFilter(time)",
        f"time >= '{start.strftime(stamp)}' AND time <= '{end.strftime(stamp)}'",
    )


def _mapped_text(mappings: list[dict[str, Any]], value: float | None) -> str | None:
    """The text Grafana's value mappings give a cell (value, range and null mappings)."""
    for mapping in mappings:
        options = mapping["options"]
        if mapping["type"] == "value" and value is not None:
            hit = options.get(str(int(value)) if float(value).is_integer() else str(value))
            if hit:
                return str(hit["text"])
        in_range = value is not None and options.get("from", 0) <= value <= options.get("to", 0)
        if mapping["type"] == "range" and in_range:
            return str(options["result"]["text"])
        if mapping["type"] == "special" and value is None and options["match"] == "null":
            return str(options["result"]["text"])
    return None


def _group_by(rows: list[dict[str, Any]], options: dict[str, Any]) -> list[dict[str, Any]]:
    """Grafana's groupBy transformation (groupby keys; max/sum aggregations, nulls ignored)."""
    fields = options["fields"]
    keys = [name for name, spec in fields.items() if spec["operation"] == "groupby"]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    out = []
    for key, members in groups.items():
        result: dict[str, Any] = dict(zip(keys, key, strict=True))
        for name, spec in fields.items():
            if spec["operation"] != "aggregate":
                continue
            values = [m[name] for m in members if m.get(name) is not None]
            for aggregation in spec["aggregations"]:
                if aggregation not in ("max", "sum"):
                    raise AssertionError(f"groupBy aggregation {aggregation} is not emulated")
                total = (max(values) if aggregation == "max" else sum(values)) if values else None
                result[f"{name} ({aggregation})"] = total
        out.append(result)
    return out


def _renamed(row: Mapping[str, Any], panel: dict[str, Any]) -> dict[str, Any]:
    """A row after the panel's organize transformation's renames."""
    organize = next(t for t in panel["transformations"] if t["id"] == "organize")
    names = organize["options"]["renameByName"]
    return {names.get(k, k): v for k, v in row.items()}


def _override(panel: dict[str, Any], field: str, prop: str) -> Any:
    for override in panel["fieldConfig"]["overrides"]:
        if override["matcher"] == {"id": "byName", "options": field}:
            for item in override["properties"]:
                if item["id"] == prop:
                    return item["value"]
    raise AssertionError(f"{panel['title']}: no {prop} override for {field}")


# --------------------------------------------------------------------------- the dashboards


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def _variables(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in doc["templating"]["list"]}


def _panel(doc: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(p for p in doc["panels"] if p["title"].startswith(prefix))


def _queries(doc: dict[str, Any], key: str) -> Iterable[tuple[str, str]]:
    """(where, text) of every query: template variables, then panel targets."""
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            yield f"variable {var['name']}", var["query"]
    for panel in doc["panels"]:
        for target in panel["targets"]:
            yield f"panel {panel['title']!r}", target[key]


@pytest.mark.parametrize(
    ("path", "key", "uid"),
    [(INFLUXQL, "query", "tb-iotflow-influxql"), (SQL, "rawSql", "tb-iotflow-sql")],
    ids=["influxql", "sql"],
)
def test_dashboard_structure(path: Path, key: str, uid: str) -> None:
    doc = _load(path)
    assert doc["uid"] == uid
    assert doc["schemaVersion"] == 39  # as the bundle's other dashboards: Grafana 10 and 11
    assert doc["title"] and "iotflow" in doc["tags"] and "telegraf-bridge" in doc["tags"]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)

    variables = _variables(doc)
    assert next(iter(variables)) == "datasource"
    assert variables["datasource"] == {
        "name": "datasource",
        "label": "InfluxDB",
        "type": "datasource",
        "query": "influxdb",
    }
    assert variables["device"]["multi"] and variables["device"]["includeAll"]
    assert not variables["measurement"]["multi"]  # a panel reads one telemetry type
    assert variables["offline_after"]["type"] == "custom"
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"] == {"type": "influxdb", "uid": "${datasource}"}, var

    for kind_title, kind in PANEL_KINDS:
        assert _panel(doc, kind_title)["type"] == kind
    assert any(p["type"] == "timeseries" for p in doc["panels"])

    used = _check_panels(doc, key)
    for _, text in _queries(doc, key):
        used |= {m.group(1) or m.group(3) for m in _VARIABLE.finditer(text)}
    used -= BUILTINS | {"__timeFilter"}
    assert used <= set(variables), used - set(variables)
    assert set(variables) - {"datasource"} <= used, "a variable no query uses"
    _check_variable_formats(doc, key)


def _check_panels(doc: dict, key: str) -> set[str]:
    """Every panel's data source, position and targets; the variables its texts use."""
    used: set[str] = set()
    for panel in doc["panels"]:
        assert panel["datasource"] == {"type": "influxdb", "uid": "${datasource}"}, panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target[key].strip(), panel["title"]
            if key == "query":
                assert target["rawQuery"] is True
                assert target["resultFormat"] in ("table", "time_series")
            else:
                assert target["format"] == "table" and target["language"] == "sql"
                assert "$__timeFilter(time)" in target[key], panel["title"]
        texts = [panel["title"], panel.get("description", "")]
        texts += [t[key] for t in panel["targets"]]
        used |= {m.group(1) or m.group(3) for t in texts for m in _VARIABLE.finditer(t)}
    return used


def _check_variable_formats(doc: dict, key: str) -> None:
    """Identifiers and values are data: each use names the format that quotes it."""
    for where, text in _queries(doc, key):
        for match in _VARIABLE.finditer(text):
            name, fmt = match.group(1) or match.group(3), match.group(2)
            if name in BUILTINS or name == "__timeFilter":
                continue
            if key == "query":
                if fmt == "regex":
                    before, after = text[: match.start()], text[match.end() :]
                    assert before.endswith("/^") and after.startswith("$/"), where
                else:
                    assert (name, fmt) == ("offline_after", "raw"), (where, match.group(0))
            elif fmt == "raw":
                quoted = text[match.start() - 1] + text[match.end()]
                assert quoted == '""' or (name == "offline_after" and quoted == "''"), where
            else:
                assert fmt == "sqlstring", (where, match.group(0))


def test_status_panels_map_recent_points_to_online_and_offline() -> None:
    for path in (INFLUXQL, SQL):
        status = _panel(_load(path), "Device status")
        mappings = _override(status, "Status", "mappings")
        assert _mapped_text(mappings, 0) == "OFFLINE"
        assert _mapped_text(mappings, None) == "OFFLINE"
        assert _mapped_text(mappings, 1) == "ONLINE"
        assert _mapped_text(mappings, 250) == "ONLINE"
        assert _override(status, "Last seen", "unit") == "dateTimeFromNow"


# --------------------------------------------------------------------------- the data


def _points(now_ns: int) -> str:
    """Line protocol as the iotflow plugin writes it (registry tags, topic on MQTT only)."""

    def ago(minutes: int) -> int:
        return now_ns - minutes * MINUTE_NS

    office = (
        "device_id=esp32_001,device_name=Office\\ Sensor,device_type=sensor,location=office,"
        "topic=iotflow/devices/esp32_001/telemetry/"
    )
    garage = "device_id=esp32_002,device_name=Garage\\ Door,device_type=actuator,location=garage"
    # No device_type in the registry: the plugin leaves the tag out (no empty tag values). The
    # id differs from esp32_001 only where a regex dot would match anything.
    lab = "device_id=esp32.001,device_name=Lab\\ Node\\ (v2),location=lab"
    return "\n".join(
        [
            f"environmental,{office}environmental temperature=24.5,humidity=60,battery_level=85 {ago(50)}",
            f"environmental,{office}environmental temperature=25,humidity=61,battery_level=84 {ago(2)}",
            f'environmental,{garage} door_open=true,status="opening",temperature=11.5 {ago(40)}',
            f'environmental,{garage} door_open=false,status="closed",temperature=12 {ago(20)}',
            f"temperature,{office}temperature value=22.5 {ago(1)}",
            f"temperature,{lab} value=19 {ago(180)}",
            f"tigo_power_report,gateway_id=4609,node_id=19 power_w=100 {ago(5)}",
        ]
    )


def _write_influxd(influxd: InfluxD1, db: str, body: str) -> None:
    influxd.query(f'CREATE DATABASE "{db}"', method="POST")
    request = urllib.request.Request(
        f"{influxd.url}/write?db={db}&precision=ns", data=body.encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def _rows(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """InfluxQL series as Grafana's table format flattens them: tags folded in, ``time`` named Time."""
    out = []
    for s in series:
        columns = ["Time" if c == "time" else c for c in s["columns"]]
        for values in s["values"]:
            out.append({**s.get("tags", {}), **dict(zip(columns, values, strict=True))})
    return out


def _metric_find(query: str, series: list[dict[str, Any]]) -> list[str]:
    """A query variable's options as Grafana's InfluxQL response parser derives them."""
    column = 1 if query.upper().startswith("SHOW TAG VALUES") else 0
    return sorted({v[column] for s in series for v in s["values"]})


# Expected per device over the default 24 h range with offline_after = 5 minutes.
STATUS_ALL_TYPES: dict[str, dict[str, Any]] = {
    "esp32_001": {"name": "Office Sensor", "type": "sensor", "where": "office", "points": 3,
                  "recent": 2, "seen": 1, "status": "ONLINE"},
    "esp32_002": {"name": "Garage Door", "type": "actuator", "where": "garage", "points": 2,
                  "recent": 0, "seen": 20, "status": "OFFLINE"},
    "esp32.001": {"name": "Lab Node (v2)", "type": "", "where": "lab", "points": 1,
                  "recent": 0, "seen": 180, "status": "OFFLINE"},
}  # fmt: skip


def _influxql_server(kind: str, request: pytest.FixtureRequest, body: str) -> InfluxQL:
    """``body`` written to a fresh database; InfluxQL against it.

    v1: a database of the real InfluxDB 1.x. v2: a bucket of a fresh organization of the real
    InfluxDB 2.x, queried as Grafana's InfluxQL data source does on 2.x: database = the bucket's
    name (InfluxDB's own mapping of a bucket), with a read token of that organization.
    """
    db = f"iotflow_{uuid.uuid4().hex[:8]}"
    if kind == "v1":
        influxd: InfluxD1 = request.getfixturevalue("influxd")
        _write_influxd(influxd, db, body)
        return lambda q: influxd.query(q, db=db)
    server: InfluxD2 = request.getfixturevalue("influxd2")
    org = server.new_org(db)
    server.write(db, body, org=org)
    token = server.create_token([("read", db)], org=org, description="grafana")
    return lambda q: server.influxql(q, db=db, token=token)


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("v1", marks=pytest.mark.influxd),
        pytest.param("v2", marks=pytest.mark.influxd2),
    ],
)
def test_every_influxql_query_runs_against_influxd_with_the_expected_answers(
    kind: str, request: pytest.FixtureRequest
) -> None:
    doc = _load(INFLUXQL)
    variables = _variables(doc)
    now_ns = time.time_ns()
    influxql = _influxql_server(kind, request, _points(now_ns))
    builtins = {"timeFilter": "time >= now() - 24h and time <= now()", "__interval": "1m"}

    def run(query: str, **chosen: Selection) -> list[dict[str, Any]]:
        base = {"offline_after": Selection(("5m",))}
        return influxql(_interpolate(query, {**base, **chosen}, builtins))

    def devices(*ids: str) -> Selection:
        all_value = variables["device"]["allValue"]
        return Selection(ids or ("unused",), multi=True, all_value=all_value, is_all=not ids)

    def fields(*names: str) -> Selection:
        all_value = variables["field"]["allValue"]
        return Selection(names or ("unused",), multi=True, all_value=all_value, is_all=not names)

    env = Selection(("environmental",))

    # Template variables.
    device_q, measurement_q = variables["device"]["query"], variables["measurement"]["query"]
    assert _metric_find(device_q, run(device_q)) == ["esp32.001", "esp32_001", "esp32_002"]
    measurements = run(measurement_q, device=devices())
    assert _metric_find(measurement_q, measurements) == ["environmental", "temperature"]
    only_garage = run(measurement_q, device=devices("esp32_002"))
    assert _metric_find(measurement_q, only_garage) == ["environmental"]
    # The dot is escaped: esp32.001 does not select esp32_001's environmental type.
    only_lab = run(measurement_q, device=devices("esp32.001"))
    assert _metric_find(measurement_q, only_lab) == ["temperature"]
    field_q = variables["field"]["query"]
    assert _metric_find(field_q, run(field_q, measurement=env)) == [
        "battery_level",
        "door_open",
        "humidity",
        "status",
        "temperature",
    ]

    # Device status: every telemetry type, after the panel's groupBy and mappings.
    status = _panel(doc, "Device status")
    status_q = status["targets"][0]["query"]
    group_by = next(t for t in status["transformations"] if t["id"] == "groupBy")
    mappings = _override(status, "Status", "mappings")

    def status_rows(chosen: Selection) -> dict[str, dict[str, Any]]:
        grouped = _group_by(_rows(run(status_q, device=chosen)), group_by["options"])
        return {row["Device"]: row for row in (_renamed(g, status) for g in grouped)}

    table = status_rows(devices())
    assert set(table) == set(STATUS_ALL_TYPES)  # the unrelated measurement is not a device
    for device_id, want in STATUS_ALL_TYPES.items():
        row = table[device_id]
        assert (row["Name"], row["Type"], row["Location"]) == (
            want["name"],
            want["type"],
            want["where"],
        )
        assert row["Points in range"] == want["points"], device_id
        assert (row["Status"] or 0) == want["recent"], device_id
        assert _mapped_text(mappings, row["Status"]) == want["status"], device_id
        assert row["Last seen"] == now_ns - int(want["seen"]) * MINUTE_NS, device_id
    assert set(status_rows(devices("esp32.001"))) == {"esp32.001"}

    # Telemetry: the mean of every numeric field per device; strings and booleans skipped.
    series_q = _panel(doc, "Telemetry")["targets"][0]["query"]
    means: dict[tuple[str, str], set[float]] = {}
    for row in _rows(run(series_q, device=devices(), measurement=env, field=fields())):
        for column, value in row.items():
            if column.startswith("mean_") and value is not None:
                means.setdefault((row["device_id"], column), set()).add(value)
    assert means == {
        ("esp32_001", "mean_temperature"): {24.5, 25.0},
        ("esp32_001", "mean_humidity"): {60.0, 61.0},
        ("esp32_001", "mean_battery_level"): {85.0, 84.0},
        ("esp32_002", "mean_temperature"): {11.5, 12.0},
    }
    picked = run(series_q, device=devices(), measurement=env, field=fields("temperature", "status"))
    assert {c for s in picked for c in s["columns"]} == {"time", "mean_temperature"}

    # Latest values: the newest point of each device with its registry tags.
    latest_q = _panel(doc, "Latest values")["targets"][0]["query"]
    latest = {r["device_id"]: r for r in _rows(run(latest_q, device=devices(), measurement=env))}
    assert set(latest) == {"esp32_001", "esp32_002"}
    office, garage = latest["esp32_001"], latest["esp32_002"]
    assert office["Time"] == now_ns - 2 * MINUTE_NS
    assert (office["temperature"], office["humidity"], office["battery_level"]) == (25, 61, 84)
    assert (office["device_name"], office["location"]) == ("Office Sensor", "office")
    assert office["topic"] == "iotflow/devices/esp32_001/telemetry/environmental"
    assert garage["Time"] == now_ns - 20 * MINUTE_NS
    assert (garage["status"], garage["door_open"], garage["temperature"]) == ("closed", False, 12)
    assert (garage["device_name"], garage["location"]) == ("Garage Door", "garage")


# --------------------------------------------------------------------------- SQL


def _sql_shape(sql: str) -> None:
    """A sensible single SELECT: quotes and parentheses balance, nothing left to interpolate."""
    depth, i, words = 0, 0, []
    while i < len(sql):
        ch = sql[i]
        if ch in "'\"":
            end = i + 1
            while True:
                end = sql.index(ch, end)  # ValueError: an unterminated literal or identifier
                if sql[end + 1 : end + 2] != ch:
                    break
                end += 2  # a doubled quote inside
            i = end + 1
            continue
        assert ch not in "$;{}", f"{ch!r} outside quotes in {sql!r}"
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            assert depth >= 0, sql
        word = re.match(r"[A-Za-z_]\w*", sql[i:])
        if word and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            words.append(word.group(0).upper())
            i += len(word.group(0))
            continue
        i += 1
    assert depth == 0, sql
    assert words[0] == "SELECT" and "FROM" in words, sql


def _sql_context(now: datetime) -> dict[str, Any]:
    start = datetime.fromtimestamp(now.timestamp() - 24 * 3600, tz=UTC)
    return {"start": start, "end": now, "builtins": {"__interval_ms": "60000"}}


def test_every_sql_query_tokenizes_sensibly_after_interpolation() -> None:
    doc = _load(SQL)
    ctx = _sql_context(datetime.now(tz=UTC))
    selections = {
        "measurement": Selection(("environmental",)),
        "device": Selection(("esp32_001", "o'brien"), multi=True),
        "field": Selection(("temperature",)),  # a repeated panel sees one field
        "offline_after": Selection(("5 minutes",)),
    }
    for where, text in _queries(doc, "rawSql"):
        sql = _interpolate(_sql_macros(text, ctx["start"], ctx["end"]), selections, ctx["builtins"])
        try:
            _sql_shape(sql)
        except (AssertionError, ValueError) as exc:
            raise AssertionError(f"{where}: {exc}") from exc
    panel = _panel(doc, "Device status")
    sql = _interpolate(
        _sql_macros(panel["targets"][0]["rawSql"], ctx["start"], ctx["end"]),
        selections,
        ctx["builtins"],
    )
    assert "device_id IN ('esp32_001','o''brien')" in sql  # a quote in a value is doubled


def _datafusion_tables(points: list[ParsedPoint]) -> Any:
    """A DataFusion session holding the points as InfluxDB 3 stores them."""
    datafusion = pytest.importorskip(
        "datafusion",
        reason="datafusion (the SQL engine of InfluxDB 3) is not installed; the SQL dashboard's "
        "queries were only checked for shape",
    )
    import pyarrow as pa

    config = (
        datafusion.SessionConfig()
        .with_information_schema(True)
        .with_default_catalog_and_schema("public", "iox")
    )
    ctx = datafusion.SessionContext(config)
    by_table: dict[str, list[ParsedPoint]] = {}
    for point in points:
        by_table.setdefault(point.measurement, []).append(point)
    for table, rows in by_table.items():
        tags = sorted({k for p in rows for k in p.tags})
        fields = sorted({k for p in rows for k in p.fields})
        columns: dict[str, Any] = {
            "time": pa.array([p.time_ns for p in rows], pa.timestamp("ns")),
        }
        for tag in tags:
            values = pa.array([p.tags.get(tag) for p in rows], pa.string())
            columns[tag] = values.dictionary_encode()  # InfluxDB 3: Dictionary(Int32, Utf8)
        for name in fields:
            sample = next(p.fields[name] for p in rows if name in p.fields)
            kind = {bool: pa.bool_(), float: pa.float64(), int: pa.int64(), str: pa.string()}
            columns[name] = pa.array([p.fields.get(name) for p in rows], kind[type(sample)])
        ctx.register_record_batches(table, [[pa.RecordBatch.from_pydict(columns)]])
    return ctx


def test_every_sql_query_runs_on_datafusion_with_the_expected_answers() -> None:
    now_ns = time.time_ns()
    session = _datafusion_tables(parse_lines(_points(now_ns)))
    import pyarrow as pa  # present wherever datafusion is (its dependency)

    doc = _load(SQL)
    variables = _variables(doc)
    ctx = _sql_context(datetime.fromtimestamp(now_ns / 1e9 + 1, tz=UTC))

    def run(query: str, **chosen: Selection) -> list[dict[str, Any]]:
        chosen = {"offline_after": Selection(("5 minutes",)), **chosen}
        sql = _interpolate(_sql_macros(query, ctx["start"], ctx["end"]), chosen, ctx["builtins"])
        table = session.sql(sql).to_arrow_table()
        for index, column in enumerate(table.schema):  # timestamps as integer ns, exactly
            if pa.types.is_timestamp(column.type):
                table = table.set_column(index, column.name, table[index].cast(pa.int64()))
        rows: list[dict[str, Any]] = table.to_pylist()
        return rows

    def options(name: str, **chosen: Selection) -> list[str]:
        rows = run(variables[name]["query"], **chosen)
        return [next(iter(r.values())) for r in rows]  # the first column, as Grafana reads it

    measurements = options("measurement")
    assert measurements == ["environmental", "temperature"]  # tigo_power_report has no device_id
    expected_status = {
        "environmental": {"esp32_001": (2, 1, 2), "esp32_002": (2, 0, 20)},
        "temperature": {"esp32_001": (1, 1, 1), "esp32.001": (1, 0, 180)},
    }
    status = _panel(doc, "Device status")
    keep = next(t for t in status["transformations"] if t["id"] == "filterFieldsByName")
    mappings = _override(status, "Status", "mappings")
    for table in measurements:
        chosen = {"measurement": Selection((table,))}
        ids = options("device", **chosen)
        assert ids == sorted(expected_status[table])
        chosen["device"] = Selection(tuple(ids), multi=True, is_all=True)
        rows = run(status["targets"][0]["rawSql"], **chosen)
        by_id = {}
        for row in rows:
            shown = {k: v for k, v in row.items() if k in keep["options"]["include"]["names"]}
            by_id[row["device_id"]] = _renamed(shown, status)
        assert set(by_id) == set(expected_status[table])
        for device_id, (points, recent, seen) in expected_status[table].items():
            row = by_id[device_id]
            want = STATUS_ALL_TYPES[device_id]
            assert (row["Name"], row["Location"]) == (want["name"], want["where"])
            assert row.get("Type") == (want["type"] or None)
            assert (row["Points in range"], row["Status"]) == (points, recent), device_id
            assert _mapped_text(mappings, row["Status"]) == ("ONLINE" if recent else "OFFLINE")
            assert row["Last seen"] == now_ns - seen * MINUTE_NS, device_id

    env = {"measurement": Selection(("environmental",))}
    env_devices = Selection(("esp32_001", "esp32_002"), multi=True)
    field_options = options("field", **env)
    assert field_options == ["battery_level", "humidity", "temperature"]  # numeric columns only

    # The repeated time-series panel, once per field as Grafana repeats it.
    series = _panel(doc, "${measurement}")
    assert series["repeat"] == "field"
    means: dict[tuple[str, str], set[float]] = {}
    for name in field_options:
        rows = run(
            series["targets"][0]["rawSql"], **env, device=env_devices, field=Selection((name,))
        )
        for row in rows:
            if row[name] is not None:
                means.setdefault((row["device_id"], name), set()).add(row[name])
    assert means == {
        ("esp32_001", "temperature"): {24.5, 25.0},
        ("esp32_001", "humidity"): {60.0, 61.0},
        ("esp32_001", "battery_level"): {85.0, 84.0},
        ("esp32_002", "temperature"): {11.5, 12.0},
    }

    latest_panel = _panel(doc, "Latest values")
    rows = run(latest_panel["targets"][0]["rawSql"], **env, device=env_devices)
    latest = {r["device_id"]: r for r in rows}
    assert list(latest) == ["esp32_001", "esp32_002"]
    office, garage = latest["esp32_001"], latest["esp32_002"]
    assert (office["temperature"], office["humidity"], office["battery_level"]) == (25, 61, 84)
    assert (office["device_name"], office["location"]) == ("Office Sensor", "office")
    assert (garage["status"], garage["door_open"], garage["temperature"]) == ("closed", False, 12)
    organize = next(t for t in latest_panel["transformations"] if t["id"] == "organize")
    assert set(organize["options"]["excludeByName"]) <= set(office)  # hides a real column

    only_lab = run(status["targets"][0]["rawSql"], measurement=Selection(("temperature",)),
                   device=Selection(("esp32.001",), multi=True))  # fmt: skip
    assert [r["device_id"] for r in only_lab] == ["esp32.001"]
