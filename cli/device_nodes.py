"""The GPIO and serial device nodes the plugins open, and the groups that may open them.

The container entrypoint (joining those groups after dropping root) and
``bridge-cli install-systemd`` (``SupplementaryGroups=``) both grant device access this way,
instead of privileges, so they share one list and one rule. The list is the union of the
plugins' ``device_globs`` (gpio_pulse: GPIO chips and /dev/gpiomem; taptap: RS485 adapters).
"""

from __future__ import annotations

from pathlib import Path

from telegraf_bridge.plugins import manifests


def device_groups(dev: Path = Path("/dev")) -> tuple[set[int], list[str]]:
    """Groups with read-write access to the device nodes present, and warnings.

    A node no group but root's may open gets a warning: joining the root group is not access
    we grant. Nodes are visited in name order, each once.
    """
    gids: set[int] = set()
    warnings = []
    nodes = {node for pattern in manifests.device_globs() for node in dev.glob(pattern)}
    for node in sorted(nodes):
        try:
            info = node.stat()
        except OSError:
            continue
        if info.st_gid != 0 and info.st_mode & 0o060 == 0o060:
            gids.add(info.st_gid)
        else:
            warnings.append(
                f"{node} is open to root only (mode {info.st_mode & 0o777:o}, gid "
                f"{info.st_gid}): give it a group with read-write access"
            )
    return gids, warnings
