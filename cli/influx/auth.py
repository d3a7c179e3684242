"""Credentials for InfluxDB: read once from the sink's settings, sent in one header built here.

Why one module: the credential of a sink comes from the same places for every command
(``token_env``/``token_file`` for InfluxDB v2/Cloud and 3, ``username`` plus the password from
``password_env`` for 1.x), and each server version wants it in one ``Authorization`` form
(``Basic``, ``Token``, ``Bearer``). This is the only module in ``cli/`` that builds that header
(``tests/test_influx_layers.py`` checks it), so a secret never ends up in a URL or a log line
because one caller spelled it differently. Secrets travel in that header only.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from telegraf_bridge.cli.config_model import InfluxSink, TokenSink, V1Sink
from telegraf_bridge.cli.influx.transport import SinkError

Scheme = Literal["Basic", "Token", "Bearer"]


@dataclass(frozen=True)
class Credential:
    """What a client authenticates with: a user (1.x only) and a secret ("" when none)."""

    secret: str = ""
    username: str = ""


def authorization(scheme: Scheme, credential: Credential) -> dict[str, str]:
    """The ``Authorization`` header for ``credential`` (empty when there is nothing to send).

    ``Basic`` needs a username (InfluxDB 1.x without auth takes no header at all); ``Token``
    (v2/Cloud) and ``Bearer`` (v3) need a secret.
    """
    if scheme == "Basic":
        if not credential.username:
            return {}
        pair = f"{credential.username}:{credential.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    if not credential.secret:
        return {}
    return {"Authorization": f"{scheme} {credential.secret}"}


def read_token(sink: TokenSink, env: Mapping[str, str]) -> str:
    """The sink's token (``token_env`` or ``token_file``), or "" when it names none.

    A variable that is not set, or a file that cannot be read or is empty, is a
    ``config_error`` naming the variable or file.
    """
    name = sink.name
    if sink.token_env:
        var = sink.token_env
        value = env.get(var)
        if not value:
            raise SinkError(
                "config_error",
                f"sink {name!r}: token_env names {var}, which is not set in this environment",
            )
        return value
    if sink.token_file:
        path = Path(sink.token_file)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SinkError(
                "config_error", f"sink {name!r}: cannot read token_file {path}: {exc.strerror}"
            ) from None
        if not value:
            raise SinkError("config_error", f"sink {name!r}: token_file {path} is empty")
        return value
    return ""


def read_password(sink: V1Sink, env: Mapping[str, str]) -> str:
    """The password of an InfluxDB 1.x sink's user (``password_env``), "" when none is named."""
    var = sink.password_env
    if not var:
        return ""
    value = env.get(var, "")
    if not value:
        raise SinkError(
            "config_error",
            f"sink {sink.name!r}: password_env names {var}, which is not set in this environment",
        )
    return value


def read_credential(sink: InfluxSink, env: Mapping[str, str]) -> Credential:
    """The sink's credential: user and password for 1.x, the token for v2/Cloud and 3."""
    if isinstance(sink, V1Sink):
        return Credential(read_password(sink, env), sink.username)
    return Credential(read_token(sink, env))
