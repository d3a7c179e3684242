"""A real InfluxDB 1.x server (Debian's ``influxd``) on loopback, for tests."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Self

from rig.managed import Managed, stop_process
from rig.ports import free_port, wait_for


def find_influxd() -> str | None:
    """The influxd binary, also where Debian puts it outside a normal user's PATH."""
    return shutil.which("influxd") or next(
        (p for p in ("/usr/bin/influxd", "/usr/sbin/influxd") if Path(p).exists()), None
    )


class InfluxD1(Managed):
    """Starts ``influxd`` with its own data directory and ports; stops it on exit."""

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str | None = None,
        http_port: int | None = None,
        auth_enabled: bool = False,
        admin: tuple[str, str] = ("admin", "admin-secret-pw"),
    ) -> None:
        """Set up the server's files and ports; ``start`` runs it.

        ``auth_enabled`` turns authentication on and creates ``admin`` (user, password) as the
        first, all-privileges user; :meth:`query` then authenticates as it.
        """
        found = binary or find_influxd()
        if not found:
            raise RuntimeError("influxd (InfluxDB 1.x) is not installed: run `make setup`")
        self.binary = found
        self.workdir = Path(workdir)
        self.http_port = http_port or free_port()
        self.rpc_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.auth_enabled = auth_enabled
        self.admin = admin

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _config(self) -> str:
        d = self.workdir
        return f"""
reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
  logging-enabled = false
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.http_port}"
  auth-enabled = {"true" if self.auth_enabled else "false"}
  log-enabled = false
  flux-enabled = false
  max-row-limit = 0
[continuous_queries]
  enabled = true
  log-enabled = false
  run-interval = "1s"
[logging]
  level = "warn"
"""

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "influxdb.conf"
        conf.write_text(self._config(), encoding="utf-8")
        log = (self.workdir / "influxd.log").open("wb")
        self.proc = subprocess.Popen(
            [self.binary, "-config", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        wait_for(self._ping, timeout=60, what=f"influxd on {self.url}")
        if self.auth_enabled:
            # With no user yet, influxd accepts exactly this without credentials.
            user, password = self.admin
            self.query(
                f"CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES",
                method="POST",
            )
        return self

    def _ping(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            log = (self.workdir / "influxd.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"influxd exited with {self.proc.returncode}: {log}")
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as resp:
                return int(resp.status) == 204
        except (urllib.error.URLError, OSError):
            return False

    def query(self, q: str, *, db: str | None = None, method: str = "GET") -> list[dict[str, Any]]:
        """Run InfluxQL; returns the ``series`` of the first result (empty when none)."""
        params = {"q": q, "epoch": "ns"}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params)
        # Loopback http:// URLs built here; no user-supplied scheme reaches urlopen.
        if method == "POST":
            req = urllib.request.Request(f"{self.url}/query", data=data.encode(), method="POST")
        else:
            req = urllib.request.Request(f"{self.url}/query?{data}")
        if self.auth_enabled:
            pair = base64.b64encode(":".join(self.admin).encode()).decode()
            req.add_header("Authorization", f"Basic {pair}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            doc = json.loads(resp.read())
        result = doc["results"][0]
        if "error" in result:
            raise RuntimeError(f"influxd query error: {result['error']}")
        return list(result.get("series", []))

    def count(self, measurement: str, field: str, *, db: str) -> int:
        """Points of ``measurement`` with ``field``; 0 while the database does not exist yet."""
        try:
            series = self.query(f'SELECT count("{field}") FROM "{measurement}"', db=db)
        except (RuntimeError, OSError):
            return 0
        return int(series[0]["values"][0][1]) if series else 0

    def field_types(self, measurement: str, *, db: str) -> dict[str, str]:
        """``SHOW FIELD KEYS`` of one measurement as {field: type}."""
        series = self.query(f'SHOW FIELD KEYS FROM "{measurement}"', db=db)
        return {values[0]: values[1] for s in series for values in s["values"]}

    def rows(self, q: str, *, db: str) -> list[dict[str, Any]]:
        """Rows of the first series as dictionaries keyed by column."""
        out = []
        for series in self.query(q, db=db):
            tags = series.get("tags", {})
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(tags)
                out.append(row)
        return out

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)
