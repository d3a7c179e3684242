"""Pick the admin backend for a sink and hand it the sink's admin credential.

The credential comes from the same places the query layer reads
(:mod:`telegraf_bridge.cli.sinkquery`): ``token_env`` (the variable's value) or ``token_file``
(its content, stripped) for InfluxDB v2/Cloud and 3, ``username`` plus the password from
``password_env`` for InfluxDB 1.x. The v2 backend is imported only when a v2 sink is chosen.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from telegraf_bridge.cli.influx_admin.base import AdminBackend, AdminError
from telegraf_bridge.cli.sinkquery import SinkError, _secret_from

ADMIN_TYPES = ("influxdb_v1", "influxdb_v2", "influxdb_v3")


def admin_token(sink: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The sink's token (``token_env`` or ``token_file``), "" when it names none."""
    try:
        return _secret_from(sink, env)
    except SinkError as exc:
        raise AdminError(
            str(exc),
            (
                "export the variable named by token_env (or fix token_file) and run again; "
                "the token needs admin (all-access / operator) rights",
            ),
        ) from None


def v1_password(sink: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The password of an InfluxDB 1.x sink's user (``password_env``), "" when none is set."""
    var = sink.get("password_env") or ""
    if not var:
        return ""
    value = env.get(var, "")
    if not value:
        raise AdminError(
            f"sink {sink['name']!r}: password_env names {var}, which is not set in this "
            "environment",
            (f"export {var}=<the password of user {sink.get('username') or '?'}> and run again",),
        )
    return value


def backend_for(
    sink: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    timeout: float = 10.0,
    write_names: Sequence[str] = (),
    resample_every_s: int | None = None,
) -> AdminBackend:
    """The backend that administers ``sink`` (a validated, enabled sink dictionary).

    ``write_names`` are the tiers Telegraf writes to the sink (a writer token gets exactly
    these; :func:`telegraf_bridge.cli.tiers.written_names`). ``resample_every_s`` only matters
    for InfluxDB 1.x continuous queries (tests run them every second).
    """
    environ = os.environ if env is None else env
    kind = sink["type"]
    if kind == "influxdb_v1":
        from telegraf_bridge.cli.influx_admin.v1 import InfluxV1Admin  # noqa: PLC0415

        return InfluxV1Admin(
            sink,
            str(sink.get("username") or ""),
            v1_password(sink, environ),
            timeout=timeout,
            resample_every_s=resample_every_s,
        )
    if kind == "influxdb_v2":
        module = importlib.import_module("telegraf_bridge.cli.influx_admin.v2")
        backend: AdminBackend = module.InfluxV2Admin(
            dict(sink), admin_token(sink, environ) or None, timeout=timeout, write_names=write_names
        )
        return backend
    if kind == "influxdb_v3":
        from telegraf_bridge.cli.influx_admin.v3 import InfluxV3Admin  # noqa: PLC0415

        return InfluxV3Admin(
            sink, admin_token(sink, environ), timeout=timeout, write_names=write_names
        )
    if kind == "file":
        raise AdminError(
            f"sink {sink['name']!r} is a file sink: there is no database to set up, verify or "
            "delete",
            ("choose an InfluxDB sink with --sink NAME",),
        )
    raise AdminError(f"sink {sink['name']!r} has type {kind!r}, which has no admin backend")
