"""bridge-cli serial-ports: listing, by-id resolution, and the busy/permission probe on real
pseudo-terminals (os.openpty gives a real tty; other processes hold it as taptap would)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from click.testing import CliRunner
from serial.tools import list_ports as pyserial_list_ports
from telegraf_bridge.cli.commands import serial_ports
from telegraf_bridge.cli.commands.serial_ports import PortStatus, list_ports, probe
from telegraf_bridge.cli.main import cli

NOBODY = 65534


@pytest.fixture
def pty() -> Iterator[str]:
    """The slave side of a fresh pseudo-terminal, e.g. /dev/pts/3."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    yield path
    os.close(master)


@pytest.fixture
def no_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine without serial hardware: pyserial lists nothing, /dev/serial/by-id is empty."""
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    monkeypatch.setattr(pyserial_list_ports, "comports", lambda include_links=False: [])
    monkeypatch.setattr(serial_ports, "BY_ID_DIR", by_id)
    return by_id


def holder(path: str, how: str) -> subprocess.Popen[str]:
    """Another process that keeps ``path`` open (``flock``: pyserial exclusive; ``tiocexcl``)."""
    code = {
        "flock": "import serial, sys; s = serial.Serial(sys.argv[1], exclusive=True)",
        "tiocexcl": "import fcntl, os, sys, termios; fd = os.open(sys.argv[1], os.O_RDWR | "
        "os.O_NOCTTY); fcntl.ioctl(fd, termios.TIOCEXCL)",
        "plain": "import os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)",
    }[how]
    proc = subprocess.Popen(
        [sys.executable, "-c", code + "; print('ready', flush=True); sys.stdin.read()", path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=10)


def probe_as(uid: int, path: str) -> PortStatus:
    """Run :func:`probe` in a forked child that dropped to ``uid`` (root cannot be refused)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop privileges, probe, report, exit without pytest's cleanup
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            status = probe(path)
            os.write(write, json.dumps(status.__dict__).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return PortStatus(**json.loads(data))


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")


def test_no_ports_prints_the_empty_message(no_ports: Path) -> None:
    result = CliRunner().invoke(cli, ["serial-ports"])
    assert result.exit_code == 0
    assert result.output == "No serial ports found\n"
    result = CliRunner().invoke(cli, ["serial-ports", "--json"])
    assert result.exit_code == 0 and json.loads(result.output) == []


def test_a_free_port_with_its_by_id_link(no_ports: Path, pty: str) -> None:
    link = no_ports / "usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"
    link.symlink_to(pty)
    result = CliRunner().invoke(cli, ["serial-ports", "--json"])
    assert result.exit_code == 0, result.output
    [port] = json.loads(result.output)
    assert port["device"] == pty and port["by_id"] == [str(link)]
    assert port["status"]["state"] == "free"
    text = CliRunner().invoke(cli, ["serial-ports"]).output
    assert f"by-id: {link}" in text and "state: free" in text
    # A by-id path given as an argument resolves to the same device.
    [again] = list_ports((str(link),), by_id_dir=no_ports)
    assert again.device == pty and again.by_id == [str(link)]


def test_exclusive_twice_is_busy(pty: str) -> None:
    first = serial.Serial(pty, exclusive=True)
    try:
        with pytest.raises(serial.SerialException):
            serial.Serial(pty, exclusive=True)
        status = probe(pty)
        assert status.state == "busy" and "exclusive lock" in status.detail
    finally:
        first.close()
    assert probe(pty).state == "free"


def test_another_process_holding_the_port_is_named(pty: str) -> None:
    for how, words in (("flock", "exclusive lock"), ("plain", "open in python")):
        proc = holder(pty, how)
        try:
            status = probe(pty)
            assert status.state == "busy", how
            assert words in status.detail
            assert {"pid": proc.pid, "command": Path(sys.executable).name[:15]} in status.holders
        finally:
            release(proc)
    assert probe(pty).state == "free"


@needs_root
def test_tiocexcl_is_busy_for_a_normal_user(pty: str) -> None:
    Path(pty).chmod(0o666)  # a throwaway pty: only TIOCEXCL may refuse the normal user
    proc = holder(pty, "tiocexcl")
    try:
        status = probe_as(NOBODY, pty)
    finally:
        release(proc)
    assert status.state == "busy"
    assert "TIOCEXCL" in status.detail


@needs_root
def test_no_permission_names_the_group_to_join(pty: str) -> None:
    Path(pty).chmod(0o620)
    group = serial_ports._group_of(pty)
    status = probe_as(NOBODY, pty)
    assert status.state == "no_permission"
    assert f"add your user to group {group}" in status.detail
    assert "usermod -aG" in status.detail


def test_the_probe_does_not_change_the_port_settings(pty: str) -> None:
    fd = os.open(pty, os.O_RDWR | os.O_NOCTTY)
    try:
        before = termios.tcgetattr(fd)
        assert probe(pty).state == "free"
        assert termios.tcgetattr(fd) == before
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nothing left locked by the probe
    finally:
        os.close(fd)


def test_a_missing_path_is_unavailable(tmp_path: Path) -> None:
    status = probe(str(tmp_path / "ttyUSB9"))
    assert status.state == "unavailable" and "No such file" in status.detail
