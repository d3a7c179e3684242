"""Pick the admin backend for a sink and hand it the sink's admin credential.

The credential is read by the one credential reader (:mod:`telegraf_bridge.cli.influx.auth`):
``token_env`` (the variable's value) or ``token_file`` (its content, stripped) for InfluxDB
v2/Cloud and 3, ``username`` plus the password from ``password_env`` for InfluxDB 1.x. Which
backend a sink gets is decided by :data:`telegraf_bridge.cli.influx.versions.VERSIONS`; a
backend is imported only when a sink of its version is chosen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from telegraf_bridge.cli.config_model import FileSink, Sink, TokenSink, V1Sink
from telegraf_bridge.cli.influx.admin.base import AdminBackend, AdminError
from telegraf_bridge.cli.influx.auth import read_password, read_token
from telegraf_bridge.cli.influx.transport import SinkError
from telegraf_bridge.cli.influx.versions import VERSIONS


def admin_token(sink: TokenSink, env: Mapping[str, str]) -> str:
    """The sink's token (``token_env`` or ``token_file``), "" when it names none."""
    try:
        return read_token(sink, env)
    except SinkError as exc:
        raise AdminError(
            str(exc),
            (
                "export the variable named by token_env (or fix token_file) and run again; "
                "the token needs admin (all-access / operator) rights",
            ),
        ) from None


def v1_password(sink: V1Sink, env: Mapping[str, str]) -> str:
    """The password of an InfluxDB 1.x sink's user (``password_env``), "" when none is set."""
    try:
        return read_password(sink, env)
    except SinkError as exc:
        raise AdminError(
            str(exc),
            (
                f"export {sink.password_env}=<the password of user {sink.username or '?'}> and "
                "run again",
            ),
        ) from None


def backend_for(
    sink: Sink,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float = 10.0,
    write_names: Sequence[str] = (),
    resample_every_s: int | None = None,
) -> AdminBackend:
    """The backend that administers ``sink`` (a validated, enabled sink).

    ``write_names`` are the tiers Telegraf writes to the sink (a writer token gets exactly
    these; :func:`telegraf_bridge.cli.tiers.written_names`). ``resample_every_s`` only matters
    for InfluxDB 1.x continuous queries (tests run them every second).
    """
    environ = os.environ if env is None else env
    if isinstance(sink, FileSink):
        raise AdminError(
            f"sink {sink.name!r} is a file sink: there is no database to set up, verify or delete",
            ("choose an InfluxDB sink with --sink NAME",),
        )
    if sink.type not in VERSIONS:
        raise AdminError(f"sink {sink.name!r} has type {sink.type!r}, which has no admin backend")
    backend: AdminBackend = (
        VERSIONS[sink.type]
        .load("admin")
        .from_sink(
            sink,
            environ,
            timeout=timeout,
            write_names=write_names,
            resample_every_s=resample_every_s,
        )
    )
    return backend
