"""Map the meter-pulse tiers into the sink bucket's InfluxQL database (InfluxDB 2 DBRP mappings).

Why: the plugins' InfluxQL dashboards address a tier as a retention policy of the data source's
database (``"PowerLogger_raw"."PowerPulse"`` in database ``telemetry``), as on InfluxDB 1.x.
InfluxDB 2 answers InfluxQL only through database/retention-policy (DBRP) mappings, and the
mapping it makes by itself for a bucket (a "virtual" one) names the bucket as its own database
with retention policy ``autogen``. So each tier bucket needs an explicit mapping
``<sink bucket>/<tier name>``, and the sink's bucket one as the database's default
(``<sink bucket>/autogen``), so that queries without a retention policy keep reaching it.

The compose stack's ``influxdb-setup`` service runs this after ``bridge-cli setup-influxdb`` has
created the tier buckets. Like that command it is idempotent and changes nothing that exists:
a mapping that points at another bucket is reported as a MISMATCH (exit 1). Only the standard
library and the bundle's own config loader are used, so it runs in the bridge's image.

Usage: python dbrp.py --config bridge.yaml [--sink NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from telegraf_bridge.cli.settings import InvalidConfig, load_settings
from telegraf_bridge.cli.tiers import tiers_of

TIMEOUT_S = 10.0


class DbrpError(Exception):
    """A step that cannot go on: the message says what and why."""


class V2:
    """The few InfluxDB v2 API calls this needs, with ``Authorization: Token``."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self._token = token

    def call(
        self, method: str, path: str, params: Mapping[str, str] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """One request; returns (status, JSON body or None). No answer at all raises."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (the sink's own http(s) URL)
            f"{self.url}{path}{query}", data=data, method=method
        )
        request.add_header("Authorization", f"Token {self._token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
                return response.status, _json(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            raise DbrpError(f"{self.url} does not answer: {exc}") from None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _refused(status: int, body: Any, what: str) -> DbrpError:
    message = body.get("message", "") if isinstance(body, dict) else ""
    return DbrpError(f"{what}: HTTP {status} {message}".rstrip())


def org_id(api: V2, organization: str) -> str:
    """The organization's ID (the sink may name it or give its ID)."""
    status, body = api.call("GET", "/api/v2/orgs", {"org": organization})
    if status == 200 and isinstance(body, dict) and body.get("orgs"):
        return str(body["orgs"][0]["id"])
    status, body = api.call("GET", f"/api/v2/orgs/{urllib.parse.quote(organization)}")
    if status == 200 and isinstance(body, dict) and "id" in body:
        return str(body["id"])
    raise _refused(status, body, f"organization {organization!r} not found")


def bucket_id(api: V2, org: str, name: str) -> str | None:
    """The ID of the bucket ``name``, or None when it does not exist."""
    status, body = api.call("GET", "/api/v2/buckets", {"orgID": org, "name": name})
    if status == 404:
        return None
    if status != 200 or not isinstance(body, dict):
        raise _refused(status, body, f"listing bucket {name!r}")
    found = [b for b in body.get("buckets", []) if b.get("name") == name]
    return str(found[0]["id"]) if found else None


def ensure_mapping(
    api: V2, org: str, database: str, rp: str, bucket: str, *, default: bool
) -> tuple[str, bool]:
    """Create ``database/rp -> bucket`` unless an explicit mapping exists: (report line, ok)."""
    target = f"dbrp {database}/{rp} -> bucket {bucket}"
    bid = bucket_id(api, org, bucket)
    if bid is None:
        return f"  ! missing     {target}: no such bucket (run bridge-cli setup-influxdb)", False
    status, body = api.call("GET", "/api/v2/dbrps", {"orgID": org, "db": database, "rp": rp})
    if status != 200 or not isinstance(body, dict):
        raise _refused(status, body, f"listing {target}")
    explicit = [m for m in body.get("content") or [] if not m.get("virtual")]
    if any(m.get("bucketID") == bid for m in explicit):
        return f"  = present     {target}", True
    if explicit:
        other = explicit[0].get("bucketID")
        return (
            f"  ! MISMATCH    {target}: it maps to bucket ID {other}; remove it with "
            f"`influx v1 dbrp delete --id {explicit[0].get('id')}` and run again",
            False,
        )
    mapping = {
        "orgID": org,
        "bucketID": bid,
        "database": database,
        "retention_policy": rp,
        "default": default,
    }
    status, body = api.call("POST", "/api/v2/dbrps", body=mapping)
    if status not in (200, 201):
        raise _refused(status, body, f"creating {target}")
    return f"  + created     {target}{' (default)' if default else ''}", True


def _token(sink: Mapping[str, Any], env: Mapping[str, str]) -> str:
    if sink.get("token_env"):
        token = env.get(sink["token_env"], "")
        if not token:
            raise DbrpError(f"${sink['token_env']} is not set (the sink's token_env)")
        return token
    if sink.get("token_file"):
        return Path(sink["token_file"]).read_text(encoding="utf-8").strip()
    raise DbrpError(f"sink {sink['name']} has no token_env or token_file")


def run(config: Path, sink_name: str | None, env: Mapping[str, str]) -> int:
    """Map every tier of the first (or the named) influxdb_v2 sink; 0 when all are in place."""
    try:
        settings = load_settings(config, env)
    except InvalidConfig as exc:
        raise DbrpError(str(exc)) from None
    sinks = [
        s
        for s in settings.active_sinks()
        if s["type"] == "influxdb_v2" and sink_name in (None, s["name"])
    ]
    if not sinks:
        named = f" named {sink_name}" if sink_name else ""
        print(f"dbrp: no influxdb_v2 sink{named}; nothing to map")
        return 0
    sink = sinks[0]
    api = V2(sink["url"], _token(sink, env))
    org = org_id(api, sink["organization"])
    database = sink["bucket"]
    print(f"dbrp: sink {sink['name']} -> {api.url}, database {database}")
    wanted = [("autogen", database, True)]
    wanted += [(tier.name, tier.name, False) for tier in tiers_of(settings.downsampling)]
    results = [
        ensure_mapping(api, org, database, rp, bucket, default=default)
        for rp, bucket, default in wanted
    ]
    for line, _ok in results:
        print(line)
    return 0 if all(ok for _line, ok in results) else 1


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, required=True, help="bridge.yaml with the sink")
    parser.add_argument("--sink", help="influxdb_v2 sink to map (default: the first one)")
    args = parser.parse_args(argv)
    try:
        return run(args.config, args.sink, os.environ)
    except DbrpError as exc:
        print(f"dbrp: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
