"""``bridge-cli``: the group that holds every subcommand."""

from __future__ import annotations

import click
from telegraf_bridge.cli.commands import (
    check_config,
    config_reference,
    delete_buckets,
    delete_data,
    devices,
    healthcheck,
    init,
    install_systemd,
    migrate_ndjson,
    query,
    render_config,
    rssi_report,
    run,
    serial_ports,
    setup_influxdb,
    telegraf_path,
    verify,
)
from telegraf_bridge.cli.context import BridgeContext

from telegraf_bridge import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="bridge-cli", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Render, check and run Telegraf configs for solar and IoT telemetry into InfluxDB."""
    ctx.ensure_object(BridgeContext)


cli.add_command(init.command)
cli.add_command(render_config.command)
cli.add_command(check_config.command)
cli.add_command(telegraf_path.command)
cli.add_command(run.command)
cli.add_command(config_reference.command)
cli.add_command(migrate_ndjson.command)
cli.add_command(healthcheck.command)
cli.add_command(rssi_report.command)
cli.add_command(serial_ports.command)
cli.add_command(setup_influxdb.command)
cli.add_command(verify.command)
cli.add_command(delete_buckets.command)
cli.add_command(devices.command)
cli.add_command(query.command)
cli.add_command(delete_data.command)
cli.add_command(install_systemd.command)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
