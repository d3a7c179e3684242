"""The bridge.yaml each seed's users start from (``bridge-cli init --seed NNN``).

The templates are package data (``cli/seeds/NNN.yaml``) that reference the seed's own
environment variables as ``${VAR}`` / ``${VAR:-default}``; this module knows, per seed, which
variables must be exported and what else the user runs before ``run``, so ``init`` can print
the next steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Seed:
    """One seed system: its template and the steps that follow ``init``."""

    number: str
    system: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    # Commands to run after exporting the variables and before ``check-config`` (PATH is the
    # config file).
    before_check: tuple[str, ...] = ()
    doc: str = ""

    def text(self) -> str:
        """The template's text."""
        folder = resources.files("telegraf_bridge.cli").joinpath("seeds")
        return folder.joinpath(f"{self.number}.yaml").read_text("utf-8")


SEEDS: dict[str, Seed] = {
    seed.number: seed
    for seed in (
        Seed(
            "000",
            "SmartSolar NDJSON -> InfluxDB Cloud",
            required=("INFLUX_TOKEN", "INFLUX_ORG"),
            optional=("INFLUX_BUCKET (default smartsolar)", "INFLUX_URL (default us-east-1-1)"),
            before_check=(
                "bridge-cli migrate-ndjson --config {path} /data/smartsolar-v1/*   "
                "# only if you still have JSON-array files",
            ),
            doc="docs/seeds/000-smartsolar.md",
        ),
        Seed(
            "001",
            "Hoymiles S-Miles -> InfluxDB 3",
            required=("INFLUXDB_ENABLED=true", "INFLUXDB_HOST", "INFLUXDB_TOKEN", "DTU_HOST"),
            optional=(
                "INFLUXDB_DATABASE (default hoymiles)",
                "DTU_PORT",
                "MODBUS_UNIT_ID",
                "DTU_NAME",
                "QUERY_PERIOD (seconds, default 60)",
                "COMM_TIMEOUT",
            ),
            before_check=("pip install 'telegraf-bridge[hoymiles]'   # the Modbus TCP library",),
            doc="docs/seeds/001-hoymiles.md",
        ),
        Seed(
            "002",
            "IoTFlow MQTT/HTTP telemetry -> InfluxDB 2.x",
            required=("INFLUXDB_TOKEN",),
            optional=(
                "INFLUXDB_URL (default http://localhost:8086)",
                "INFLUXDB_ORG (default iotflow)",
                "INFLUXDB_BUCKET (default telemetry)",
            ),
            before_check=(
                "bridge-cli devices add --config {path} DEVICE_ID --name NAME   "
                "# once per device; prints its API key once",
            ),
            doc="docs/seeds/002-iotflow.md",
        ),
        Seed(
            "003",
            "PowerLogger GPIO meter pulses -> InfluxDB 2.x",
            required=("INFLUX_HOST", "INFLUX_ORG", "INFLUX_TOKEN"),
            optional=("RAW_BUCKET", "B1M_BUCKET", "B5M_BUCKET", "B1H_BUCKET", "MEASUREMENT"),
            before_check=(
                "bridge-cli setup-influxdb --config {path}   # the tiers, their tasks and tokens",
                "bridge-cli verify --config {path}",
            ),
            doc="docs/seeds/003-powerlogger.md",
        ),
        Seed(
            "004",
            "tigo-ingest (taptap observe) -> InfluxDB 1.x",
            required=("TAPTAP_CMD",),
            optional=(
                "INFLUX_DB (default bms)",
                "INFLUX_URL (default http://127.0.0.1:8086)",
                "INFLUX_RP (empty: autogen)",
                "INFLUX_MEASUREMENT (default tigo_power_report)",
            ),
            doc="docs/seeds/004-tigo-ingest.md",
        ),
    )
}


def next_steps(seed: Seed, path: str) -> list[str]:
    """What to run after ``init --seed``, in order, one command or note per line."""
    exports = " ".join(v if "=" in v else f"{v}=..." for v in seed.required)
    steps = [f"export {exports}"]
    if seed.optional:
        steps.append("# optional, as in the seed: " + ", ".join(seed.optional))
    steps += [step.format(path=path) for step in seed.before_check]
    steps += [
        f"bridge-cli check-config --config {path}",
        f"bridge-cli run --config {path}",
    ]
    return steps
