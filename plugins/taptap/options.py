"""The options of a ``taptap`` source, read by the plugin and checked by ``bridge-cli``.

Pure parsing (no serial port or program is looked at), so render-config can refuse a bad
option, such as both ``serial`` and ``command``, before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegraf_bridge.plugins.common._config import ConfigError, Section

# Options that name files: none is anchored (a serial port is a /dev path, `taptap` a program
# looked up on PATH, `command` a whole command line).
PATH_KEYS: tuple[str, ...] = ()
DEFAULT_TCP_PORT = 7160


@dataclass(frozen=True)
class TaptapOptions:
    """The taptap child to run and how its reports become points."""

    argv: tuple[str, ...]
    serial: str | None
    measurement: str
    status_measurement: str
    status_interval_s: float
    stale_after_s: float
    restart_delay_s: float
    restart_backoff_max_s: float
    stable_after_s: float
    max_line_bytes: int
    queue_size: int


def _argv(
    sec: Section, binary: str, serial: str, tcp: str, port: int
) -> tuple[list[str], str | None]:
    """The command line: exactly one of serial, tcp or command."""
    command = sec.raw("command")
    chosen = [k for k, v in (("command", command), ("serial", serial), ("tcp", tcp)) if v]
    if len(chosen) != 1:
        raise ConfigError(
            f'{sec.where}: taptap needs exactly one of: serial = "/dev/serial/by-id/..." (the '
            'RS485 adapter), tcp = "HOST" (a serial-over-TCP bridge, with port), or command = '
            f"[...] (a full command line); got {', '.join(chosen) or 'none'}"
        )
    if command:
        if not isinstance(command, list) or not all(isinstance(a, str) and a for a in command):
            raise ConfigError(
                f"{sec.where}.command = {command!r} is invalid: expected a list of strings"
            )
        return list(command), None
    if serial:
        return [binary, "observe", "--serial", serial], serial
    # taptap 0.1.1 refuses `--port` next to `--tcp` (both sit in one clap group), so the flag
    # is only passed for a port other than its default, which needs a newer taptap.
    argv = [binary, "observe", "--tcp", tcp]
    if port != DEFAULT_TCP_PORT:
        argv += ["--port", str(port)]
    return argv, None


def parse(sec: Section) -> TaptapOptions:
    """Validate a taptap source's options; every problem names its key."""
    binary = sec.string("taptap", "taptap")
    serial = sec.string("serial", "")
    tcp = sec.string("tcp", "")
    port = sec.integer("port", DEFAULT_TCP_PORT, minimum=1)
    sec.raw("command")
    measurement = sec.string("measurement", "tigo_power_report")
    status_measurement = sec.string("status_measurement", "taptap_status")
    status_interval_s = sec.duration("status_interval", 60.0, minimum=1.0)
    stale_after_s = sec.duration("stale_after", 900.0, minimum=1.0)
    restart_delay_s = sec.duration("restart_delay", 5.0, minimum=0.1)
    backoff_max_s = sec.duration("restart_backoff_max", 300.0, minimum=0.1)
    stable_after_s = sec.duration("stable_after", 60.0, minimum=0.0)
    max_line_bytes = sec.integer("max_line_bytes", 65536, minimum=256)
    queue_size = sec.integer("queue_size", 10000, minimum=1)
    sec.check_unknown()
    if port > 65535:
        raise ConfigError(f"{sec.where}.port = {port} is invalid: expected 1..65535")
    if not measurement.strip():
        raise ConfigError(f"{sec.where}.measurement must not be empty")
    argv, serial_port = _argv(sec, binary, serial, tcp, port)
    return TaptapOptions(
        argv=tuple(argv),
        serial=serial_port,
        measurement=measurement,
        status_measurement=status_measurement,
        status_interval_s=status_interval_s,
        stale_after_s=stale_after_s,
        restart_delay_s=restart_delay_s,
        restart_backoff_max_s=backoff_max_s,
        stable_after_s=stable_after_s,
        max_line_bytes=max_line_bytes,
        queue_size=queue_size,
    )
