"""The writer and reader tokens of an InfluxDB v2/Cloud sink: their scope, file and plan step.

Why apart from the backend: which buckets each token may touch, where its file lives and what
to do with a token that already exists (keep, rewrite its file, or ask for it to be deleted,
since a token's permissions cannot be changed) are decisions on data the backend has already
fetched; here they are pure functions, and the backend keeps the HTTP calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from telegraf_bridge.cli.influx.admin.base import Step
from telegraf_bridge.cli.tiers import Layout
from telegraf_bridge.plugins.common import write_atomic

Perm = tuple[str, str]  # (action, bucket name)


@dataclass(frozen=True)
class TokenWanted:
    """A token the plan wants: found by its description, scoped by ``perms``, kept at ``path``."""

    description: str
    perms: set[Perm]
    path: Path


def token_file(secrets_dir: Path, sink_name: str, role: str) -> Path:
    """Where a new writer/reader token of ``sink_name`` is stored."""
    return secrets_dir / f"{sink_name.replace('-', '_')}_{role}_token"


def token_description(sink_name: str, role: str) -> str:
    """The description that finds the sink's writer or reader token among the server's."""
    use = "Telegraf writes with it" if role == "writer" else "Grafana reads with it"
    return f"telegraf-bridge {role} token for sink {sink_name} ({use})"


def writer_names(layout: Layout, bucket: str, write_names: Sequence[str]) -> list[str]:
    """The buckets Telegraf writes to (``write_names``; default the raw tier and ``bucket``)."""
    return list(dict.fromkeys(list(write_names) or [layout.raw.name, bucket]))


def reader_names(layout: Layout, bucket: str, write_names: Sequence[str]) -> list[str]:
    """Every bucket the plan needs: the tiers, the sink's bucket and what Telegraf writes to."""
    tiers = [t.name for t in layout.tiers]
    return list(dict.fromkeys([*tiers, bucket, *writer_names(layout, bucket, write_names)]))


def writer_perms(layout: Layout, bucket: str, write_names: Sequence[str]) -> set[Perm]:
    """The writer token's scope: write on exactly the buckets Telegraf writes to."""
    return {("write", name) for name in writer_names(layout, bucket, write_names)}


def reader_perms(layout: Layout, bucket: str) -> set[Perm]:
    """The reader token's scope (Grafana): read on every tier and the sink's bucket."""
    return {("read", name) for name in [*(t.name for t in layout.tiers), bucket]}


def perms_of(auth: Mapping[str, object], names_by_id: Mapping[str, str]) -> set[Perm]:
    """An authorization's bucket permissions as (action, bucket name)."""
    perms: set[Perm] = set()
    listed = auth.get("permissions")
    for perm in listed if isinstance(listed, list) else []:
        if not isinstance(perm, dict):
            continue
        resource = perm.get("resource")
        resource = resource if isinstance(resource, dict) else {}
        rid = str(resource.get("id") or "")
        if resource.get("type") != "buckets":
            label = str(resource.get("type"))
        elif not rid:
            label = "all buckets"
        else:
            label = names_by_id.get(rid) or f"bucket ID {rid} (deleted?)"
        perms.add((str(perm.get("action")), label))
    return perms


def read_secret(path: Path) -> str | None:
    """A token file's content, or None when it cannot be read (it is never shown)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def write_token(path: Path, token: str, what: str) -> str:
    """Write a token file (mode 0600, in a 0700 directory) and say so."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(path, token, mode=0o600)  # no newline: Telegraf sends the bytes as-is
    return f"{what}; token written to {path} (mode 0600)"


def token_step(
    wanted: TokenWanted,
    existing: Mapping[str, object] | None,
    names_by_id: Mapping[str, str],
    *,
    create: Callable[[], str],
) -> Step:
    """The plan's step for one token, given the server's token of that description (if any).

    A missing token is created; one with another scope, or inactive, cannot be changed and must
    be deleted by hand; an existing one whose file is lost is written again when the server
    lists its value (OSS 2.x), or must be deleted and recreated (Cloud shows it only once).
    """
    what = f"token {wanted.description}"
    path, perms = wanted.path, wanted.perms
    scope = ", ".join(f"{a} {n}" for a, n in sorted(perms))
    if existing is None:
        return Step(what, "create", f"{scope}; written to {path}", apply=create)
    have = perms_of(existing, names_by_id)
    if have != perms or existing.get("status", "active") != "active":
        differs = ", ".join(
            [f"missing {a} {n}" for a, n in sorted(perms - have)]
            + [f"extra {a} {n}" for a, n in sorted(have - perms)]
        )
        state = differs or f"status {existing.get('status')}"
        return Step(
            what,
            "mismatch",
            f"exists with another scope ({state}); a token's permissions cannot be "
            f"changed: delete it (influx auth delete --id {existing.get('id')}) and run "
            "setup-influxdb again for a new one",
        )
    listed = existing.get("token")
    token = listed if isinstance(listed, str) and listed else ""
    stored = read_secret(path)
    if stored is not None and (not token or stored == token):
        return Step(what, "present", f"{scope}; token file {path}")
    if token:
        # OSS 2.x lists token values to their owner: a lost or stale file can be rewritten.
        problem = "is missing" if stored is None else "holds another token"
        return Step(
            what,
            "create",
            f"exists, but {path} {problem}: write it from the server's listing",
            apply=lambda: write_token(path, token, "written again from the listing"),
        )
    return Step(
        what,
        "mismatch",
        f"exists, but {path} is missing and InfluxDB Cloud shows a token only when it is "
        f"created: delete it (influx auth delete --id {existing.get('id')}) and run "
        "setup-influxdb again for a new one",
    )
