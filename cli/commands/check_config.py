"""``bridge-cli check-config``: let the real Telegraf judge a rendered config."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import tomllib
from pathlib import Path

import click
from telegraf_bridge.cli import render
from telegraf_bridge.cli.telegraf_bin import TelegrafNotFound, telegraf_path
from telegraf_bridge.plugins.common._main import STATE_OVERRIDE_ENV

# execd reports its pipes closing when `--test` stops the plugins; that is shutdown, not failure.
_SHUTDOWN_NOISE = re.compile(r"\[inputs\.execd[^\]]*\] Error in plugin: .*file already closed")


def _errors(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if re.search(r"\bE! ", line) and not _SHUTDOWN_NOISE.search(line)
    ]


def env_refs(config_text: str) -> list[str]:
    """The ``${VAR}`` names a rendered config reads, outside comments."""
    body = "\n".join(line for line in config_text.splitlines() if not line.lstrip().startswith("#"))
    return sorted(set(re.findall(r"(?<!\$)\$\{(\w+)\}", body)))


def _token_file_problems(config_text: str) -> list[str]:
    """Problems with the token files that docker secret stores in the config point at."""
    try:
        doc = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError:
        return []  # Telegraf's own check reports syntax errors better
    stores = {
        s.get("id"): Path(s.get("path", "/run/secrets"))
        for s in doc.get("secretstores", {}).get("docker", [])
    }
    problems = []
    for store_id, key in re.findall(r"@\{(\w+):(\w+)\}", config_text):
        if store_id in stores:
            problem = render.token_file_problem(stores[store_id] / key)
            if problem:
                problems.append(problem)
    return problems


def config_check(binary: Path, config_file: Path) -> tuple[bool, str]:
    """``telegraf config check``: the verdict and Telegraf's output.

    Telegraf exits 0 on some problems it only logs (``E!``), so those count as a failure too.
    """
    check = subprocess.run(
        [str(binary), "config", "check", "--strict-env-handling", "--config", str(config_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    output = (check.stdout + check.stderr).strip()
    return check.returncode == 0 and not _errors(output), output


@click.command("check-config")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--test-wait",
    type=click.IntRange(0, 300),
    default=3,
    show_default=True,
    help="Seconds `telegraf --test` waits for the plugins' first points.",
)
@click.option("--skip-test", is_flag=True, help="Only parse the config; start no plugin.")
def command(config_file: Path, test_wait: int, skip_test: bool) -> None:
    """Run the real Telegraf against CONFIG_FILE and report its verdict.

    Step 1 is `telegraf config check --strict-env-handling` (syntax, plugin options). Step 2
    is `telegraf --test`, which starts every input once, with the plugins' state redirected
    to a temporary directory, and counts the points they produce.
    """
    try:
        binary = telegraf_path()
    except TelegrafNotFound as exc:
        raise click.ClickException(str(exc)) from None
    text = config_file.read_text(encoding="utf-8")
    unset = [name for name in env_refs(text) if name not in os.environ]
    for name in unset:
        click.echo(f"warning: ${{{name}}} is referenced but not set in this environment")
    for problem in _token_file_problems(text):
        raise click.ClickException(problem)

    ok, output = config_check(binary, config_file)
    if not ok:
        click.echo(output)
        raise click.ClickException(f"Telegraf rejects {config_file} (config check failed)")
    click.echo(f"config check: OK ({binary})")
    if skip_test:
        return

    with tempfile.TemporaryDirectory(prefix="bridge-check-") as state_dir:
        env = {**os.environ, STATE_OVERRIDE_ENV: state_dir}
        test = subprocess.run(
            [
                str(binary),
                "--config",
                str(config_file),
                "--test",
                "--test-wait",
                str(test_wait),
                "--strict-env-handling",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120 + test_wait,
            env=env,
        )
    points = [line for line in test.stdout.splitlines() if line.startswith("> ")]
    errors = _errors(test.stderr)
    if test.returncode != 0 or errors:
        click.echo(test.stderr.strip())
        raise click.ClickException(f"Telegraf --test failed for {config_file}")
    click.echo(f"test run: OK, {len(points)} point(s) from the inputs in {test_wait}s")
