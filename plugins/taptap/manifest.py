"""The taptap wrapper as bridge-cli sees it (see plugins/common/_manifest.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telegraf_bridge.plugins.common._manifest import AT_CAP_JOURNAL, MainMeasurement, Manifest
from telegraf_bridge.plugins.taptap import options


def program(opts: Mapping[str, Any]) -> tuple[str, str]:
    """The program a taptap source runs, and the option that names it.

    ``command`` (seed 004's ``TAPTAP_CMD``) is the whole command line, so its first word is the
    program; otherwise ``taptap`` names the binary that ``serial``/``tcp`` run.
    """
    command = opts.get("command")
    if isinstance(command, list) and command and isinstance(command[0], str):
        return command[0], "options.command (TAPTAP_CMD)"
    if isinstance(command, str) and command.split():
        return command.split()[0], "options.command (TAPTAP_CMD)"
    return str(opts.get("taptap", "taptap")), "options.taptap"


MANIFEST = Manifest(
    name="taptap",
    module="telegraf_bridge.plugins.taptap",
    parse=lambda sec, _interval_s: options.parse(sec),
    path_keys=options.PATH_KEYS,
    at_cap=AT_CAP_JOURNAL,
    main_measurement=MainMeasurement("measurement", "tigo_power_report"),
    # USB-RS485 adapters, on-board UARTs and their udev aliases.
    device_globs=("ttyUSB*", "ttyACM*", "ttyAMA*", "serial[0-9]*"),
    program=program,
)
