"""Hardware addresses and barcodes of gateways and optimisers, remembered across restarts.

Why remember them: taptap learns a node's address only when the controller pages through its
node table (minutes to hours after start-up, and again only after a change), and forgets it
when it restarts. Tagging later reports needs the plugin to keep what it saw, and a restarted
plugin to find it again in its state file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Tigo hardware addresses start with this OUI-like prefix; only those have a printed barcode.
TIGO_PREFIX = bytes((0x04, 0xC0, 0x5B))
_HEX = "0123456789ABCDEF"
# The barcode's check character encodes a 4-bit CRC (polynomial x^4 + x + 1, initial value 2,
# most significant bit first) of the 8 address bytes, as printed on the optimiser's label.
_CHECK_CHARS = "GHJKLMNPRSTVWXYZ"
_CRC_POLY = 0x3
_CRC_INIT = 0x2


def _crc4(data: bytes) -> int:
    crc = _CRC_INIT
    for byte in data:
        for bit in range(7, -1, -1):
            top = (crc >> 3) & 1
            crc = (crc << 1) & 0xF
            if top ^ ((byte >> bit) & 1):
                crc ^= _CRC_POLY
    return crc


def format_address(address: bytes) -> str:
    """``04:C0:5B:30:00:02:BE:16``: the form taptap prints and the tag value we write."""
    return ":".join(f"{b:02X}" for b in address)


def parse_address(value: Any) -> bytes | None:
    """An address as taptap prints it: 8 integers (0.1.x) or ``AA:BB:..`` (newer); else None."""
    if isinstance(value, list):
        if len(value) == 8 and all(type(b) is int and 0 <= b <= 255 for b in value):
            return bytes(value)
        return None
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) != 8 or not all(len(p) == 2 for p in parts):
            return None
        try:
            return bytes(int(p, 16) for p in parts)
        except ValueError:
            return None
    return None


def barcode_of(address: bytes) -> str | None:
    """The label barcode (e.g. ``4-9A57A2L``) of a Tigo address; None for other addresses."""
    if len(address) != 8 or address[:3] != TIGO_PREFIX:
        return None
    nibbles = [address[3] & 0xF]
    for byte in address[4:]:
        nibbles += [byte >> 4, byte & 0xF]
    # Leading zero digits are not printed (all of them, for an all-zero serial, as taptap does).
    digits = "".join(_HEX[n] for n in nibbles).lstrip("0")
    return f"{_HEX[address[3] >> 4]}-{digits}{_CHECK_CHARS[_crc4(address)]}"


@dataclass(frozen=True)
class NodeIdentity:
    """What is known of one optimiser behind one gateway."""

    address: str
    barcode: str | None


class Identities:
    """Gateway and node identities keyed by taptap's ids (a node id is unique per gateway)."""

    def __init__(self) -> None:
        self.gateways: dict[int, str] = {}
        self.nodes: dict[tuple[int, int], NodeIdentity] = {}
        self.changed = False

    def learn_gateway(self, gateway_id: int, address: str) -> None:
        """Remember a gateway's address (taptap's enumeration or a report's inline address)."""
        if self.gateways.get(gateway_id) != address:
            self.gateways[gateway_id] = address
            self.changed = True

    def learn_node(self, gateway_id: int, node_id: int, address: str, barcode: str | None) -> None:
        """Remember one node's address and barcode."""
        identity = NodeIdentity(address, barcode)
        if self.nodes.get((gateway_id, node_id)) != identity:
            self.nodes[(gateway_id, node_id)] = identity
            self.changed = True

    def replace_node_table(
        self, gateway_id: int, table: Iterable[tuple[int, NodeIdentity]]
    ) -> None:
        """Replace a gateway's nodes with a complete table (an infrastructure report)."""
        new = dict(table)
        old = {n: ident for (g, n), ident in self.nodes.items() if g == gateway_id}
        if new == old:
            return
        for node_id in old:
            del self.nodes[(gateway_id, node_id)]
        for node_id, identity in new.items():
            self.nodes[(gateway_id, node_id)] = identity
        self.changed = True

    def tags(self, gateway_id: int, node_id: int) -> dict[str, str]:
        """The optional tags of a report: ``gateway_addr``, ``node_addr``, ``barcode``."""
        tags: dict[str, str] = {}
        gateway = self.gateways.get(gateway_id)
        if gateway:
            tags["gateway_addr"] = gateway
        node = self.nodes.get((gateway_id, node_id))
        if node is not None:
            tags["node_addr"] = node.address
            if node.barcode:
                tags["barcode"] = node.barcode
        return tags

    # -- persistence ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The state-file form (JSON object keys are strings)."""
        return {
            "gateways": {str(g): a for g, a in sorted(self.gateways.items())},
            "nodes": {
                f"{g}/{n}": {"address": i.address, "barcode": i.barcode}
                for (g, n), i in sorted(self.nodes.items())
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Identities:
        """Load what :meth:`to_json` wrote; malformed entries are dropped, not fatal."""
        found = cls()
        gateways = data.get("gateways")
        if isinstance(gateways, dict):
            for key, address in gateways.items():
                if str(key).isdigit() and isinstance(address, str):
                    found.gateways[int(key)] = address
        nodes = data.get("nodes")
        if isinstance(nodes, dict):
            for key, entry in nodes.items():
                gateway, _, node = str(key).partition("/")
                if not (gateway.isdigit() and node.isdigit() and isinstance(entry, dict)):
                    continue
                address = entry.get("address")
                barcode = entry.get("barcode")
                if isinstance(address, str) and (barcode is None or isinstance(barcode, str)):
                    found.nodes[(int(gateway), int(node))] = NodeIdentity(address, barcode)
        return found
