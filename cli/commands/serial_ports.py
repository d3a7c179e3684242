"""``bridge-cli serial-ports``: find the RS485 adapter, its stable path, and whether it is free.

Seed 004's setup walks users through ``taptap list-serial-ports``, ``ls -la
/dev/serial/by-id/`` and ``fuser -v /dev/ttyUSB*``; this is the three in one: every port with
its ``/dev/serial/by-id`` path (stable across reboots and USB hubs, the one to put in the
config), USB vendor/product, and a probe that says whether taptap could open it now.

The probe opens the port without changing its settings and classifies what the kernel says:

- ``EACCES``: no permission; the fix is membership of the device's group (usually dialout);
- ``EBUSY``: another process holds it exclusively (TIOCEXCL, as taptap's serial library does);
- a held ``flock`` (pyserial's ``exclusive=True``): busy;
- other processes with the device open (read from /proc, like ``fuser``): busy, with their
  pids and names, since two readers of one serial port steal each other's bytes.
"""

from __future__ import annotations

import errno
import fcntl
import grp
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

BY_ID_DIR = Path("/dev/serial/by-id")
PROC = Path("/proc")


@dataclass
class PortStatus:
    """What the probe found: ``state`` is free, busy, no_permission or unavailable."""

    state: str
    detail: str = ""
    holders: list[dict[str, object]] = field(default_factory=list)


@dataclass
class PortInfo:
    """One serial port as listed."""

    device: str
    by_id: list[str]
    vid: str | None = None
    pid: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    serial_number: str | None = None
    description: str | None = None
    group: str | None = None
    status: PortStatus = field(default_factory=lambda: PortStatus("unknown"))


def by_id_links(directory: Path | None = None) -> dict[str, list[str]]:
    """Resolved device path -> the ``by-id`` symlinks pointing at it (sorted)."""
    links: dict[str, list[str]] = {}
    try:
        entries = sorted((directory or BY_ID_DIR).iterdir())
    except OSError:
        return links
    for entry in entries:
        if entry.is_symlink():
            target = str(entry.resolve())
            links.setdefault(target, []).append(str(entry))
    return links


def _group_of(path: str) -> str | None:
    try:
        gid = Path(path).stat().st_gid
    except OSError:
        return None
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def holders(device: str, proc: Path | None = None) -> list[dict[str, object]]:
    """Other processes with ``device`` open (only those this user may inspect), like fuser."""
    try:
        target = Path(device).stat()
    except OSError:
        return []
    found = []
    me = os.getpid()
    try:
        pids = [p for p in (proc or PROC).iterdir() if p.name.isdigit() and int(p.name) != me]
    except OSError:
        return []
    for pid_dir in pids:
        try:
            fds = list((pid_dir / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                info = fd.stat()
            except OSError:
                continue
            if info.st_rdev == target.st_rdev and info.st_ino == target.st_ino:
                try:
                    name = (pid_dir / "comm").read_text(encoding="utf-8").strip()
                except OSError:
                    name = "?"
                found.append({"pid": int(pid_dir.name), "command": name})
                break
    return found


def probe(device: str) -> PortStatus:
    """Try to open ``device`` as a serial reader would; classify the answer (see module doc)."""
    group = _group_of(device)
    try:
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            who = group or "the device's group"
            return PortStatus(
                "no_permission",
                f"no permission: add your user to group {who} "
                f'(sudo usermod -aG {who} "$USER", then log in again)',
            )
        if exc.errno == errno.EBUSY:
            return PortStatus(
                "busy",
                "busy: another process holds it exclusively (TIOCEXCL)",
                holders(device),
            )
        return PortStatus("unavailable", f"cannot open: {exc.strerror}")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return PortStatus(
                    "busy", "busy: another process holds an exclusive lock", holders(device)
                )
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    others = holders(device)
    if others:
        names = ", ".join(f"{h['command']} (pid {h['pid']})" for h in others)
        return PortStatus("busy", f"busy: open in {names}", others)
    return PortStatus("free")


def list_ports(paths: tuple[str, ...] = (), by_id_dir: Path | None = None) -> list[PortInfo]:
    """Every serial port pyserial sees (or just ``paths``), with by-id links and a probe."""
    from serial.tools import list_ports as pyserial_ports  # noqa: PLC0415 - import cost only here

    links = by_id_links(by_id_dir)
    listed = {p.device: p for p in pyserial_ports.comports()}
    # Without PATHS: every port pyserial lists, and by-id targets it may have missed.
    devices = [str(Path(p).resolve()) for p in paths] if paths else sorted(set(listed) | set(links))
    ports = []
    for device in devices:
        info = listed.get(device)
        port = PortInfo(device=device, by_id=links.get(device, []), group=_group_of(device))
        if info is not None:
            port.vid = f"{info.vid:04x}" if info.vid is not None else None
            port.pid = f"{info.pid:04x}" if info.pid is not None else None
            port.manufacturer = info.manufacturer
            port.product = info.product
            port.serial_number = info.serial_number
            port.description = None if info.description in (None, "n/a") else info.description
        port.status = probe(device)
        ports.append(port)
    return ports


@click.command("serial-ports")
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def command(paths: tuple[str, ...], as_json: bool) -> None:
    """List serial ports with their /dev/serial/by-id paths and whether they are free.

    With PATHS, probe just those (a by-id link or /dev/ttyUSB0). Each port shows USB
    vendor:product, manufacturer/product names, and its state: free, busy (with the
    processes holding it), no_permission (with the group to join) or unavailable. Use the
    by-id path in the config: /dev/ttyUSB numbers change between boots and hubs.
    """
    ports = list_ports(paths)
    if as_json:
        click.echo(json.dumps([asdict(p) for p in ports], ensure_ascii=False))
        return
    if not ports:
        click.echo("No serial ports found")
        return
    for port in ports:
        usb = f"{port.vid}:{port.pid}" if port.vid else "-"
        names = " ".join(n for n in (port.manufacturer, port.product) if n) or (
            port.description or "-"
        )
        click.echo(f"{port.device}  usb={usb}  {names}")
        for link in port.by_id or ["(no /dev/serial/by-id link)"]:
            click.echo(f"  by-id: {link}")
        if port.serial_number:
            click.echo(f"  serial: {port.serial_number}")
        state = port.status.detail or port.status.state
        click.echo(f"  state: {state}" + (f"  group={port.group}" if port.group else ""))
