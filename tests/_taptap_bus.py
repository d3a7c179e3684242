"""Synthesise Tigo TAP RS-485 bus traffic that the real ``taptap observe`` decodes.

taptap (https://github.com/willglynn/taptap, MIT) is a passive observer: it listens to the
controller (CCA) polling its gateways (TAPs) and prints one JSON object per PV power report.
To test a plugin that wraps it honestly we feed the *real* binary bytes shaped exactly like the
bus it was written for. Everything here follows ``docs/protocol.md`` of taptap 0.1.1 (section
names are quoted as "protocol.md § …"), cross-checked against the 0.1.1 source where the two
differ (noted where it matters).

Layers, bottom up (each has a small function below):

* Gateway link layer (§ "Gateway link layer"): a frame is ``address(2) type(2) payload CRC(2)``,
  CRC-16 with polynomial 0x8408 (reflected 0x1021) and initial value 0x8408, little-endian;
  the body is escaped (``7E`` → ``7E 00``, ``24`` → ``7E 01`` …) and delimited by ``7E 07`` …
  ``7E 08``; gateways prefix ``FF``, the controller ``00 FF FF``. The address's ``0x8000`` bit
  says "from gateway"; the low 15 bits are the gateway ID.
* Gateway transport layer (§ "Receive request" / "Receive response"): the controller polls each
  gateway with a receive request (type ``01 48``) carrying a packet number; the gateway answers
  (type ``01 49``) with a status structure, its *slot counter*, and zero or more PV packets.
  Commands (§ "Command request/response", types ``0B 0F``/``0B 10``) carry PV application
  requests such as the node table request. Identify (``00 3A``/``00 3B``) and the enumeration
  exchange (§ "Enumeration start request" …) reveal a gateway's 64-bit hardware address.
* PV network layer (§ "PV network layer"): each received packet has a 7-byte header
  ``type(1) node_id(2) short_address(2) dsn(1) length(1)``.
* PV application layer (§ "Power report", "Node table"): a power report (type ``31``) is 13
  bytes: two 12-bit pairs (V in/V out; current/temperature), the duty cycle, 3 unknown bytes,
  the slot counter at measurement time, and the RSSI.

Why the cold start matters: taptap only prints a power report once it has a *slot clock* for that
gateway, and it builds that clock from a receive request (it notes the wall-clock time when it
decodes the request, ``SystemTime::now()``) followed by the gateway's receive response (which
carries the slot counter captured at that moment). Without that pair it logs "discarding power
report … due to missing slot clock" on stderr. A report's timestamp is then
``time_of_request + 5 ms * (report slot - response slot)``, computed in buckets of 1000 slots
(see ``observer/slot_clock.rs``); :class:`TapBus` keeps every report in the same bucket as its
receive response, so the timestamp is exactly the decode time of the preceding receive request
minus ``slot_lag * 5 ms``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

# --- gateway link layer (protocol.md § "Gateway link layer") ---------------------------------

#: Frame types (protocol.md § "Gateway transport layer"; ``gateway/link.rs``).
RECEIVE_REQUEST = 0x0148
RECEIVE_RESPONSE = 0x0149
COMMAND_REQUEST = 0x0B0F
COMMAND_RESPONSE = 0x0B10
PING_REQUEST = 0x0B00
PING_RESPONSE = 0x0B01
ENUMERATION_START_REQUEST = 0x0014
ENUMERATION_START_RESPONSE = 0x0015
ENUMERATION_REQUEST = 0x0038
ENUMERATION_RESPONSE = 0x0039
ASSIGN_GATEWAY_ID_REQUEST = 0x003C
ASSIGN_GATEWAY_ID_RESPONSE = 0x003D
IDENTIFY_REQUEST = 0x003A
IDENTIFY_RESPONSE = 0x003B
VERSION_REQUEST = 0x000A
VERSION_RESPONSE = 0x000B
ENUMERATION_END_REQUEST = 0x0E02
ENUMERATION_END_RESPONSE = 0x0006

#: PV packet types (protocol.md § "PV application layer").
PV_NODE_TABLE_REQUEST = 0x26
PV_NODE_TABLE_RESPONSE = 0x27
PV_POWER_REPORT = 0x31

_ESCAPES = {0x7E: 0x00, 0x24: 0x01, 0x23: 0x02, 0x25: 0x03, 0xA4: 0x04, 0xA3: 0x05, 0xA5: 0x06}
_FROM_GATEWAY = 0x8000
#: taptap's link receiver drops frames whose unescaped body exceeds 256 bytes (a "giant").
MAX_FRAME_BODY = 256


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/CCITT (poly 0x8408 reflected) with the odd initial value 0x8408.

    protocol.md § "Checksum": the gateway seeds the CRC with the polynomial itself, so no stock
    CRC-16 variant matches; the worked example there (``92 01 01 49 00 FF 7C DB C2`` → 0x85A3)
    is a unit test of this function.
    """
    crc = 0x8408
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def escape(body: bytes) -> bytes:
    """Apply link-layer escaping (protocol.md § "Escaping").

    ``7E`` and ``23 24 25 A3 A4 A5`` never appear raw between the delimiters; each becomes
    ``7E`` + a code. Power-report fields, CRCs and addresses hit these bytes routinely, so the
    synthesiser must escape or taptap would see noise and drop the frame.
    """
    out = bytearray()
    for byte in body:
        code = _ESCAPES.get(byte)
        if code is None:
            out.append(byte)
        else:
            out += bytes((0x7E, code))
    return bytes(out)


def encode_frame(gateway_id: int, frame_type: int, payload: bytes, *, from_gateway: bool) -> bytes:
    """Encode one gateway link-layer frame exactly as it appears on the wire.

    protocol.md § "Contents": ``address type payload crc`` (CRC little-endian over the first
    three), escaped, between ``7E 07`` and ``7E 08``, with the gateway's ``FF`` or the
    controller's ``00 FF FF`` preamble. ``from_gateway`` sets the address's ``0x8000`` bit.
    """
    if not 0 <= gateway_id <= 0x7FFF:
        raise ValueError(f"gateway ID must be 15 bits, got {gateway_id:#x}")
    address = gateway_id | (_FROM_GATEWAY if from_gateway else 0)
    body = address.to_bytes(2, "big") + frame_type.to_bytes(2, "big") + payload
    if len(body) + 2 > MAX_FRAME_BODY:
        raise ValueError(f"frame body of {len(body) + 2} bytes exceeds taptap's {MAX_FRAME_BODY}")
    body += crc16(body).to_bytes(2, "little")
    preamble = b"\xff" if from_gateway else b"\x00\xff\xff"
    return preamble + b"\x7e\x07" + escape(body) + b"\x7e\x08"


def controller_frame(gateway_id: int, frame_type: int, payload: bytes = b"") -> bytes:
    """A frame the controller sends *to* a gateway (address bit 15 clear)."""
    return encode_frame(gateway_id, frame_type, payload, from_gateway=False)


def gateway_frame(gateway_id: int, frame_type: int, payload: bytes = b"") -> bytes:
    """A frame a gateway sends *to* the controller (address bit 15 set)."""
    return encode_frame(gateway_id, frame_type, payload, from_gateway=True)


# --- slot counter (protocol.md § "Slot counter") ---------------------------------------------

SLOTS_PER_EPOCH = 12000
SLOTS_PER_CYCLE = 4 * SLOTS_PER_EPOCH
#: Nominal slot length taptap assumes (``NOMINAL_DURATION_PER_SLOT``).
SLOT_SECONDS = 0.005
#: taptap's slot clock keeps one wall-clock anchor per bucket of this many slots.
SLOTS_PER_BUCKET = 1000


def slot_counter(absolute_slot: int) -> int:
    """Encode an absolute slot (0..47999, wrapping) as the 16-bit on-air slot counter.

    protocol.md § "Slot counter": the top two bits count one-minute epochs, the low 14 bits
    count 0..11999 within the epoch, so the counter jumps 0x2EDF → 0x4000 and so on.
    """
    absolute_slot %= SLOTS_PER_CYCLE
    epoch, number = divmod(absolute_slot, SLOTS_PER_EPOCH)
    return (epoch << 14) | number


# --- PV application layer: power report (protocol.md § "Power report") ----------------------

#: The three unknown bytes between temperature and slot counter, as in the protocol.md example.
POWER_REPORT_UNKNOWN = bytes.fromhex("81006e")


def _u12_pair(a: int, b: int) -> bytes:
    """Pack two 12-bit values big-endian into 3 bytes (``U12Pair`` in power_report.rs)."""
    return bytes(((a >> 4) & 0xFF, ((a & 0xF) << 4) | (b >> 8), b & 0xFF))


def _quantise(name: str, value: float, scale: int, lo: int, hi: int) -> int:
    raw = round(value * scale)
    if not lo <= raw <= hi:
        raise ValueError(f"{name}={value!r} is outside the wire range [{lo / scale}, {hi / scale}]")
    return raw


@dataclass(frozen=True)
class RawPowerReport:
    """The integers that go on the wire for one power report."""

    voltage_in: int  # 12 bits, 0.05 V
    voltage_out: int  # 12 bits, 0.1 V
    current: int  # 12 bits, 5 mA
    duty_cycle: int  # 8 bits, 1/255
    temperature: int  # 12-bit two's complement, 0.1 degC (stored here as a signed int)
    rssi: int  # 8 bits


@dataclass(frozen=True)
class PowerReading:
    """One optimiser measurement as it should appear in taptap's JSON.

    Values are in engineering units and are quantised to the wire resolution on encoding
    (protocol.md § "Power report"; scaling as in ``observer/event.rs``):

    ==============  ============  ========================  ==========================
    field           wire          range                     taptap prints
    ==============  ============  ========================  ==========================
    voltage_in      u12 * 0.05 V  0 … 204.75                ``raw / 20``
    voltage_out     u12 * 0.1 V   0 … 409.5                 ``raw / 10``
    current         u12 * 5 mA    0 … 20.475                ``raw / 200``
    duty_cycle      u8 / 255      0 … 1                     ``raw / 255``
    temperature_c   s12 * 0.1 °C  -204.8 … 204.7            ``raw / 10`` (sign-extended)
    rssi            u8            0 … 255                   ``raw`` (integer)
    ==============  ============  ========================  ==========================

    ``raw = round(value * scale)`` (Python's round-half-even); out-of-range values raise
    ``ValueError`` rather than wrap. ``slot_lag`` says how many 5 ms slots before the gateway's
    current slot counter the measurement was taken (optimisers report late); taptap then stamps
    the report that much earlier.
    """

    gateway_id: int
    node_id: int
    voltage_in: float
    voltage_out: float
    current: float
    duty_cycle: float
    temperature_c: float
    rssi: int
    slot_lag: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.gateway_id <= 0x7FFF:
            raise ValueError(f"gateway_id must be 1..0x7FFF, got {self.gateway_id}")
        if not 1 <= self.node_id <= 0xFFFF:
            raise ValueError(f"node_id must be 1..0xFFFF (0 is broadcast), got {self.node_id}")
        if self.slot_lag < 0:
            raise ValueError("slot_lag must be >= 0")
        self.raw()  # validate ranges early

    def raw(self) -> RawPowerReport:
        """Quantise to the integers on the wire."""
        if not 0 <= self.rssi <= 255 or int(self.rssi) != self.rssi:
            raise ValueError(f"rssi must be an integer 0..255, got {self.rssi!r}")
        return RawPowerReport(
            voltage_in=_quantise("voltage_in", self.voltage_in, 20, 0, 0xFFF),
            voltage_out=_quantise("voltage_out", self.voltage_out, 10, 0, 0xFFF),
            current=_quantise("current", self.current, 200, 0, 0xFFF),
            duty_cycle=_quantise("duty_cycle", self.duty_cycle, 255, 0, 0xFF),
            temperature=_quantise("temperature_c", self.temperature_c, 10, -0x800, 0x7FF),
            rssi=int(self.rssi),
        )

    def expected_fields(self) -> dict[str, float | int]:
        """The measurement fields exactly as taptap prints them (same IEEE-754 divisions).

        Rust's ``raw as f64 / 20.0`` and Python's ``raw / 20`` are both correctly rounded
        divisions of exactly representable operands, so ``==`` against the parsed JSON is exact.
        """
        raw = self.raw()
        return {
            "voltage_in": raw.voltage_in / 20,
            "voltage_out": raw.voltage_out / 10,
            "current": raw.current / 200,
            "dc_dc_duty_cycle": raw.duty_cycle / 255,
            "temperature": raw.temperature / 10,
            "rssi": raw.rssi,
        }

    def expected_event(
        self, gateway_address: bytes | None = None, node_address: bytes | None = None
    ) -> dict[str, object]:
        """taptap's JSON object for this reading, minus ``timestamp`` (key order as printed).

        ``address`` keys appear only when taptap learned the identity (see :class:`TapBus`);
        taptap prints a long address as a list of 8 integers and IDs as plain integers.
        """
        gateway: dict[str, object] = {"id": self.gateway_id}
        if gateway_address is not None:
            gateway["address"] = list(gateway_address)
        node: dict[str, object] = {"id": self.node_id}
        if node_address is not None:
            node["address"] = list(node_address)
        return {"gateway": gateway, "node": node, **self.expected_fields()}

    def quantised(self) -> PowerReading:
        """This reading with every value replaced by what taptap will print for it."""
        exp = self.expected_fields()
        return PowerReading(
            gateway_id=self.gateway_id,
            node_id=self.node_id,
            voltage_in=exp["voltage_in"],
            voltage_out=exp["voltage_out"],
            current=exp["current"],
            duty_cycle=exp["dc_dc_duty_cycle"],
            temperature_c=exp["temperature"],
            rssi=int(exp["rssi"]),
            slot_lag=self.slot_lag,
        )

    def payload(self, slot: int) -> bytes:
        """The 13-byte PV power report (packet type 0x31) measured at on-air slot ``slot``."""
        raw = self.raw()
        return (
            _u12_pair(raw.voltage_in, raw.voltage_out)
            + bytes((raw.duty_cycle,))
            + _u12_pair(raw.current, raw.temperature & 0xFFF)
            + POWER_REPORT_UNKNOWN
            + slot.to_bytes(2, "big")
            + bytes((raw.rssi,))
        )


# --- identities: long addresses and barcodes (protocol.md § "Barcodes") ----------------------

_BARCODE_CRC_ALPHABET = "GHJKLMNPRSTVWXYZ"


def _crc4(address: bytes) -> int:
    # CRC-4, polynomial 0x3, initial value 0x2, MSB first (protocol.md § "Barcodes").
    crc = 0x2
    for byte in address:
        value = byte ^ (crc << 4)
        for _ in range(8):
            value = ((value << 1) ^ 0x30) if value & 0x80 else (value << 1)
            value &= 0xFF
        crc = value >> 4
    return crc


def barcode(address: bytes) -> str:
    """Tigo barcode of a 64-bit long address, as taptap's ``Barcode`` displays it.

    ``04:C0:5B:40:00:9A:57:A2`` ↔ ``4-9A57A2L``: vendor prefix implied, one nibble, ``-`` for
    the run of zeroes, the remaining hex digits, then a CRC-4 letter. Addresses outside Tigo's
    ``04:C0:5B`` prefix print as colon-separated hex (as taptap does).
    """
    if len(address) != 8:
        raise ValueError("a long address is 8 bytes")
    if address[:3] != b"\x04\xc0\x5b":
        return ":".join(f"{b:02X}" for b in address)
    digits = f"{address[3] & 0xF:X}" + address[4:].hex().upper()
    return f"{address[3] >> 4:X}-{digits.lstrip('0')}{_BARCODE_CRC_ALPHABET[_crc4(address)]}"


def long_address(barcode_text: str) -> bytes:
    """Inverse of :func:`barcode` (checks the CRC letter)."""
    if len(barcode_text) < 4 or barcode_text[1] != "-":
        raise ValueError(f"not a Tigo barcode: {barcode_text!r}")
    rest = int(barcode_text[2:-1], 16)
    value = rest | ((0x04C05B0 | int(barcode_text[0], 16)) << 36)
    address = value.to_bytes(8, "big")
    if barcode(address) != barcode_text.upper():
        raise ValueError(f"bad barcode check letter: {barcode_text!r}")
    return address


# --- the bus -----------------------------------------------------------------------------------

#: Node-table response layouts. protocol.md § "Node table" documents ``start(2) count(2)
#: entries``; taptap 0.1.1's parser (pv/application/node_table.rs) expects ``count(2) entries``
#: and rejects the documented layout (fixed upstream after 0.1.1 by adding ``start_at``).
NodeTableLayout = Literal["documented", "taptap-0.1.1"]


@dataclass
class _GatewayState:
    packet_number: int
    dsn: int
    command_sequence: int = 0
    status_polls: int = 0


@dataclass
class TapBus:
    """A stateful simulated controller + gateways producing the bytes an RS-485 sniffer sees.

    Use :meth:`cold_start` once, then :meth:`cycle` for each round of power reports; or the
    one-shot :func:`bus_bytes` and the streaming :meth:`stream`.

    * ``gateway_addresses``: gateway ID → 8-byte long address. Emitted as identify
      request/response pairs (``identities="identify"``) or as a full enumeration exchange
      (``identities="enumeration"``); either makes taptap add ``gateway.address``.
    * ``node_addresses``: gateway ID → {node ID → 8-byte long address}. Emitted as the
      controller's node-table command exchange (PV types 0x26/0x27) in ``node_table_layout``
      (see :data:`NodeTableLayout`: only ``"taptap-0.1.1"`` makes taptap 0.1.1 add
      ``node.address``).
    * ``start_slot`` / ``slot_step``: the on-air slot counter of the first receive response and
      how far it advances per :meth:`cycle`. The default (start mid-bucket, one bucket per cycle)
      keeps each report in the same 1000-slot bucket as its response, so taptap stamps it with
      the wall-clock time at which it decoded that cycle's receive request, minus
      ``slot_lag * 5 ms``. ``slot_lag`` must therefore not exceed ``start_slot % 1000``.
    * ``reports_per_response``: power reports per receive response (each packet is 20 bytes;
      a frame body may not exceed 256 bytes, so at most 11 fit).
    """

    gateway_addresses: Mapping[int, bytes] = field(default_factory=dict)
    node_addresses: Mapping[int, Mapping[int, bytes]] = field(default_factory=dict)
    identities: Literal["identify", "enumeration"] = "identify"
    node_table_layout: NodeTableLayout = "documented"
    start_slot: int = 500
    slot_step: int = SLOTS_PER_BUCKET
    reports_per_response: int = 8
    _slot: int = field(init=False, default=0)
    _gateways: dict[int, _GatewayState] = field(init=False, default_factory=dict)
    _cycles: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not 1 <= self.reports_per_response <= 11:
            raise ValueError("reports_per_response must be 1..11 (256-byte frame limit)")
        for gid, addr in self.gateway_addresses.items():
            if len(addr) != 8:
                raise ValueError(f"gateway {gid}: long address must be 8 bytes")
        for gid, table in self.node_addresses.items():
            for nid, addr in table.items():
                if len(addr) != 8 or not 1 <= nid <= 0xFFFF:
                    raise ValueError(f"gateway {gid} node {nid}: bad node ID or address")
        self._slot = self.start_slot % SLOTS_PER_CYCLE

    @property
    def slot(self) -> int:
        """The absolute slot (0..47999) of the most recent receive response."""
        return self._slot

    def _state(self, gateway_id: int) -> _GatewayState:
        if gateway_id not in self._gateways:
            # Arbitrary but realistic starting points (protocol.md shows packet # 0x1883).
            self._gateways[gateway_id] = _GatewayState(
                packet_number=0x1800 + gateway_id % 0x100, dsn=(0x40 + gateway_id) % 0x100
            )
        return self._gateways[gateway_id]

    # transport layer -------------------------------------------------------------------------

    def receive_exchange(self, gateway_id: int, packets: Sequence[bytes] = ()) -> bytes:
        """One poll: receive request (``01 48``) and the gateway's receive response (``01 49``).

        protocol.md § "Receive request"/"Receive response". The request payload is
        ``00 01 <packet #> 04``. The response uses the full ``00 E0`` status structure every 16th
        poll (as gateways do) and the compact ``00 FE`` otherwise, then the slot counter and the
        packets. taptap timestamps the slot counter with the moment it decoded the request, so
        request and response always travel together here.
        """
        state = self._state(gateway_id)
        number = state.packet_number
        request = controller_frame(
            gateway_id, RECEIVE_REQUEST, b"\x00\x01" + number.to_bytes(2, "big") + b"\x04"
        )
        slot = slot_counter(self._slot).to_bytes(2, "big")
        used = min(len(packets), 0xFF)
        if state.status_polls % 16 == 0:
            status = b"\x00\xe0" + bytes((used, 0x0E)) + b"\x00\x01\x02\x00"
            status += number.to_bytes(2, "big")
        else:
            status = b"\x00\xfe" + bytes((used, number & 0xFF))
        state.status_polls += 1
        response = gateway_frame(gateway_id, RECEIVE_RESPONSE, status + slot + b"".join(packets))
        # The next request asks for packets after the ones just delivered.
        state.packet_number = (number + len(packets)) & 0xFFFF
        return request + response

    def command_exchange(
        self, gateway_id: int, packet_type: int, request: bytes, response_type: int, response: bytes
    ) -> bytes:
        """A command request (``0B 0F``) and its immediate command response (``0B 10``).

        protocol.md § "Command request"/"Command response": request header ``00 00 00 <type>
        <seq>``, response header ``00 <tx free> 00 <type> <seq>``. Sequence numbers skip ``00``
        and ``FF`` as the controller does; taptap pairs the two by (gateway, sequence).
        """
        state = self._state(gateway_id)
        state.command_sequence = state.command_sequence % 0xFE + 1
        seq = state.command_sequence
        req = controller_frame(
            gateway_id, COMMAND_REQUEST, bytes((0, 0, 0, packet_type, seq)) + request
        )
        resp = gateway_frame(
            gateway_id, COMMAND_RESPONSE, bytes((0, 0x0D, 0, response_type, seq)) + response
        )
        return req + resp

    def identify_exchange(self, gateway_id: int, address: bytes) -> bytes:
        """Identify request (``00 3A``) / response (``00 3B``: long address + gateway ID).

        protocol.md § "Identify request"/"Identify response". Outside an enumeration taptap
        accepts the identity as-is, which is what puts ``gateway.address`` into its JSON.
        """
        return controller_frame(gateway_id, IDENTIFY_REQUEST) + gateway_frame(
            gateway_id, IDENTIFY_RESPONSE, address + gateway_id.to_bytes(2, "big")
        )

    def enumeration(self, enumeration_id: int = 0x1235, version: str = "") -> bytes:
        """The controller's gateway enumeration, generalised from protocol.md's example.

        Enumeration start (``00 14``, *5) → per gateway: enumeration request/response at the
        temporary ID and assign-gateway-ID request/response → a few unanswered enumeration
        requests → identify (+ version) per gateway → enumeration end (``0E 02``/``00 06``).
        taptap collects identities during the exchange and adopts them when it sees the end
        response, *replacing* any identities it learned before.
        """
        unknown = bytes.fromhex("37249266")  # constant in every capture (protocol.md)
        enum_to = enumeration_id.to_bytes(2, "big")
        out = bytearray()
        for _ in range(5):
            out += controller_frame(0, ENUMERATION_START_REQUEST, unknown + enum_to)
            out += gateway_frame(0, ENUMERATION_START_RESPONSE)
        for gid, addr in self.gateway_addresses.items():
            out += controller_frame(enumeration_id, ENUMERATION_REQUEST)
            out += gateway_frame(enumeration_id, ENUMERATION_RESPONSE, addr + enum_to)
            out += controller_frame(
                enumeration_id, ASSIGN_GATEWAY_ID_REQUEST, unknown + addr + gid.to_bytes(2, "big")
            )
            out += gateway_frame(enumeration_id, ASSIGN_GATEWAY_ID_RESPONSE)
        for _ in range(5):
            out += controller_frame(enumeration_id, ENUMERATION_REQUEST)
        for gid, addr in self.gateway_addresses.items():
            out += self.identify_exchange(gid, addr)
            if version:
                out += controller_frame(gid, VERSION_REQUEST)
                out += gateway_frame(gid, VERSION_RESPONSE, version.encode())
        first = next(iter(self.gateway_addresses), 1)
        out += controller_frame(first, ENUMERATION_END_REQUEST)
        out += gateway_frame(first, ENUMERATION_END_RESPONSE)
        return bytes(out)

    def node_table(self, gateway_id: int, nodes: Mapping[int, bytes], page_size: int = 12) -> bytes:
        """Read the gateway's node table the way the controller does (protocol.md § "Node table").

        Node table requests (PV ``26``, payload = start index) start at 0 and continue after the
        last node ID returned; the gateway answers (PV ``27``) with up to ``page_size`` entries
        of ``long address(8) node ID(2)``; an empty page ends the table. taptap (node_table.rs)
        commits the table only when it sees that empty page after a gap-free walk.
        """
        out = bytearray()
        start = 0
        ids = sorted(nodes)
        pages = [ids[i : i + page_size] for i in range(0, len(ids), page_size)] + [[]]
        for page in pages:
            entries = b"".join(nodes[n] + n.to_bytes(2, "big") for n in page)
            data = len(page).to_bytes(2, "big") + entries
            if self.node_table_layout == "documented":
                first = page[0] if page else start
                data = first.to_bytes(2, "big") + data
            out += self.command_exchange(
                gateway_id,
                PV_NODE_TABLE_REQUEST,
                start.to_bytes(2, "big"),
                PV_NODE_TABLE_RESPONSE,
                data,
            )
            if page:
                start = page[-1] + 1
        return bytes(out)

    # PV network layer ------------------------------------------------------------------------

    def pv_packet(self, gateway_id: int, packet_type: int, node_id: int, data: bytes) -> bytes:
        """A received PV packet: 7-byte header (protocol.md § "PV network layer") + data."""
        state = self._state(gateway_id)
        state.dsn = (state.dsn + 1) & 0xFF
        short_address = (0x0100 + node_id) & 0xFFFF  # ephemeral 802.15.4 short address
        header = bytes((packet_type,)) + node_id.to_bytes(2, "big")
        header += short_address.to_bytes(2, "big") + bytes((state.dsn, len(data)))
        return header + data

    # public building blocks ------------------------------------------------------------------

    def gateway_ids(self, readings: Iterable[PowerReading] = ()) -> list[int]:
        """Every gateway this bus knows about, in a stable order."""
        ids = dict.fromkeys(self.gateway_addresses)
        ids.update(dict.fromkeys(self.node_addresses))
        ids.update(dict.fromkeys(r.gateway_id for r in readings))
        return list(ids)

    def cold_start(self, gateway_ids: Iterable[int] = ()) -> bytes:
        """What an observer needs before power reports make sense.

        Gateway identities (identify or enumeration), node tables, then one empty receive
        exchange per gateway so taptap's slot clock for that gateway exists.
        """
        out = bytearray()
        ids = list(dict.fromkeys([*self.gateway_ids(), *gateway_ids]))
        if self.gateway_addresses:
            if self.identities == "enumeration":
                out += self.enumeration()
            else:
                for gid, addr in self.gateway_addresses.items():
                    out += self.identify_exchange(gid, addr)
        for gid, nodes in self.node_addresses.items():
            out += self.node_table(gid, nodes)
        for gid in ids:
            out += self.receive_exchange(gid)
        return bytes(out)

    def cycle(self, readings: Sequence[PowerReading]) -> bytes:
        """One polling round: advance the slot counter, deliver ``readings`` per gateway.

        Every gateway that has readings gets ``ceil(n / reports_per_response)`` receive
        exchanges; gateways without readings still get an empty poll (as on a real bus).
        """
        if self._cycles or self._gateways:
            self._slot = (self._slot + self.slot_step) % SLOTS_PER_CYCLE
        self._cycles += 1
        in_bucket = self._slot % SLOTS_PER_BUCKET
        out = bytearray()
        by_gateway: dict[int, list[PowerReading]] = {
            gid: [] for gid in [*self.gateway_ids(readings), *self._gateways]
        }
        for reading in readings:
            if reading.slot_lag > in_bucket:
                raise ValueError(
                    f"slot_lag {reading.slot_lag} would cross a 1000-slot bucket (slot offset"
                    f" {in_bucket}); raise start_slot % 1000 for an exact timestamp"
                )
            by_gateway[reading.gateway_id].append(reading)
        for gid, batch in by_gateway.items():
            if not batch:
                out += self.receive_exchange(gid)
                continue
            for i in range(0, len(batch), self.reports_per_response):
                packets = [
                    self.pv_packet(
                        gid,
                        PV_POWER_REPORT,
                        r.node_id,
                        r.payload(slot_counter(self._slot - r.slot_lag)),
                    )
                    for r in batch[i : i + self.reports_per_response]
                ]
                out += self.receive_exchange(gid, packets)
        return bytes(out)

    def stream(
        self,
        cycles: Iterable[Sequence[PowerReading]],
        *,
        interval_s: float,
        cold_start: bool = True,
    ) -> Iterator[tuple[float, bytes]]:
        """Chunks for :class:`BusServer`: ``(delay before sending, bytes)`` per cycle.

        The first chunk (no delay) carries the cold start plus the first cycle; each later cycle
        follows ``interval_s`` after the previous one. Lazy, so ``cycles`` may be endless.
        """
        first = True
        for readings in cycles:
            if first:
                prefix = self.cold_start(r.gateway_id for r in readings) if cold_start else b""
                yield 0.0, prefix + self.cycle(readings)
                first = False
            else:
                yield interval_s, self.cycle(readings)


def bus_bytes(
    readings: Sequence[PowerReading],
    *,
    gateway_addresses: Mapping[int, bytes] | None = None,
    node_addresses: Mapping[int, Mapping[int, bytes]] | None = None,
    node_table_layout: NodeTableLayout = "documented",
) -> bytes:
    """Cold start + one cycle delivering ``readings``: everything taptap needs in one go."""
    bus = TapBus(
        gateway_addresses=gateway_addresses or {},
        node_addresses=node_addresses or {},
        node_table_layout=node_table_layout,
    )
    return bus.cold_start(r.gateway_id for r in readings) + bus.cycle(readings)


def repeat_cycles(
    readings: Sequence[PowerReading], count: int | None = None
) -> Iterator[Sequence[PowerReading]]:
    """The same readings every cycle, ``count`` times (forever if ``None``)."""
    yield from itertools.repeat(readings) if count is None else itertools.repeat(readings, count)


# --- loopback TCP server -----------------------------------------------------------------------

#: taptap 0.1.1 can only reach this TCP port. Its CLI puts ``--port`` in the same one-of group
#: as ``--tcp``, so ``--tcp HOST --port N`` is rejected (exit 2: "the argument '--tcp
#: <DESTINATION>' cannot be used with '--port <PORT>'"), ``--port N`` alone panics (exit 101:
#: "a source must be specified") and ``--tcp HOST:N`` fails name lookup (exit 2). Tests
#: therefore give every server its own loopback address (all of 127.0.0.0/8 is local on
#: Linux) at this port.
TAPTAP_PORT = 7160

Chunks = Iterable[tuple[float, bytes]]
Script = bytes | Chunks
ScriptFactory = Callable[[int], Script]
AfterScript = Literal["hold", "close", "reset"]


class BusServer:
    """A loopback TCP "serial server" playing scripted bus bytes to each client.

    ``script`` is one of:

    * ``bytes``: sent at once to every connection;
    * a sequence of ``(delay_s, chunk)``: replayed from the start for every connection, sleeping
      ``delay_s`` before each chunk;
    * a one-shot iterator of such pairs (e.g. :meth:`TapBus.stream`): shared, each connection
      continues where the previous one stopped, like a real bus that kept running;
    * a callable ``f(connection_index) -> script`` for a fresh script per connection.

    After the script, ``after_script`` decides: ``"hold"`` keeps the connection open until
    :meth:`stop`; ``"close"`` shuts it down cleanly so the client reads EOF; ``"reset"`` aborts it
    (RST) so the client's read fails. ``connections`` and ``connection_times``
    (``time.monotonic()`` per accept) let a test measure a client's reconnect backoff.

    ``host=None`` picks a random free 127.x.y.z (see :data:`TAPTAP_PORT` for why); ``port=0``
    lets the OS pick a port (fine for other clients, but taptap 0.1.1 cannot be pointed at it).
    """

    def __init__(
        self,
        script: Script | ScriptFactory,
        *,
        after_script: AfterScript = "hold",
        host: str | None = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._script = script
        self._shared: Iterator[tuple[float, bytes]] | None = None
        if not callable(script) and not isinstance(script, bytes | Sequence):
            self._shared = iter(script)
        self.after_script: AfterScript = after_script
        self._requested_host = host
        self._requested_port = port
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._clients: list[socket.socket] = []
        self.connection_times: list[float] = []
        self.bytes_sent = 0
        self.host = host or ""
        self.port = port

    @property
    def connections(self) -> int:
        """How many client connections have been accepted so far."""
        with self._lock:
            return len(self.connection_times)

    def start(self) -> BusServer:
        """Bind, listen and start accepting in a daemon thread."""
        for attempt in itertools.count():
            host = self._requested_host or _random_loopback_host()
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                listener.bind((host, self._requested_port))
            except OSError:
                listener.close()
                if self._requested_host is not None or attempt >= 50:
                    raise
                continue
            break
        listener.listen(8)
        listener.settimeout(0.05)
        self._listener = listener
        self.host, self.port = listener.getsockname()[:2]
        self._spawn(self._accept_loop, "bus-accept")
        return self

    def stop(self) -> None:
        """Close every connection and the listener; join the threads."""
        self._stop.set()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()

    def wait_for_connections(self, count: int, timeout: float) -> bool:
        """Block until ``count`` connections were accepted (False if ``timeout`` s passed)."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self.connection_times) >= count, timeout)

    def __enter__(self) -> BusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        listener = self._listener
        if listener is None:
            return
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                index = len(self.connection_times)
                self.connection_times.append(time.monotonic())
                self._clients.append(client)
                self._lock.notify_all()
            self._spawn(self._serve, f"bus-client-{index}", client, index)

    def _chunks(self, index: int) -> Iterator[tuple[float, bytes]]:
        if self._shared is not None:
            while True:
                with self._lock:
                    item = next(self._shared, None)
                if item is None:
                    return
                yield item
        script = self._script(index) if callable(self._script) else self._script
        if isinstance(script, bytes):
            yield 0.0, script
        else:
            yield from script

    def _serve(self, client: socket.socket, index: int) -> None:
        try:
            for delay, chunk in self._chunks(index):
                if self._stop.wait(delay) if delay > 0 else self._stop.is_set():
                    return
                client.sendall(chunk)
                with self._lock:
                    self.bytes_sent += len(chunk)
            if self.after_script == "reset":
                # SO_LINGER with a zero timeout turns close() into an RST.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif self.after_script == "close":
                client.shutdown(socket.SHUT_WR)
                # Wait (briefly) for the peer to see EOF and hang up before dropping our end.
                client.settimeout(2.0)
                with contextlib.suppress(OSError):
                    while client.recv(4096):
                        pass
            else:
                self._stop.wait()
        except OSError:
            return  # the client went away
        finally:
            client.close()


def _random_loopback_host() -> str:
    rng = random.SystemRandom()
    return f"127.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


def taptap_server(
    script: Script | ScriptFactory, *, after_script: AfterScript = "hold"
) -> BusServer:
    """A :class:`BusServer` on a random 127.x.y.z at :data:`TAPTAP_PORT`, reachable by taptap."""
    return BusServer(script, after_script=after_script, host=None, port=TAPTAP_PORT)


def observe_argv(binary: str | os.PathLike[str], server: BusServer) -> list[str]:
    """``taptap observe`` arguments reaching ``server`` (which must listen on port 7160)."""
    if server.port != TAPTAP_PORT:
        raise ValueError(
            f"taptap 0.1.1 can only connect to port {TAPTAP_PORT} (its --port flag is unusable);"
            " start the server with taptap_server()"
        )
    return [os.fspath(binary), "observe", "--tcp", server.host]


def refused_host() -> str:
    """A loopback address where nothing listens on :data:`TAPTAP_PORT` (connect is refused)."""
    for _ in range(50):
        host = _random_loopback_host()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            if probe.connect_ex((host, TAPTAP_PORT)) != 0:
                return host
    raise RuntimeError("every loopback address tried has a listener on port 7160")


# The gateway of taptap's README samples (4609) and three optimisers' readings, the tests'
# common bus traffic.
SAMPLE_GATEWAY = 0x1201
SAMPLE_READINGS = [
    PowerReading(SAMPLE_GATEWAY, 116, 30.6, 30.2, 6.94, 1.0, 26.8, 132),
    PowerReading(SAMPLE_GATEWAY, 82, 30.55, 0.0, 6.845, 0.0, -7.5, 147),
    PowerReading(SAMPLE_GATEWAY, 121, 29.8, 21.9, 5.25, 194 / 255, 29.8, 120),
]
