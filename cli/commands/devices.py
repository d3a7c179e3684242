"""``bridge-cli devices``: the device registry of an iotflow source (IoTFlow's device API).

A device's API key is printed once, when it is made, and only its hash is stored. After every
change the files derived from the registry are written again (Telegraf's tag lookup table,
Mosquitto's password, ACL and config snippet), so a reload of Mosquitto and Telegraf is all a
change needs.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from telegraf_bridge.cli import iotflow_files
from telegraf_bridge.cli.context import bridge_context
from telegraf_bridge.cli.settings import InvalidConfig
from telegraf_bridge.plugins.common import ConfigError, Section
from telegraf_bridge.plugins.iotflow import options as iotflow_options
from telegraf_bridge.plugins.iotflow import registry
from telegraf_bridge.plugins.iotflow.manifest import MANIFEST as IOTFLOW
from telegraf_bridge.plugins.iotflow.registry import Device, Registry, RegistryError
from telegraf_bridge.plugins.manifests import sources_of


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def _resolve(
    config_path: Path | None, source_name: str | None, registry_path: Path | None
) -> iotflow_options.IotflowOptions:
    """The iotflow options: from bridge.yaml's iotflow source, or defaults around --registry."""
    raw: dict[str, object] = {}
    where = "devices"
    if config_path is not None:
        try:
            settings = bridge_context().settings(config_path)
        except InvalidConfig as exc:
            _fail(str(exc))
        found = sources_of(settings.sources, IOTFLOW)
        if source_name is not None:
            found = [s for s in found if s.name == source_name]
        if not found:
            wanted = f"named {source_name!r} " if source_name else ""
            _fail(f"{config_path} has no iotflow source {wanted}(plugin: iotflow)")
        raw = dict(found[0].options)
        where = f"sources ({found[0].name}).options"
    elif registry_path is None:
        _fail("say which registry to manage: --config bridge.yaml (iotflow source) or --registry")
    if registry_path is not None:
        raw["registry"] = str(registry_path)
    try:
        return iotflow_options.parse(Section(raw, where))
    except ConfigError as exc:
        _fail(str(exc))


def _load(opts: iotflow_options.IotflowOptions) -> Registry:
    try:
        return registry.load(opts.registry)
    except RegistryError as exc:
        _fail(str(exc))


def _save(opts: iotflow_options.IotflowOptions, reg: Registry) -> None:
    """Write the registry and everything derived from it, then say what to reload."""
    if opts.mqtt.username in reg.devices:
        _fail(f"device id {opts.mqtt.username!r} is Telegraf's broker user name; pick another")
    generated = iotflow_files.regenerate(opts, reg)
    registry.save(opts.registry, reg)
    click.echo(f"wrote {opts.registry}", err=True)
    for path in generated.written:
        click.echo(f"wrote {path}", err=True)
    for note in generated.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        "To apply: reload Mosquitto (`systemctl reload mosquitto` or SIGHUP) and Telegraf "
        "(SIGHUP); the HTTP listener picks the registry up by itself.",
        err=True,
    )


_pass_options = [
    click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="BRIDGE_CONFIG",
        help="bridge.yaml with an iotflow source (env: BRIDGE_CONFIG).",
    ),
    click.option("--source", "source_name", help="The iotflow source, when there are several."),
    click.option(
        "--registry",
        "registry_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="devices.yaml to manage (default: the source's `registry` option).",
    ),
]


def _with_registry_options(func: Any) -> Any:
    for option in reversed(_pass_options):
        func = option(func)
    return func


@click.group("devices")
def command() -> None:
    """Manage the device registry (devices.yaml) of an iotflow source.

    Each device gets an API key: the X-API-Key of HTTP requests and the MQTT password of the
    user named like the device. Only the key's hash is stored; the key is shown once.
    """


def _issue_key(reg: Registry) -> tuple[str, str]:
    return registry.new_key(d.key_id for d in reg.devices.values())


def _show_key(device: Device, key: str, as_json: bool, what: str) -> None:
    if as_json:
        click.echo(json.dumps({"device_id": device.id, "api_key": key}))
        return
    click.echo(f"{what} device {device.id}. Its API key (shown only now; store it on the device):")
    click.echo(key)
    click.echo(
        f"HTTP: header X-API-Key. MQTT: user name {device.id}, password = the key.", err=True
    )


@command.command("add")
@_with_registry_options
@click.argument("device_id")
@click.option("--name", default="", help="Human-readable name (tag device_name).")
@click.option("--type", "device_type", default="", help="Kind of device (tag device_type).")
@click.option("--location", default="", help="Where it is (tag location).")
@click.option("--json", "as_json", is_flag=True, help="Print the new key as JSON.")
def add(
    *,
    config_path: Path | None,
    source_name: str | None,
    registry_path: Path | None,
    device_id: str,
    name: str,
    device_type: str,
    location: str,
    as_json: bool,
) -> None:
    """Register DEVICE_ID and print its new API key (once)."""
    opts = _resolve(config_path, source_name, registry_path)
    reg = _load(opts)
    try:
        registry.check_device_id(device_id)
        for label, value in (("--name", name), ("--type", device_type), ("--location", location)):
            registry.check_text(label, value)
    except RegistryError as exc:
        _fail(str(exc))
    if device_id in reg.devices:
        _fail(f"device {device_id!r} is already registered; use rotate-key for a new key")
    key_id, key = _issue_key(reg)
    device = Device(
        id=device_id,
        name=name,
        type=device_type,
        location=location,
        key_id=key_id,
        key_hash=registry.hash_key(key),
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    reg.devices[device_id] = device
    _save(opts, reg)
    _show_key(device, key, as_json, "Registered")


@command.command("list")
@_with_registry_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_devices(
    *,
    config_path: Path | None,
    source_name: str | None,
    registry_path: Path | None,
    as_json: bool,
) -> None:
    """List the registered devices (never their keys or hashes)."""
    opts = _resolve(config_path, source_name, registry_path)
    reg = _load(opts)
    rows = [
        {
            "device_id": d.id,
            "name": d.name,
            "type": d.type,
            "location": d.location,
            "key_id": d.key_id,
            "created": d.created,
        }
        for d in sorted(reg.devices.values(), key=lambda d: d.id)
    ]
    if as_json:
        click.echo(json.dumps({"registry": str(opts.registry), "devices": rows}, indent=2))
        return
    if not rows:
        click.echo(f"No devices in {opts.registry}. Add one: bridge-cli devices add ID")
        return
    headers = list(rows[0])
    widths = {h: max(len(h), *(len(str(r[h])) for r in rows)) for h in headers}
    click.echo("  ".join(h.ljust(widths[h]) for h in headers).rstrip())
    for row in rows:
        click.echo("  ".join(str(row[h]).ljust(widths[h]) for h in headers).rstrip())


@command.command("remove")
@_with_registry_options
@click.argument("device_id")
@click.option("--yes", is_flag=True, help="Remove without asking.")
def remove(
    *,
    config_path: Path | None,
    source_name: str | None,
    registry_path: Path | None,
    device_id: str,
    yes: bool,
) -> None:
    """Remove DEVICE_ID: its key stops working (its stored data stays; see delete-data)."""
    opts = _resolve(config_path, source_name, registry_path)
    reg = _load(opts)
    if device_id not in reg.devices:
        _fail(f"no device {device_id!r} in {opts.registry}")
    if not yes:
        try:
            confirmed = click.confirm(f"Remove device {device_id} and revoke its key?")
        except click.Abort:
            _fail("no confirmation could be read (no terminal); pass --yes to remove")
        if not confirmed:
            _fail("not removed")
    del reg.devices[device_id]
    _save(opts, reg)
    click.echo(f"Removed device {device_id}.")


@command.command("rotate-key")
@_with_registry_options
@click.argument("device_id")
@click.option("--json", "as_json", is_flag=True, help="Print the new key as JSON.")
def rotate_key(
    *,
    config_path: Path | None,
    source_name: str | None,
    registry_path: Path | None,
    device_id: str,
    as_json: bool,
) -> None:
    """Give DEVICE_ID a new API key; the old one stops working once the files are reloaded."""
    opts = _resolve(config_path, source_name, registry_path)
    reg = _load(opts)
    device = reg.devices.get(device_id)
    if device is None:
        _fail(f"no device {device_id!r} in {opts.registry}")
    key_id, key = _issue_key(reg)
    device = registry.rekeyed(device, key_id, key)
    reg.devices[device_id] = device
    _save(opts, reg)
    _show_key(device, key, as_json, "New key for")


@command.command("export")
@_with_registry_options
def export(
    *, config_path: Path | None, source_name: str | None, registry_path: Path | None
) -> None:
    """Write the derived files again (lookup table, Mosquitto passwd/ACL/config)."""
    opts = _resolve(config_path, source_name, registry_path)
    _save(opts, _load(opts))
