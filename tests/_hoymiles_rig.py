"""DTU stand-ins for the hoymiles tests: a real pymodbus Modbus TCP server, a WiFi DTU that
speaks hoymiles-wifi's framed protobuf protocol, and misbehaving TCP peers.

The Modbus server is pymodbus' own ModbusTcpServer serving holding registers laid out as a
DTU-Pro lays them out (rows of 20 registers at 0x1000 + 40 * i, serial at 0x2000), so the real
hoymiles_modbus client decodes them. The WiFi DTU answers the real hoymiles-wifi client with
responses built from the library's own protobuf classes: ``HM`` + command + sequence + CRC16
(poly 0x18005, reflected, init 0xFFFF) + length, paged by ``ap``/``cp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rig import free_port

from telegraf_bridge.testing import plugin_ctx

ROW_BASE = 0x1000
ROW_STRIDE = 40
SERIAL_ADDR = 0x2000
LAST_ADDR = SERIAL_ADDR + 3


@dataclass(frozen=True)
class Row:
    """One port row as the DTU holds it, in engineering units (scaled on encoding)."""

    serial: str  # 12 hex digits
    port: int
    pv_voltage: float = 35.0
    pv_current: float = 0.2
    grid_voltage: float = 238.1
    grid_frequency: float = 50.0
    pv_power: float = 10.2
    today: int = 751
    total: int = 74823
    temperature: float = 4.3
    status: int = 3
    alarm_code: int = 0
    alarm_count: int = 0
    link: int = 1
    data_type: int = 12

    def registers(self) -> list[int]:
        """The 20 registers of this row (40 bytes, big-endian)."""
        current_scale = 10 if self.serial.startswith("10") else 100
        raw = (
            bytes([self.data_type])
            + bytes.fromhex(self.serial)
            + bytes([self.port])
            + struct.pack(
                ">HHHHHHIhHHHB",
                round(self.pv_voltage * 10),
                round(self.pv_current * current_scale),
                round(self.grid_voltage * 10),
                round(self.grid_frequency * 100),
                round(self.pv_power * 10),
                self.today,
                self.total,
                round(self.temperature * 10),
                self.status,
                self.alarm_code,
                self.alarm_count,
                self.link,
            )
            + bytes(7)
        )
        assert len(raw) == 40, len(raw)
        return list(struct.unpack(">20H", raw))


def terminator() -> list[int]:
    """The row that ends the scan: data type 12 and a serial of all zeros."""
    return list(struct.unpack(">20H", b"\x0c" + bytes(39)))


class ModbusDtu:
    """pymodbus' ModbusTcpServer on a loopback port, holding a DTU's register map.

    Rows can be replaced while it runs (a reboot, nightfall); ``stop`` closes the port, which
    then refuses connections like a DTU that is switched off.
    """

    def __init__(
        self, rows: list[Row | list[int]], serial: str = "11d361600831", after: tuple[Row, ...] = ()
    ) -> None:
        self.port = free_port()
        self.serial = serial
        self._rows = list(rows)
        self._after = list(after)  # rows behind the terminator, which a scan must not read
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def _image(self) -> list[int]:
        values = [0] * (LAST_ADDR - ROW_BASE + 1)
        for index, row in enumerate([*self._rows, None, *self._after]):
            if row is None:
                regs = terminator()
            elif isinstance(row, Row):
                regs = row.registers()
            else:
                regs = row
            start = index * ROW_STRIDE
            values[start : start + 20] = regs
        serial_regs = list(struct.unpack(">3H", bytes.fromhex(self.serial)))
        offset = SERIAL_ADDR - ROW_BASE
        values[offset : offset + 3] = serial_regs
        return values

    def set_rows(self, rows: list[Row | list[int]]) -> None:
        """Replace the rows (the scan sees them from its next request on)."""
        from pymodbus.client import ModbusTcpClient

        self._rows = list(rows)
        image = self._image()
        # Through the server's own write path (function 16), as another Modbus master would;
        # pymodbus 3.16 keeps the served registers in a private copy of the data block.
        with ModbusTcpClient("127.0.0.1", port=self.port, timeout=5) as client:
            for start in range(0, len(image), 100):
                result = client.write_registers(
                    ROW_BASE + start, image[start : start + 100], device_id=1
                )
                assert not result.isError(), result

    def start(self) -> ModbusDtu:
        from pymodbus.datastore import (
            ModbusDeviceContext,
            ModbusSequentialDataBlock,
            ModbusServerContext,
        )
        from pymodbus.server import ModbusTcpServer

        # pymodbus 3.x announces its v4 datastore on every construction of the v3 one this rig
        # uses; the notice is muted.
        logging.getLogger("pymodbus").setLevel(logging.ERROR)

        # ModbusDeviceContext adds 1 to every request address, hence the + 1.
        block = ModbusSequentialDataBlock(ROW_BASE + 1, self._image())
        context = ModbusServerContext(devices=ModbusDeviceContext(hr=block), single=True)
        ready = threading.Event()

        async def serve() -> None:
            # pymodbus binds its transport to the running loop, so it is built in here.
            self._server = ModbusTcpServer(context, address=("127.0.0.1", self.port))
            ready.set()
            await self._server.serve_forever()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(serve())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="modbus-dtu")
        self._thread.start()
        ready.wait(10)
        _wait_listening(self.port)
        return self

    def stop(self) -> None:
        if self._loop is None or self._server is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
        with contextlib.suppress(Exception):
            future.result(10)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> ModbusDtu:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


# ---------------------------------------------------------------------------------------------
# Misbehaving peers


class RawPeer:
    """A TCP server on loopback whose reply to every connection is decided by ``behaviour``.

    ``"hang"`` accepts and reads but never answers; ``"partial"`` starts a valid Modbus TCP
    reply (header announcing 43 bytes, then 5 of them) and stalls mid-response; ``"garbage"``
    answers with bytes that are no valid frame; ``"close"`` accepts and closes at once.
    """

    def __init__(self, behaviour: str, garbage: bytes = b"\x00\x01\xff\xfe" * 8) -> None:
        self.behaviour = behaviour
        self.garbage = garbage
        self.port = free_port()
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True, name="raw-peer")

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            if self.behaviour == "close":
                conn.close()
                continue
            conn.settimeout(0.5)
            request = b""
            with contextlib.suppress(OSError):
                request = conn.recv(4096)
            if self.behaviour == "partial":
                # MBAP: transaction id echoed, protocol 0, length 43, unit, function 3, 40 bytes
                head = request[:2] + b"\x00\x00\x00\x2b" + request[6:7] + b"\x03\x28"
                with contextlib.suppress(OSError):
                    conn.sendall(head + b"\x0c\x11\x61\x80\x00")
                self._held.append(conn)
            elif self.behaviour == "garbage":
                with contextlib.suppress(OSError):
                    conn.sendall(self.garbage)
                conn.close()
            else:
                self._held.append(conn)

    def __enter__(self) -> RawPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
        for conn in self._held:
            conn.close()
        self._thread.join(5)


# ---------------------------------------------------------------------------------------------
# WiFi DTU (hoymiles-wifi protocol)


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (poly 0x8005 reflected, init 0xFFFF): the frame checksum of the protocol."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame(command: bytes, sequence: int, payload: bytes) -> bytes:
    """``HM`` + command + sequence + CRC16 + total length + payload."""
    return (
        b"HM" + command + struct.pack(">HHH", sequence, crc16(payload), len(payload) + 10) + payload
    )


@dataclass
class WifiInverter:
    """One inverter in WiFi units (raw integers as the DTU sends them)."""

    serial: int  # e.g. 0x116180123456
    voltage: int = 2381  # 0.1 V
    frequency: int = 5000  # 0.01 Hz
    active_power: int = 3985  # 0.1 W
    reactive_power: int = -12  # 0.1 var
    current: int = 168  # 0.01 A
    power_factor: int = 998  # 0.1 %
    temperature: int = 213  # 0.1 degC
    warning_number: int = 0
    link_status: int = 1
    ports: list[dict[str, int]] = field(default_factory=list)


@dataclass
class WifiDtu:
    """A loopback DTU on the WiFi protocol's port, answering RealDataNew in ``pages`` pages."""

    serial: str = "4143A0123456"
    inverters: list[WifiInverter] = field(default_factory=list)
    timestamp: int = 0  # DTU time, epoch seconds; 0 = now
    dtu_power: int = 7970  # 0.1 W
    dtu_daily_energy: int = 1430  # Wh
    pages: int = 1
    port: int = field(default_factory=free_port)
    requests: list[tuple[bytes, int]] = field(default_factory=list)  # (command, cp)
    respond: Callable[[bytes], bytes | None] | None = None  # override for fault tests
    stall_after_reply: bool = False  # keep the connection open after replying (mid-response)

    def _page(self, cp: int) -> bytes:
        from hoymiles_wifi.protobuf import RealDataNew_pb2

        message = RealDataNew_pb2.RealDataNewReqDTO()
        message.device_serial_number = self.serial
        message.timestamp = self.timestamp or int(time.time())
        message.ap = self.pages
        message.cp = cp
        if cp == 0:
            message.dtu_power = self.dtu_power
            message.dtu_daily_energy = self.dtu_daily_energy
        mine = [inv for i, inv in enumerate(self.inverters) if i % self.pages == cp]
        for inv in mine:
            sgs = message.sgs_data.add()
            sgs.serial_number = inv.serial
            sgs.voltage = inv.voltage
            sgs.frequency = inv.frequency
            sgs.active_power = inv.active_power
            sgs.reactive_power = inv.reactive_power
            sgs.current = inv.current
            sgs.power_factor = inv.power_factor
            sgs.temperature = inv.temperature
            sgs.warning_number = inv.warning_number
            sgs.link_status = inv.link_status
            for port in inv.ports:
                pv = message.pv_data.add()
                pv.serial_number = inv.serial
                for key, value in port.items():
                    setattr(pv, key, value)
        return bytes(message.SerializeToString())

    def handle(self, request: bytes) -> bytes | None:
        from hoymiles_wifi.protobuf import RealDataNew_pb2

        if self.respond is not None:
            return self.respond(request)
        command = request[2:4]
        (sequence,) = struct.unpack(">H", request[4:6])
        body = RealDataNew_pb2.RealDataNewResDTO.FromString(request[10:])
        self.requests.append((command, body.cp))
        return frame(command, sequence, self._page(body.cp))

    @contextlib.contextmanager
    def running(self) -> Iterator[WifiDtu]:
        loop = asyncio.new_event_loop()
        server_box: list[asyncio.AbstractServer] = []

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                request = await asyncio.wait_for(reader.read(4096), 5)
                reply = self.handle(request)
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
                if reply is None or self.stall_after_reply:
                    await asyncio.sleep(30)  # hang
            except asyncio.CancelledError:
                pass  # the rig is stopping; a hanging handler just ends
            finally:
                writer.close()

        async def start() -> None:
            server_box.append(await asyncio.start_server(on_client, "127.0.0.1", self.port))

        thread = threading.Thread(target=loop.run_forever, daemon=True, name="wifi-dtu")
        thread.start()
        asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        try:
            yield self
        finally:

            async def stop() -> None:
                server_box[0].close()
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()

            asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)


# ---------------------------------------------------------------------------------------------
# Running the source in-process


def make_ctx(options: dict[str, Any], state_dir: Any, interval_s: float = 60.0) -> Any:
    """A PluginContext as plugin_main builds it, for driving HoymilesSource directly."""
    return plugin_ctx("hoymiles", options, state_dir, interval_s)


class FakeClock:
    """Monotonic and wall time the test moves by hand (backoff without sleeping)."""

    def __init__(self, wall_ns: int = 1_763_899_980 * 10**9) -> None:
        self.mono = 1000.0
        self.wall = wall_ns

    def monotonic(self) -> float:
        return self.mono

    def wall_ns(self) -> int:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += round(seconds * 10**9)


def start_source(options: dict[str, Any], tmp_path: Any, clock: FakeClock) -> Any:
    """A HoymilesSource on ``clock``, with its state under ``tmp_path``."""
    from telegraf_bridge.plugins.hoymiles.plugin import HoymilesSource

    return HoymilesSource(
        make_ctx(options, tmp_path / "state"), monotonic=clock.monotonic, wall_ns=clock.wall_ns
    )


def gather(source: Any) -> list[Any]:
    """The points of one gather."""
    out: list[Any] = []
    source.gather(out.append)
    return out
