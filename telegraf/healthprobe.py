"""The container health check: Telegraf's health output must answer 200.

Standard library only (and the bundle's ``paths``, itself standard library only), because
Docker (and the balena supervisor, which restarts unhealthy containers) runs it every
interval, on a Pi Zero too, where importing click and jinja2 would cost more than the check.
The entrypoint writes the address the rendered config listens on into the data
directory; ``BRIDGE_HEALTH_LISTEN`` is the fallback.

Exit 0: healthy. Exit 1: unhealthy or not answering (the reason goes to stdout, which Docker
keeps in ``docker inspect``).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from telegraf_bridge import paths

TIMEOUT_S = 5.0
_ANY_HOST = {"", "0.0.0.0", "::", "[::]"}  # noqa: S104 - names of the wildcard address


def health_url(env: dict[str, str]) -> str:
    """The URL to probe: the rendered address, with a wildcard host probed on loopback."""
    data_dir = Path(env.get("BRIDGE_DATA_DIR") or paths.DATA_DIR)
    try:
        listen = (data_dir / ".health-listen").read_text().strip()
    except OSError:
        listen = ""
    listen = listen or env.get("BRIDGE_HEALTH_LISTEN") or "127.0.0.1:8080"
    listen = listen.removeprefix("http://")
    host, _, port = listen.rpartition(":")
    if host in _ANY_HOST:
        host = "127.0.0.1"
    return f"http://{host}:{port}/"


def probe(url: str, timeout: float = TIMEOUT_S) -> tuple[bool, str]:
    """(healthy, reason)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own http URL
            return response.status == 200, f"{url} answered {response.status}"
    except urllib.error.HTTPError as exc:
        body = exc.read(200).decode("utf-8", "replace").strip()
        return False, f"{url} answered {exc.code} {body}".rstrip()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url} is not answering: {reason}"


def main() -> int:
    """Entry point of the `bridge-healthprobe` console script."""
    healthy, reason = probe(health_url(dict(os.environ)))
    print(("healthy: " if healthy else "unhealthy: ") + reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
