"""The device registry as the HTTP listener sees it: reloaded when its file changes.

Why a watcher: `bridge-cli devices add/revoke` rewrites the registry file while the plugin
runs; a request must be checked against the current keys without a restart, and a broken
edit must keep the previous registry rather than lock every device out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from telegraf_bridge.plugins.iotflow import registry as registry_mod
from telegraf_bridge.plugins.iotflow.registry import Registry, RegistryError

log = logging.getLogger("telegraf_bridge.plugins.iotflow.http")


class RegistryWatcher:
    """The device registry, re-read when ``devices.yaml`` changes.

    The file's identity (inode, mtime, size) is looked at most once per ``check_every_s``.
    ``bridge-cli devices`` replaces the file atomically; a file that is broken, unreadable or
    gone on reload keeps the previous registry (an error, counted), and an empty (truncated)
    one is looked at again later, so a hand edit in progress never locks every device out.
    """

    def __init__(
        self,
        path: Path,
        *,
        check_every_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.check_every_s = check_every_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._signature = self._stat()
        self.registry: Registry = registry_mod.load(self.path)  # RegistryError: caller's to show
        self._next_check = monotonic() + check_every_s
        self.reloads = 0
        self.reload_errors = 0

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def current(self) -> Registry:
        """The registry to authenticate against now."""
        now = self._monotonic()
        if now < self._next_check:
            return self.registry
        with self._lock:
            if now >= self._next_check:
                self._next_check = now + self.check_every_s
                self._maybe_reload()
        return self.registry

    def _maybe_reload(self) -> None:
        signature = self._stat()
        if signature == self._signature:
            return
        if signature is not None and signature[2] == 0:
            # Truncated by an editor that is about to write it again: look next time.
            return
        self._signature = signature  # one attempt (and one error) per change of the file
        try:
            if signature is None:
                raise RegistryError(f"the device registry {self.path} is gone")
            fresh = registry_mod.load(self.path)
        except RegistryError as exc:
            self.reload_errors += 1
            log.error("keeping the previous device registry: %s", exc)
            return
        self.registry = fresh
        self.reloads += 1
        log.info("reloaded the device registry %s: %d device(s)", self.path, len(fresh.devices))
