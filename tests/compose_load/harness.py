"""The Compose specification's two judges, for tests/test_compose.py and tests/test_balena.py.

No Docker engine and no `docker compose` plugin exist where the tests run, so the checks
`docker compose config` makes are made with the same library it uses, pinned:

- :func:`schema_errors`: the JSON schema of github.com/compose-spec/compose-go/v2 (the module's
  ``schema/compose-spec.json``, fetched from the Go module proxy) with ``jsonschema``.
- :func:`load`: compose-go's own loader (``main.go`` here, built once into the cache), which
  interpolates ``.env`` variables, applies profiles and runs the consistency checks the schema
  cannot express (undefined volumes, networks, services named in ``depends_on``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

COMPOSE_GO = "github.com/compose-spec/compose-go/v2"
COMPOSE_GO_VERSION = "v2.16.2"
HERE = Path(__file__).resolve().parent
# Read at import, before the tests' isolated_env fixture points the caches into tmp_path: the
# loader and Go's module and build caches are shared by every test and every run.
_ENV = {**os.environ, "GOFLAGS": "-mod=mod"}
_CACHE = Path(
    _ENV.get("TELEGRAF_BRIDGE_CACHE")
    or Path(_ENV.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "telegraf-bridge"
)


def _go(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["go", *args], cwd=cwd, env=_ENV, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"go {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


@cache
def compose_schema() -> dict[str, Any]:
    """The Compose specification's JSON schema as the pinned compose-go ships it."""
    info = json.loads(_go("mod", "download", "-json", f"{COMPOSE_GO}@{COMPOSE_GO_VERSION}"))
    if not info.get("Dir"):
        raise RuntimeError(f"go mod download {COMPOSE_GO}: {info.get('Error', 'no Dir')}")
    schema: dict[str, Any] = json.loads(
        (Path(info["Dir"]) / "schema" / "compose-spec.json").read_text(encoding="utf-8")
    )
    return schema


def schema_errors(doc: Any) -> list[str]:
    """Every schema violation of a parsed Compose document, as ``path: message``."""
    validator = jsonschema.Draft202012Validator(compose_schema())
    return sorted(
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(doc)
    )


@cache
def loader() -> Path:
    """The compose-load binary, built on first use and cached by the hash of its sources."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((HERE / name).read_bytes())
    digest.update(_go("version").encode())
    binary = _CACHE / "compose-load" / digest.hexdigest()[:12] / "compose-load"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(".partial")
        _go("build", "-trimpath", "-o", str(partial), ".", cwd=HERE)
        partial.replace(binary)
    return binary


@dataclass(frozen=True)
class Loaded:
    """What compose-go made of the files: its exit status, the project and its messages."""

    returncode: int
    project: dict[str, Any]
    stderr: str


def load(
    files: list[Path],
    *,
    env_file: Path | None = None,
    profiles: tuple[str, ...] = (),
    workdir: Path | None = None,
) -> Loaded:
    """Load ``files`` as `docker compose --env-file ENV --profile P config` would."""
    args = [str(loader())]
    if env_file is not None:
        args += ["-env-file", str(env_file)]
    for profile in profiles:
        args += ["-profile", profile]
    if workdir is not None:
        args += ["-workdir", str(workdir)]
    result = subprocess.run(
        [*args, *(str(f) for f in files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        # Hermetic: only the env file interpolates (no shell variable, no implicit .env).
        env={"PATH": _ENV.get("PATH", ""), "COMPOSE_DISABLE_ENV_FILE": "true"},
    )
    project = json.loads(result.stdout) if result.returncode == 0 else {}
    return Loaded(result.returncode, project, result.stderr)
