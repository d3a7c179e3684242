"""The v2 fake against the real influxd 2.x: the same requests, the same answers.

FakeInfluxV2 stays for what an OSS server cannot show (InfluxDB Cloud's 429 with Retry-After,
its plan limits, a token shown only once, scripted outages): see its docstring. Wherever both
serve an endpoint, each request here goes to the fake and to a real influxd 2 set up the same
way (organization, bucket ``solar``, operator token), and the answers must agree: the same
status, the same error ``code`` and ``message``, an annotated-CSV answer byte for byte, and for
other JSON bodies every key the fake sends present in the real answer with a value of the same
kind (the real server sends more: ``links``, ``createdAt``, labels...).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from rig import FakeInfluxV2, InfluxD2
from rig.influxd2 import OPERATOR_TOKEN, Reply, http_call

pytestmark = pytest.mark.influxd2

M = "tigo_power_report"


@dataclass
class Pair:
    """The fake and the real server, each with the organization ``org`` and bucket ``solar``."""

    fake: FakeInfluxV2
    real: InfluxD2
    org: str

    def org_id(self, which: str) -> str:
        return self.fake.admin.org_id if which == "fake" else self.real.org_id_of(self.org)

    def both(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        token: str | bool = OPERATOR_TOKEN,
        **kw: Any,
    ) -> tuple[Reply, Reply]:
        """The same request to both; a callable ``body`` gets the side ("fake" or "real")."""
        replies = []
        for which, base in (("fake", self.fake.url), ("real", self.real.url)):
            sent = body(which) if callable(body) else body
            replies.append(http_call(base, method, path, token=token, body=sent, **kw))
        return replies[0], replies[1]


@pytest.fixture
def pair(influxd2: InfluxD2) -> Iterator[Pair]:
    org = influxd2.new_org("solar")
    with FakeInfluxV2(token=OPERATOR_TOKEN, org=org, buckets=("solar",)) as fake:
        yield Pair(fake, influxd2, org)  # type: ignore[arg-type]


def _kind(value: object) -> str:
    return {bool: "bool", int: "number", float: "number", str: "str", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _subshape(fake: object, real: object, where: str = "body") -> list[str]:
    """Where the fake's JSON has a key the real one lacks, or a value of another kind."""
    if isinstance(fake, dict) and isinstance(real, dict):
        problems = []
        for key, value in fake.items():
            if key not in real:
                problems.append(f"{where}.{key}: only the fake sends it")
            else:
                problems += _subshape(value, real[key], f"{where}.{key}")
        return problems
    if isinstance(fake, list) and isinstance(real, list):
        if fake and real:
            return _subshape(fake[0], real[0], f"{where}[0]")
        return [] if not fake and not real else [f"{where}: {len(fake)} vs {len(real)} items"]
    if _kind(fake) != _kind(real):
        return [f"{where}: {_kind(fake)} in the fake, {_kind(real)} in the real one"]
    return []


def _same(fake: Reply, real: Reply, *, exact: bool = False, reason: bool = True) -> None:
    """The fake answers as the real server: status, error code and message, body shape.

    ``reason=False`` compares an error message only up to its last ``": "``: the parser's
    explanation of a bad line is worded differently (the fake's own reader names the part).
    """
    assert fake.status == real.status, (fake, real)
    if not real.body:
        assert not fake.body, fake
        return
    if exact:
        assert fake.body == real.body, (fake.body.decode(), real.body.decode())
        return
    doc_fake, doc_real = fake.json(), real.json()
    if real.status >= 400 and not reason:
        cut = {**doc_real, "message": doc_real["message"].rsplit(": ", 1)[0]}
        assert {**doc_fake, "message": doc_fake["message"].rsplit(": ", 1)[0]} == cut
    elif real.status >= 400:
        assert doc_fake == doc_real, (doc_fake, doc_real)
    else:
        assert _subshape(doc_fake, doc_real) == []


def _write(pair: Pair, lines: str, **params: str) -> tuple[Reply, Reply]:
    return pair.both(
        "POST",
        "/api/v2/write",
        params={"org": pair.org, "bucket": "solar", "precision": "ns", **params},
        data=lines.encode(),
        content_type="text/plain; charset=utf-8",
    )


# -- write ------------------------------------------------------------------------------------------


def test_write_answers(pair: Pair) -> None:
    now = time.time_ns()
    _same(*_write(pair, f"{M},node_id=a rssi=-70i {now}\n"))
    _same(*_write(pair, f"{M},node_id=a rssi=-70i {now}\n", bucket="nope"))
    _same(*_write(pair, f"{M},node_id=a rssi=-70i {now}\n", org="no-such-org"))
    # A type conflict drops the conflicting point and stores the rest (a partial write).
    _same(*_write(pair, f"{M},node_id=a rssi=1.5 {now}\n{M},node_id=c rssi=-5i {now}\n"))
    fake, real = _query(pair, _FLUX)
    _same(fake, real, exact=True)
    assert b",-5,c\r\n" in real.body and b"1.5" not in real.body
    _same(*_write(pair, "m v=1 1 2 3\n"), reason=False)  # not line protocol
    _same(*_write(pair, f"m v=1 {now}\n", precision="xs"))
    fake, real = pair.both(
        "POST",
        "/api/v2/write",
        params={"bucket": "solar"},
        data=b"m v=1",
        content_type="text/plain",
    )
    _same(fake, real)
    fake, real = pair.both(
        "POST",
        "/api/v2/write",
        params={"org": pair.org, "bucket": "solar"},
        data=b"m v=1",
        content_type="text/plain",
        token="not-a-token",
    )
    _same(fake, real)


def test_a_gzip_write_lands_in_both(pair: Pair) -> None:
    fake, real = pair.both(
        "POST",
        "/api/v2/write",
        params={"org": pair.org, "bucket": "solar"},
        data=gzip.compress(f"{M},node_id=z rssi=-1i {time.time_ns()}\n".encode()),
        content_type="text/plain",
        headers={"Content-Encoding": "gzip"},
    )
    _same(fake, real)
    assert real.status == 204


# -- query ------------------------------------------------------------------------------------------

_FLUX = (
    'from(bucket: "solar")\n  |> range(start: 2026-09-01T00:00:00Z)\n'
    f'  |> filter(fn: (r) => r._measurement == "{M}" and r._field == "rssi")\n'
    '  |> keep(columns: ["_value", "node_id"])\n'
)


def _query(pair: Pair, flux: str, *, annotations: bool = True, **kw: Any) -> tuple[Reply, Reply]:
    body = {"query": flux, "type": "flux"}
    if annotations:
        body["dialect"] = {"annotations": ["datatype", "group", "default"]}
    params = kw.pop("params", {"org": pair.org})
    return pair.both(
        "POST", "/api/v2/query", params=params, body=body, accept="application/csv", **kw
    )


def test_query_answers_the_same_csv(pair: Pair) -> None:
    _write(
        pair,
        f"{M},node_id=a rssi=-70i 1790000000000000000\n"
        f"{M},node_id=a rssi=-71i 1790000000500000000\n"
        f"{M},node_id=b rssi=-80i 1790000001000000000\n"
        f"{M},gateway_id=g rssi=-90i 1790000002000000000\n",
    )
    fake, real = _query(pair, _FLUX)
    _same(fake, real, exact=True)
    # Tables in series-key order: gateway_id=g before node_id=a and node_id=b.
    assert ",,0,-90\r\n" in real.body.decode() and ",,1,-70,a\r\n" in real.body.decode()
    fake, real = _query(pair, _FLUX, annotations=False)
    _same(fake, real, exact=True)
    newest = _FLUX.replace(
        '  |> keep(columns: ["_value", "node_id"])\n',
        '  |> last()\n  |> keep(columns: ["_time"])\n  |> group()\n  |> max(column: "_time")\n',
    )
    _same(*_query(pair, newest), exact=True)


def test_query_errors(pair: Pair) -> None:
    _same(*_query(pair, _FLUX.replace('"solar"', '"nope"')))  # 404: could not find bucket
    _same(*_query(pair, _FLUX, params={"org": "no-such-org"}))
    _same(*_query(pair, _FLUX, params={}))
    _same(*_query(pair, _FLUX, token="not-a-token"))
    _same(*_query(pair, _FLUX, token=False))


# -- delete -----------------------------------------------------------------------------------------


def test_delete_answers(pair: Pair) -> None:
    _write(pair, "a,t=x v=1 1000000000\na,t=y v=1 1000000000\na,t=x v=1 9000000000\n")
    url = "/api/v2/delete"
    params = {"org": pair.org, "bucket": "solar"}
    window = {"start": "1970-01-01T00:00:00Z", "stop": "1970-01-01T00:00:05Z"}
    _same(
        *pair.both(
            "POST", url, params=params, body={**window, "predicate": '_measurement="a" AND t="x"'}
        )
    )
    _same(
        *pair.both(
            "POST", url, params=params, body={**window, "predicate": '_measurement="a" OR t="x"'}
        )
    )
    _same(*pair.both("POST", url, params=params, body={"stop": "1970-01-01T00:00:05Z"}))
    _same(*pair.both("POST", url, params={**params, "bucket": "nope"}, body=window))
    flux = (
        'from(bucket: "solar")\n  |> range(start: 1970-01-01T00:00:00Z)\n'
        '  |> filter(fn: (r) => r._measurement == "a" and r._field == "v")\n'
        '  |> keep(columns: ["_value", "t"])\n'
    )
    fake, real = _query(pair, flux)
    _same(fake, real, exact=True)
    assert real.body.count(b"\r\n,,") == 2, "t=x at 9 s and t=y are left"


# -- the management API -----------------------------------------------------------------------------


def test_bucket_answers(pair: Pair) -> None:
    org_id = pair.org_id
    create = {"name": "solar", "retentionRules": []}
    _same(*pair.both("POST", "/api/v2/buckets", body=lambda w: {**create, "orgID": org_id(w)}))
    _same(*pair.both("GET", "/api/v2/buckets", params={"org": pair.org, "limit": "101"}))
    _same(*pair.both("GET", "/api/v2/buckets", params={"org": pair.org}, token="nope"))
    _same(*pair.both("DELETE", "/api/v2/buckets/xyz"))
    _same(*pair.both("DELETE", "/api/v2/buckets/0000000000000001"))
    _same(*pair.both("GET", "/api/v2/orgs", params={"org": "no-such-org"}))
    _same(*pair.both("GET", "/api/v2/orgs", params={"org": pair.org}))
    created = pair.both(
        "POST",
        "/api/v2/buckets",
        body=lambda w: {
            "orgID": org_id(w),
            "name": "tier",
            "retentionRules": [{"type": "expire", "everySeconds": 86400}],
        },
    )
    _same(*created)
    listed = pair.both("GET", "/api/v2/buckets", params={"org": pair.org, "name": "tier"})
    _same(*listed)


def test_a_point_beyond_the_retention_is_dropped_the_rest_stored(pair: Pair) -> None:
    org_id = pair.org_id
    pair.both(
        "POST",
        "/api/v2/buckets",
        body=lambda w: {
            "orgID": org_id(w),
            "name": "short",
            "retentionRules": [{"type": "expire", "everySeconds": 3600}],
        },
    )
    now = time.time_ns()
    lines = f"m,k=old v=1 {now - 2 * 3600 * 10**9}\nm,k=new v=2 {now}\n"
    fake, real = _write(pair, lines, bucket="short")
    assert real.status == 422
    # The message carries the bucket's ID and the moment of the check: compare up to them.
    head = "failure writing points to database: partial write: dropped 1 points outside "
    for reply in (fake, real):
        doc = reply.json()
        assert doc["code"] == "unprocessable entity"
        assert doc["message"].startswith(head + "retention policy of duration 1h0m0s - oldest")
        assert doc["message"].split(" for database: ")[0].endswith("dropped=1")
    flux = (
        'from(bucket: "short")\n  |> range(start: 2026-01-01T00:00:00Z)\n'
        '  |> filter(fn: (r) => r._measurement == "m" and r._field == "v")\n'
        '  |> keep(columns: ["_value", "k"])\n'
    )
    fake, real = _query(pair, flux)
    _same(fake, real, exact=True)
    assert b",,0,2,new\r\n" in real.body and b"old" not in real.body


def test_task_answers(pair: Pair) -> None:
    org_id = pair.org_id
    _same(
        *pair.both("POST", "/api/v2/tasks", body=lambda w: {"orgID": org_id(w), "status": "active"})
    )
    for i in range(3):
        flux = (
            f'option task = {{name: "t{i}", every: 1h}}\nfrom(bucket: "solar") |> range(start: -1h)'
        )
        _same(
            *pair.both(
                "POST", "/api/v2/tasks", body=lambda w, f=flux: {"orgID": org_id(w), "flux": f}
            )
        )
    fake, real = pair.both("GET", "/api/v2/tasks", params={"org": pair.org, "limit": "2"})
    _same(fake, real)
    assert [t["name"] for t in real.json()["tasks"]] == ["t0", "t1"]
    assert [t["name"] for t in fake.json()["tasks"]] == ["t0", "t1"]
    assert "after=" in real.json()["links"]["next"] and "after=" in fake.json()["links"]["next"]


def test_a_scoped_token_is_refused_alike(pair: Pair) -> None:
    org_id = pair.org_id

    def bucket_id(which: str) -> str:
        if which == "fake":
            bucket = pair.fake.admin.bucket("solar")
            assert bucket is not None
            return bucket.id
        return str(pair.real.buckets(pair.org)["solar"]["id"])

    def read_only(which: str) -> dict[str, Any]:
        resource = {"type": "buckets", "id": bucket_id(which), "orgID": org_id(which)}
        return {"orgID": org_id(which), "permissions": [{"action": "read", "resource": resource}]}

    fake, real = pair.both("POST", "/api/v2/authorizations", body=read_only)
    _same(fake, real)
    tokens = {"fake": fake.json()["token"], "real": real.json()["token"]}
    replies = []
    for which, base in (("fake", pair.fake.url), ("real", pair.real.url)):
        replies.append(
            http_call(
                base,
                "POST",
                "/api/v2/write",
                token=tokens[which],
                params={"org": pair.org, "bucket": "solar"},
                data=b"m v=1",
                content_type="text/plain",
            )
        )
    _same(*replies)
    assert replies[1].status == 403
    created = []
    for which, base in (("fake", pair.fake.url), ("real", pair.real.url)):
        body = {"orgID": org_id(which), "name": "x", "retentionRules": []}
        reply = http_call(base, "POST", "/api/v2/buckets", token=tokens[which], body=body)
        # The message names the organization's ID, which differs between the two.
        created.append(Reply(reply.status, reply.body.replace(org_id(which).encode(), b"ORG")))
    _same(*created)
    assert created[1].json()["message"] == "write:orgs/ORG/buckets is unauthorized"
