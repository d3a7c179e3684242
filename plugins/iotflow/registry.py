"""The device registry, ``devices.yaml``: who may send telemetry, and the tags their points get.

IoTFlow kept devices in PostgreSQL; a home server needs nothing but a file. The registry stores
each device's metadata and a *hash* of its API key, never the key: the key is shown once when
``bridge-cli devices add`` or ``rotate-key`` makes it.

One key serves both transports. Over HTTP it is the ``X-API-Key``; over MQTT it is the
password of the user named like the device. The hash is Mosquitto's own ``$7$`` format
(PBKDF2-HMAC-SHA512), so the broker's password file is generated from the registry without
the key, and the HTTP listener verifies the very same hash. Keys are 256 random bits, so the
hash's iteration count protects nothing a brute force could reach; Mosquitto's default (101)
keeps verification cheap on a Pi Zero.

A key names its record (``iot_<key id>_<secret>``), so the listener finds the one hash to
check without trying every device's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from telegraf_bridge.plugins.common._state import write_atomic

# A device id is an MQTT user name and a topic segment: no '+', '#', '/', spaces or control
# characters, none of which Mosquitto's `%u` ACL patterns accept.
DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEY_PREFIX = "iot"
_KEY = re.compile(r"^iot_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
PBKDF2_ITERATIONS = 101  # Mosquitto 2.0's default for $7$
_SALT_BYTES = 12
SERVICE_USER = "telegraf-bridge"  # Telegraf's own broker account; never a device id
_TEXT_LIMIT = 200
_FORMAT = 1

# The tags every point of a registered device carries, in this order.
TAG_KEYS = ("device_id", "device_name", "device_type", "location")


class RegistryError(Exception):
    """The registry file or a requested change is invalid; the message says how to fix it."""


@dataclass(frozen=True)
class Device:
    """One registered device."""

    id: str
    name: str = ""
    type: str = ""
    location: str = ""
    key_id: str = ""
    key_hash: str = ""
    created: str = ""

    def tags(self) -> dict[str, str]:
        """Registry tags for this device's points (line protocol has no empty tag values)."""
        values = (self.id, self.name, self.type, self.location)
        return {key: value for key, value in zip(TAG_KEYS, values, strict=True) if value}


@dataclass
class Registry:
    """Every device, plus the hash of Telegraf's broker password."""

    devices: dict[str, Device] = field(default_factory=dict)
    service_hash: str = ""

    def by_key_id(self, key_id: str) -> Device | None:
        """The device whose current key has this id."""
        for device in self.devices.values():
            if device.key_id == key_id:
                return device
        return None

    def authenticate(self, api_key: str, device_id: str | None = None) -> Device | None:
        """The device this key belongs to, or None.

        None covers every failure alike (malformed key, unknown key, revoked device, a
        device id that is not the key's own), so a caller cannot tell a guesser which part
        was wrong.
        """
        match = _KEY.match(api_key)
        device = self.by_key_id(match.group(1)) if match else None
        # Verify even when nothing matched, so a miss costs what a hit costs.
        ok = verify_key(api_key, device.key_hash if device else _DUMMY_HASH)
        if not ok or device is None:
            return None
        if device_id is not None and device_id != device.id:
            return None
        return device


def new_key(taken: Iterable[str] = ()) -> tuple[str, str]:
    """A fresh (key id, API key) whose id is not in ``taken``."""
    used = set(taken)
    while True:
        key_id = secrets.token_hex(8)
        if key_id not in used:
            return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def hash_key(key: str, *, salt: bytes | None = None) -> str:
    """Mosquitto's ``$7$iterations$salt$hash`` (PBKDF2-HMAC-SHA512, base64)."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", key.encode(), salt, PBKDF2_ITERATIONS, 64)
    encoded_salt = base64.b64encode(salt).decode()
    return f"$7${PBKDF2_ITERATIONS}${encoded_salt}${base64.b64encode(digest).decode()}"


def verify_key(key: str, stored: str) -> bool:
    """Whether ``key`` matches a ``$7$`` hash, in constant time for a given hash."""
    parts = stored.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    if not 1 <= iterations <= 1_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", key.encode(), salt, iterations, len(expected) or 64)
    return hmac.compare_digest(digest, expected)


_DUMMY_HASH = hash_key("not-a-key", salt=b"\0" * _SALT_BYTES)


def check_text(label: str, value: str) -> str:
    """Metadata is written as tag values: printable, one line, bounded."""
    if len(value) > _TEXT_LIMIT:
        raise RegistryError(f"{label} is {len(value)} characters long; at most {_TEXT_LIMIT}")
    if any(not ch.isprintable() for ch in value):
        raise RegistryError(f"{label} {value!r} contains control characters")
    if value != value.strip():
        raise RegistryError(f"{label} {value!r} has leading or trailing spaces")
    return value


def check_device_id(device_id: str) -> str:
    """A device id, or a RegistryError saying what ids may contain."""
    if not DEVICE_ID.match(device_id):
        raise RegistryError(
            f"device id {device_id!r} is invalid: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (it is an MQTT user name and a topic segment)"
        )
    if device_id == SERVICE_USER:
        raise RegistryError(f"device id {device_id!r} is reserved for Telegraf's broker account")
    return device_id


def _device(raw: Any, where: str) -> Device:
    if not isinstance(raw, Mapping):
        raise RegistryError(f"{where}: expected a mapping with id, name, type, location, key_hash")
    unknown = set(raw) - {"id", "name", "type", "location", "key_id", "key_hash", "created"}
    if unknown:
        raise RegistryError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    values = {k: raw.get(k, "") for k in ("id", "name", "type", "location", "key_id", "key_hash")}
    for key, value in values.items():
        if not isinstance(value, str):
            raise RegistryError(f"{where}.{key} = {value!r}: expected a string")
    try:
        check_device_id(values["id"])
        for key in ("name", "type", "location"):
            check_text(f"{where}.{key}", values[key])
    except RegistryError as exc:
        raise RegistryError(f"{where}: {exc}") from None
    if not re.fullmatch(r"[0-9a-f]{16}", values["key_id"]) or not values["key_hash"].startswith(
        "$7$"
    ):
        raise RegistryError(
            f"{where}: key_id/key_hash missing or malformed; run "
            f"`bridge-cli devices rotate-key {values['id']}` to issue a new key"
        )
    return Device(created=str(raw.get("created", "")), **values)


def parse(text: str, origin: str = "devices.yaml") -> Registry:
    """A registry from YAML text; every problem is a RegistryError naming the entry."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RegistryError(f"{origin} is not valid YAML: {exc}") from None
    if not isinstance(doc, Mapping):
        raise RegistryError(f"{origin}: expected a mapping with a `devices` list")
    raw_devices = doc.get("devices") or []
    if not isinstance(raw_devices, list):
        raise RegistryError(f"{origin}: `devices` must be a list")
    registry = Registry(service_hash=str(doc.get("service_hash") or ""))
    key_ids: set[str] = set()
    for index, raw in enumerate(raw_devices):
        device = _device(raw, f"{origin}: devices[{index}]")
        if device.id in registry.devices:
            raise RegistryError(f"{origin}: device id {device.id!r} appears twice")
        if device.key_id in key_ids:
            raise RegistryError(f"{origin}: key id {device.key_id!r} appears twice")
        key_ids.add(device.key_id)
        registry.devices[device.id] = device
    return registry


def load(path: Path) -> Registry:
    """The registry at ``path``; a missing file is an empty registry."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return Registry()
    except OSError as exc:
        raise RegistryError(f"cannot read the device registry {path}: {exc.strerror}") from None
    return parse(text, str(path))


def dump(registry: Registry) -> str:
    """The registry as the YAML ``save`` writes (sorted, so diffs stay small)."""
    devices = []
    for device in sorted(registry.devices.values(), key=lambda d: d.id):
        devices.append(
            {
                "id": device.id,
                "name": device.name,
                "type": device.type,
                "location": device.location,
                "key_id": device.key_id,
                "key_hash": device.key_hash,
                "created": device.created,
            }
        )
    doc = {"format": _FORMAT, "service_hash": registry.service_hash, "devices": devices}
    header = (
        "# Device registry of telegraf-bridge's iotflow source. Managed by `bridge-cli devices`;\n"
        "# API keys are stored only as hashes (Mosquitto's $7$ PBKDF2-SHA512 format).\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def save(path: Path, registry: Registry) -> None:
    """Write atomically, mode 0600: the hashes are not secrets, but nobody else needs them."""
    write_atomic(Path(path), dump(registry), mode=0o600)


def rekeyed(device: Device, key_id: str, key: str) -> Device:
    """The device with a new key (the old one stops working when the registry is saved)."""
    return replace(device, key_id=key_id, key_hash=hash_key(key))
