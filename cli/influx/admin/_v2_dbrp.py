"""InfluxQL on InfluxDB 2: the DBRP mappings that let the InfluxQL dashboards reach every tier.

Why: the plugins' InfluxQL dashboards address a tier as a retention policy of the data source's
database (``"PowerLogger_1m"."PowerPulse"`` in database ``telemetry``), as on InfluxDB 1.x.
InfluxDB 2 answers InfluxQL only through database/retention-policy (DBRP) mappings, and the one
it makes by itself for a bucket (a "virtual" mapping) names the bucket as its own database with
retention policy ``autogen``. So each tier bucket needs an explicit mapping ``<sink bucket>/<tier
name>``, and the sink's bucket one as the database's default (``<sink bucket>/autogen``), so that
queries without a retention policy keep reaching it.

Like the rest of ``setup-influxdb``: a missing mapping is created, one that exists is left as it
is, and one that points at another bucket is a mismatch, reported and never changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from telegraf_bridge.cli.influx.admin.base import AdminError, Check, Step
from telegraf_bridge.cli.influx.transport import Reply
from telegraf_bridge.cli.influx.v2 import InfluxV2Client
from telegraf_bridge.cli.tiers import Layout


@dataclass(frozen=True)
class Dbrp:
    """One wanted mapping: ``database``/``rp`` answers InfluxQL from ``bucket``."""

    database: str
    rp: str
    bucket: str
    default: bool

    @property
    def what(self) -> str:
        return f"dbrp {self.database}/{self.rp}"


def wanted(layout: Layout, sink_bucket: str) -> list[Dbrp]:
    """The sink bucket as the default ``autogen``, then one retention policy per tier."""
    return [
        Dbrp(sink_bucket, "autogen", sink_bucket, True),
        *(Dbrp(sink_bucket, tier.name, tier.name, False) for tier in layout.tiers),
    ]


class DbrpMappings:
    """Plans, creates and checks the mappings of one organization."""

    def __init__(
        self, client: InfluxV2Client, org_id: str, failure: Callable[[Reply, str], AdminError]
    ) -> None:
        self._client = client
        self._org_id = org_id
        self._failure = failure

    def listed(self) -> list[dict[str, object]]:
        """The organization's explicit mappings (virtual ones are InfluxDB's own, per bucket)."""
        reply = self._client.dbrps({"orgID": self._org_id})
        if reply.status != 200:
            raise self._failure(reply, "listing the InfluxQL (DBRP) mappings")
        doc = reply.json() or {}
        return [m for m in doc.get("content") or [] if not m.get("virtual")]

    def steps(
        self,
        want: Sequence[Dbrp],
        buckets: Mapping[str, Mapping[str, Any]],
        creatable: set[str],
        lookup: Callable[[], Mapping[str, Mapping[str, Any]]],
    ) -> list[Step]:
        """One step per wanted mapping.

        ``creatable`` are the buckets earlier steps create; ``lookup`` lists the buckets again
        when a mapping is created, to find their IDs.
        """
        listed = self.listed()
        return [self._step(m, buckets, listed, creatable, lookup) for m in want]

    def _step(
        self,
        m: Dbrp,
        buckets: Mapping[str, Mapping[str, Any]],
        listed: list[dict[str, object]],
        creatable: set[str],
        lookup: Callable[[], Mapping[str, Mapping[str, Any]]],
    ) -> Step:
        target = f"-> bucket {m.bucket}" + (" (default)" if m.default else "")
        same = _same_key(listed, m)
        bucket = buckets.get(m.bucket)
        if bucket is not None and any(x.get("bucketID") == bucket.get("id") for x in same):
            return Step(m.what, "present", target)
        if same:
            other = str(same[0].get("bucketID"))
            names = {str(b.get("id")): name for name, b in buckets.items()}
            return Step(
                m.what,
                "mismatch",
                f"maps to bucket {names.get(other, 'ID ' + other)}, the layout wants {m.bucket}; "
                "bridge-cli never changes a mapping: remove it (influx v1 dbrp delete --id "
                f"{same[0].get('id')}) and run setup-influxdb again",
            )
        if bucket is None and m.bucket not in creatable:
            return Step(
                m.what,
                "mismatch",
                f"bucket {m.bucket} does not exist (see its own row); the mapping is created "
                "once it does",
            )
        return Step(m.what, "create", target, apply=lambda: self._create(m, lookup()))

    def _create(self, m: Dbrp, buckets: Mapping[str, Mapping[str, Any]]) -> str:
        bucket = buckets.get(m.bucket)
        if bucket is None:
            raise AdminError(
                f"cannot map {m.database}/{m.rp}: bucket {m.bucket} does not exist",
                ("create the bucket, then run setup-influxdb again",),
            )
        reply = self._client.create_dbrp(
            {
                "orgID": self._org_id,
                "bucketID": bucket["id"],
                "database": m.database,
                "retention_policy": m.rp,
                "default": m.default,
            },
        )
        if reply.status not in (200, 201):
            raise self._failure(reply, f"creating the InfluxQL mapping {m.database}/{m.rp}")
        return f"created: InfluxQL {m.database}/{m.rp} reads bucket {m.bucket}"

    def check(self, want: Sequence[Dbrp], buckets: Mapping[str, Mapping[str, Any]]) -> Check:
        """One verify row: every wanted mapping exists and points at its bucket."""
        listed = self.listed()
        problems = []
        for m in want:
            bucket_id = (buckets.get(m.bucket) or {}).get("id")
            same = _same_key(listed, m)
            if not same:
                problems.append(f"{m.database}/{m.rp} missing")
            elif bucket_id is None or all(x.get("bucketID") != bucket_id for x in same):
                problems.append(f"{m.database}/{m.rp} does not map to bucket {m.bucket}")
        name = "InfluxQL mappings"
        if problems:
            return Check(name, False, "; ".join(problems), "run bridge-cli setup-influxdb")
        return Check(name, True, f"{len(want)} mappings in database {want[0].database}")


def _same_key(listed: Sequence[Mapping[str, Any]], m: Dbrp) -> list[Mapping[str, Any]]:
    """The listed mappings of ``m``'s database and retention policy."""
    return [
        x for x in listed if x.get("database") == m.database and x.get("retention_policy") == m.rp
    ]
