"""``bridge-cli install-systemd``: systemd units for this install on a bare Linux host.

It replaces seed 004's hand-edited ``tigo-ingest.service`` and health-check units: the units
are rendered from ``templates/systemd/`` with the absolute paths of *this* install (the venv's
``bridge-cli``, the Telegraf binary, bridge.yaml), so there is nothing to adapt by hand, and
everything the units depend on is checked before a file is written: the config renders, the
user exists and can run both programs, and the directories the service writes are writable.
"""

from __future__ import annotations

import difflib
import grp
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import jinja2
from telegraf_bridge.cli import render
from telegraf_bridge.cli.commands import healthcheck
from telegraf_bridge.cli.commands.check_config import env_refs
from telegraf_bridge.cli.config_model import FileSink, TokenSink
from telegraf_bridge.cli.context import bridge_context
from telegraf_bridge.cli.device_nodes import device_groups
from telegraf_bridge.cli.influx.sinks import select_sink
from telegraf_bridge.cli.influx.transport import SinkError
from telegraf_bridge.cli.measurements import NoClearMeasurement, default_measurement
from telegraf_bridge.cli.settings import InvalidConfig, Settings
from telegraf_bridge.cli.telegraf_bin import TelegrafNotFound, telegraf_path, telegraf_version
from telegraf_bridge.plugins.common import write_atomic

from telegraf_bridge import paths

SERVICE_UNIT = "telegraf-bridge.service"
HEALTHCHECK_UNIT = "telegraf-bridge-healthcheck.service"
TIMER_UNIT = "telegraf-bridge-healthcheck.timer"
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_DATA_DIR = paths.DATA_DIR
DEFAULT_ENV_FILE = paths.ENV_FILE
UNIT_MODE = 0o644
ENV_FILE_MODE = 0o600
DATA_DIR_MODE = 0o750
# systemd's StateDirectory= root: directories below it are created and owned by systemd.
STATE_ROOT = Path("/var/lib")
# Groups that own GPIO chips (Raspberry Pi OS: gpio) and serial ports (Debian: dialout).
DEVICE_GROUPS = ("gpio", "dialout")
# Where `systemctl` finds units an administrator installs; --enable is refused elsewhere.
SYSTEM_UNIT_DIRS = (
    Path("/etc/systemd/system"),
    Path("/run/systemd/system"),
    Path("/usr/local/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
    Path("/lib/systemd/system"),
)
_PLAIN_ARG = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
_CHECK_TIMEOUT = 60.0


class InstallError(click.ClickException):
    """Bad input or an unusable host; the message says what to do."""


# -- escaping for unit files ---------------------------------------------------------------------


class _Unit(str):
    """Text already escaped for a unit file (the output of a filter)."""

    __slots__ = ()


def _no_control(text: str) -> str:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise InstallError(f"{text!r} contains a control character; it cannot go into a unit")
    return text


def sd_value(value: object) -> _Unit:
    """A single-word setting (a path, a user): ``%`` escaped; whitespace and quotes refused."""
    text = _no_control(str(value))
    if re.search(r"[\s\"'\\]", text):
        raise InstallError(
            f"{text!r} contains whitespace, a quote or a backslash, which systemd settings split "
            "or unquote; choose a path or name without them"
        )
    return _Unit(text.replace("%", "%%"))


def sd_list(values: list[object]) -> _Unit:
    """A space-separated list of single words."""
    return _Unit(" ".join(sd_value(v) for v in values))


def sd_quoted(value: object) -> _Unit:
    """A double-quoted word (``Environment="KEY=VALUE"``)."""
    text = _no_control(str(value)).replace("\\", "\\\\").replace('"', '\\"')
    return _Unit('"' + text.replace("%", "%%") + '"')


def sd_comment(value: object) -> _Unit:
    """Text inside a comment line (no specifiers are expanded there)."""
    return _Unit(_no_control(str(value)))


def _exec_arg(arg: str) -> str:
    _no_control(arg)
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN_ARG.match(arg):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sd_exec(argv: list[str]) -> _Unit:
    """A command line for ``Exec*=``: ``%`` and ``$`` escaped, words quoted where needed."""
    return _Unit(" ".join(_exec_arg(str(a)) for a in argv))


def _finalize(value: Any) -> Any:
    """Refuse an interpolation that skipped the escaping filters."""
    if isinstance(value, _Unit):
        return value
    if value is None or value == "":
        return ""
    raise jinja2.TemplateError(f"unit template interpolated {value!r} without an sd_* filter")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.templates_dir() / "systemd")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - unit files, escaped by the sd_* filters and _finalize
        finalize=_finalize,
    )
    env.filters.update(
        sd_value=sd_value,
        sd_list=sd_list,
        sd_quoted=sd_quoted,
        sd_comment=sd_comment,
        sd_exec=sd_exec,
    )
    return env


# -- the plan: everything decided and checked before anything is written -------------------------


@dataclass
class Plan:
    """The units to write and what they need, all checked; nothing written yet."""

    units: dict[str, str]
    env_file: Path
    env_text: str | None  # the new env file, or None when one exists
    env_names: list[str]
    make_dirs: list[Path]
    user: pwd.struct_passwd
    summary: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines as systemd's EnvironmentFile= reads them (comments skipped)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _default_user() -> str:
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user and sudo_user != "root":
        return sudo_user
    return pwd.getpwuid(os.geteuid()).pw_name


def _lookup_user(name: str | None, allow_root: bool) -> pwd.struct_passwd:
    name = name or _default_user()
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise InstallError(
            f"unknown user {name!r}; create one for the service with: sudo useradd --system "
            f"--home-dir {DEFAULT_DATA_DIR} --shell /usr/sbin/nologin {name}"
        ) from None
    if user.pw_uid == 0 and not allow_root:
        raise InstallError(
            "refusing to run Telegraf as root: pass --user NAME (a user in the dialout/gpio "
            "groups, or a system user), or --allow-root if you really mean it"
        )
    return user


def _device_groups(extra: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Existing device groups (named, and owning GPIO/serial nodes) plus ``extra``; notes."""
    notes = []
    chosen = []
    for name in DEVICE_GROUPS:
        try:
            grp.getgrnam(name)
            chosen.append(name)
        except KeyError:
            notes.append(f"group {name} does not exist here; it is left out of SupplementaryGroups")
    gids, warnings = device_groups()
    notes.extend(warnings)
    for gid in sorted(gids):
        try:
            chosen.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            notes.append(f"gid {gid} of a device node has no name here; add it with --group")
    for name in extra:
        try:
            grp.getgrnam(name)
        except KeyError:
            raise InstallError(f"--group {name}: no such group") from None
        chosen.append(name)
    return list(dict.fromkeys(chosen)), notes


def _as_user(user: pwd.struct_passwd, argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    """Run ``argv`` as ``user`` (None when this process cannot switch to it)."""
    if os.geteuid() == user.pw_uid:
        prefix: list[str] = []
    elif os.geteuid() == 0 and shutil.which("setpriv"):
        prefix = [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--init-groups",
            "--reset-env",
            "--",
        ]
    else:
        return None
    try:
        return subprocess.run(
            prefix + argv,
            capture_output=True,
            text=True,
            check=False,
            timeout=_CHECK_TIMEOUT,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 1, "", str(exc))


def _interpreter(program: Path) -> Path | None:
    """The ``#!`` interpreter of a script (the venv's Python for bridge-cli), else None."""
    try:
        with program.open("rb") as handle:
            first = handle.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    return Path(words[0]) if words else None


def _access_problems(
    user: pwd.struct_passwd, programs: list[Path], readable: list[Path], writable: list[Path]
) -> tuple[list[str], list[str]]:
    """What ``user`` cannot do that the service needs, asked of the kernel as that user.

    access(2) (``test``) judges every path, so a venv or Telegraf under /root is caught even
    where exec is lenient; each program also runs ``--version`` (its imports, its libraries).
    """
    who = user.pw_name
    if user.pw_uid == 0:
        return [], []  # root passes every permission check
    checks: list[tuple[str, Path]] = [("-r", path) for path in readable]
    for directory in writable:
        if directory.exists():
            checks.append(("-w", directory))
        else:  # created for the user at install; its parents must let the user through
            checks.append(("-x", next(p for p in directory.parents if p.exists())))
    for program in programs:
        checks.append(("-x", program))
        interpreter = _interpreter(program)
        if interpreter is not None:
            checks += [("-r", program), ("-x", interpreter)]
    problems: list[str] = []
    for flag, path in checks:
        done = _as_user(user, ["test", flag, str(path)])
        if done is None:
            return [], [f"not checked that {who} can run and read what the service needs"]
        if done.returncode != 0:
            verb = {"-r": "read", "-w": "write to"}.get(flag) or (
                "enter" if path.is_dir() else "run"
            )
            problems.append(f"{who} cannot {verb} {path}")
    # This process already runs bridge-cli and Telegraf (its version) as itself.
    for program in programs if user.pw_uid != os.geteuid() else []:
        done = _as_user(user, [str(program), "--version"])
        if done is not None and done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            why = lines[-1] if lines else f"exit status {done.returncode}"
            problems.append(f"{who} cannot run {program} --version: {why}")
    if problems:
        problems.append(
            f"fix: make them readable by {who} (a venv and Telegraf under /opt rather than "
            f"/root or another home; `sudo chown {who}` the data directories), or pass --user"
        )
    return list(dict.fromkeys(problems)), []


def _writable_dirs(
    settings: Settings, rendered: render.Rendered, output: Path, data_dir: Path
) -> list[Path]:
    """Every directory Telegraf, its plugins and render-config write to, outermost only."""

    def absolute(value: str | Path) -> Path:
        path = Path(value)
        return Path(os.path.normpath(path if path.is_absolute() else data_dir / path))

    found = [data_dir, output.parent]
    agent = settings.agent
    found.extend(absolute(d) for d in (agent.buffer_directory, agent.state_directory) if d)
    if agent.logfile:
        found.append(absolute(agent.logfile).parent)
    for sink in settings.active_sinks():
        if isinstance(sink, FileSink):
            found.append(absolute(sink.path).parent)
    found.extend(absolute(p).parent for p in rendered.plugin_configs)
    outermost: list[Path] = []
    for path in sorted(set(found), key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(kept) for kept in outermost):
            outermost.append(path)
    return outermost


def _healthcheck_argv(
    bridge_cli: Path, config: Path, settings: Settings, extra: str
) -> tuple[list[str], list[str]]:
    """The health check's command line, with ``extra`` validated by healthcheck's own parser."""
    try:
        args = shlex.split(extra)
    except ValueError as exc:
        raise InstallError(f"--healthcheck-args: {exc}") from None
    if any(a == "--config" or a.startswith("--config=") for a in args):
        raise InstallError("--healthcheck-args: leave out --config; the units use --config's file")
    if {"-h", "--help"} & set(args):
        raise InstallError("--healthcheck-args: --help is not an option for a unit")
    try:
        ctx = healthcheck.command.make_context("healthcheck", list(args))
    except click.ClickException as exc:
        raise InstallError(f"--healthcheck-args: {exc.format_message()}") from None
    try:
        select_sink(settings, ctx.params["sink_name"])
    except SinkError as exc:
        raise InstallError(f"--healthcheck-args: {exc}") from None
    argv = [str(bridge_cli), "healthcheck", "--config", str(config), "--service", SERVICE_UNIT]
    if settings.agent.health_listen:
        argv.append("--telegraf-health")
    notes = []
    if ctx.params["measurement"] is None:
        # The timer would fail every run if the config does not say which measurement to watch.
        try:
            watched = default_measurement(settings)
        except NoClearMeasurement as exc:
            raise InstallError(
                f"--healthcheck-args: {exc}; e.g. --healthcheck-args '--measurement NAME'"
            ) from None
        notes.append(
            f"the health check watches measurement {watched} (from the config's sources); pass "
            "--healthcheck-args '--measurement NAME' for another"
        )
    return argv + args, notes


@dataclass
class Options:
    """The command line, as given."""

    config: Path
    user: str | None
    allow_root: bool
    groups: tuple[str, ...]
    data_dir: Path
    env_file: Path
    unit_dir: Path
    telegraf: Path | None
    healthcheck_args: str
    no_healthcheck: bool


def _absolute(path: Path) -> Path:
    """Absolute and normalised, symlinks kept (a /usr/local/bin/telegraf link may be swapped)."""
    return Path(os.path.normpath(Path(path).absolute()))


def _bridge_cli() -> Path:
    candidate = Path(sys.executable).parent / "bridge-cli"
    if not (candidate.is_file() and os.access(candidate, os.X_OK)):
        raise InstallError(
            f"bridge-cli is not next to this Python ({sys.executable}); run install-systemd "
            "with the bridge-cli of the venv the service should use"
        )
    return _absolute(candidate)


def _telegraf(explicit: Path | None) -> Path:
    if explicit is None:
        try:
            explicit = telegraf_path()
        except TelegrafNotFound as exc:
            raise InstallError(f"{exc}; or pass --telegraf PATH") from None
    binary = _absolute(explicit)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise InstallError(f"--telegraf {binary} is not an executable file")
    return binary


def make_plan(opts: Options) -> Plan:
    """Check every input and render the units; writes nothing."""
    config = _absolute(opts.config)
    if not config.is_file():
        raise InstallError(
            f"config {config} does not exist; write one with `bridge-cli init {config}` "
            "(or copy an example from examples/) and pass it with --config"
        )
    data_dir = _absolute(opts.data_dir)
    env_file = _absolute(opts.env_file)
    user = _lookup_user(opts.user, opts.allow_root)
    groups, notes = _device_groups(opts.groups)
    bridge_cli = _bridge_cli()
    telegraf = _telegraf(opts.telegraf)
    env_values: dict[str, str] = {}
    if env_file.is_file():
        try:
            env_values = read_env_file(env_file)
        except (OSError, UnicodeDecodeError) as exc:
            notes.append(f"cannot read {env_file} ({exc}); checked the config without it")
    output = data_dir / "telegraf.conf"
    try:
        # The service sees only the env file, so the check renders with it alone too.
        settings = bridge_context().settings(config, env_values, base_dir=data_dir)
        rendered = render.render(settings, output, config_source=str(config))
    except InvalidConfig as exc:
        raise InstallError(f"the config does not render:\n{exc}") from None
    env_names = sorted(set(settings.referenced_env()) | set(env_refs(rendered.telegraf_conf)))

    writable = _writable_dirs(settings, rendered, output, data_dir)
    state_dirs = [str(p.relative_to(STATE_ROOT)) for p in writable if _is_state_dir(p)]
    rw_paths = [p for p in writable if not _is_state_dir(p)]
    token_files = [
        Path(k.token_file)
        for k in settings.active_sinks()
        if isinstance(k, TokenSink) and k.token_file
    ]
    problems, skipped = _access_problems(
        user, [bridge_cli, telegraf], [config, *token_files], rw_paths
    )
    if problems:
        raise InstallError(
            "the service user cannot do its job:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    notes += skipped

    health_argv: list[str] | None = None
    if opts.no_healthcheck:
        notes.append("health check units not written (--no-healthcheck)")
    elif not settings.active_influx_sinks():
        notes.append(
            "the config has no InfluxDB sink for `bridge-cli healthcheck` to query; the health "
            "check units are not written (they would fail every run)"
        )
    else:
        health_argv, health_notes = _healthcheck_argv(
            bridge_cli, config, settings, opts.healthcheck_args
        )
        notes += health_notes

    context: dict[str, object] = {
        "config": config,
        "user": user.pw_name,
        "groups": groups,
        "data_dir": data_dir,
        "env_file": env_file,
        "telegraf": telegraf,
        "service_unit": SERVICE_UNIT,
        "healthcheck_unit": HEALTHCHECK_UNIT,
        "timer_unit": TIMER_UNIT,
        "render_argv": [
            str(bridge_cli),
            "render-config",
            "--config",
            str(config),
            "--output",
            str(output),
            "--base-dir",
            str(data_dir),
            "--quiet",
        ],
        "check_argv": [str(bridge_cli), "check-config", "--skip-test", str(output)],
        "telegraf_argv": [str(telegraf), "--config", str(output), "--strict-env-handling"],
        "healthcheck_argv": health_argv or [],
        "state_dirs": state_dirs,
        "rw_paths": rw_paths,
        "names": env_names,
    }
    env = _environment()
    templates = [SERVICE_UNIT] + ([HEALTHCHECK_UNIT, TIMER_UNIT] if health_argv else [])
    units = {name: env.get_template(f"{name}.j2").render(context) for name in templates}
    env_text = None if env_file.exists() else env.get_template("bridge.env.j2").render(context)
    if env_file.is_file() and os.access(env_file, os.R_OK):
        unset = [n for n in env_names if not env_values.get(n)]
        if unset:
            notes.append(
                f"{env_file} does not set {', '.join(unset)}, which Telegraf reads at start-up"
            )
        if env_file.stat().st_mode & 0o077:
            notes.append(f"{env_file} is readable by others: sudo chmod 600 {env_file}")
    summary = [
        ("config", str(config)),
        ("user", user.pw_name + (f" (groups: {' '.join(groups)})" if groups else "")),
        ("bridge-cli", str(bridge_cli)),
        ("telegraf", f"{telegraf} ({telegraf_version(telegraf)})"),
        ("data dir", str(data_dir)),
        ("env file", str(env_file)),
    ]
    return Plan(
        units=units,
        env_file=env_file,
        env_text=env_text,
        env_names=env_names,
        make_dirs=[p for p in rw_paths if not p.exists()],
        user=user,
        summary=summary,
        notes=notes,
    )


def _is_state_dir(path: Path) -> bool:
    return path.is_relative_to(STATE_ROOT) and path != STATE_ROOT


# -- writing ------------------------------------------------------------------------------------


def _diffs(plan: Plan, unit_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """(new units, changed units, unchanged units) against what ``unit_dir`` holds."""
    new, changed, same = [], [], []
    for name, text in plan.units.items():
        path = unit_dir / name
        if not path.exists():
            new.append(name)
        elif path.read_text(encoding="utf-8") == text:
            same.append(name)
        else:
            changed.append(name)
    return new, changed, same


def _diff_text(path: Path, new_text: str) -> str:
    old = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(
            old, new_text.splitlines(keepends=True), f"{path} (installed)", f"{path} (new)"
        )
    )


def _create_env_file(path: Path, text: str) -> None:
    """Create the env file with mode 0600 from the first byte; never replace an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ENV_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(ENV_FILE_MODE)


def _systemctl(*args: str) -> None:
    argv = ["systemctl", *args]
    click.echo("$ " + shlex.join(argv))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    except FileNotFoundError:
        raise InstallError("systemctl not found: --enable needs systemd") from None
    except subprocess.TimeoutExpired:
        raise InstallError(f"{shlex.join(argv)} did not finish within 120 s") from None
    output = (done.stdout + done.stderr).strip()
    if output:
        click.echo(output)
    if done.returncode != 0:
        raise InstallError(f"{shlex.join(argv)} failed (exit {done.returncode})")


def _next_steps(plan: Plan, enabled: bool) -> list[str]:
    units = [SERVICE_UNIT] + ([TIMER_UNIT] if TIMER_UNIT in plan.units else [])
    steps = []
    if not enabled:
        steps += ["sudo systemctl daemon-reload", f"sudo systemctl enable --now {' '.join(units)}"]
    steps += [
        f"systemctl status --no-pager -n 20 {SERVICE_UNIT}",
        f"journalctl -u {SERVICE_UNIT} -f",
    ]
    if TIMER_UNIT in plan.units:
        steps += [
            f"systemctl list-timers {TIMER_UNIT}",
            f"sudo systemctl start {HEALTHCHECK_UNIT}   # a health check now",
            f"journalctl -u {HEALTHCHECK_UNIT} -n 5 --no-pager",
        ]
    if plan.env_names:
        steps.insert(0, f"sudoedit {plan.env_file}   # set {', '.join(plan.env_names)}")
    return steps


@click.command("install-systemd")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BRIDGE_CONFIG",
    required=True,
    help="bridge.yaml the service renders at every start (env: BRIDGE_CONFIG).",
)
@click.option(
    "--user",
    metavar="NAME",
    help="User the services run as; default: $SUDO_USER, else the current user.",
)
@click.option("--allow-root", is_flag=True, help="Allow --user root (not recommended).")
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="NAME",
    help="Extra supplementary group (repeatable); gpio and dialout are added when they exist.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Working directory: the rendered telegraf.conf and relative buffer/state paths.",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_ENV_FILE,
    show_default=True,
    help="KEY=VALUE file with the tokens; created (0600, names only, no values) when missing.",
)
@click.option(
    "--unit-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_UNIT_DIR,
    show_default=True,
    help="Where the unit files go.",
)
@click.option(
    "--telegraf",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Telegraf binary; default: $TELEGRAF_BIN, the cached custom build, or telegraf on PATH.",
)
@click.option(
    "--healthcheck-args",
    default="",
    metavar="ARGS",
    help="Options for `bridge-cli healthcheck` in the timer's unit, as one string, e.g. "
    "'--measurement dtu --max-lag-min 30 --mqtt'; checked against healthcheck's own options.",
)
@click.option("--no-healthcheck", is_flag=True, help="Do not write the health check units.")
@click.option("--dry-run", is_flag=True, help="Print the units; write nothing.")
@click.option(
    "--enable",
    is_flag=True,
    help="Also run systemctl daemon-reload and enable --now (else the commands are printed).",
)
@click.option("--force", is_flag=True, help="Overwrite unit files that differ (a diff is shown).")
def command(  # noqa: PLR0917 - click passes every option positionally
    config_path: Path,
    user: str | None,
    allow_root: bool,
    groups: tuple[str, ...],
    data_dir: Path,
    env_file: Path,
    unit_dir: Path,
    telegraf: Path | None,
    healthcheck_args: str,
    no_healthcheck: bool,
    dry_run: bool,
    enable: bool,
    force: bool,
) -> None:
    """Install systemd units that run Telegraf with this install's config (bare Linux hosts).

    Writes telegraf-bridge.service (renders and checks the config before every start, then
    runs Telegraf as --user with GPIO/serial group access and a hardened sandbox) and, when
    the config has an InfluxDB sink, telegraf-bridge-healthcheck.service with a timer every
    10 minutes. Paths are this install's: the venv's bridge-cli and the Telegraf binary.
    Checks everything first; refuses to replace a unit that differs unless --force.
    """
    if dry_run and enable:
        raise click.UsageError("--dry-run and --enable exclude each other")
    unit_dir = _absolute(unit_dir)
    plan = make_plan(
        Options(
            config=config_path,
            user=user,
            allow_root=allow_root,
            groups=groups,
            data_dir=data_dir,
            env_file=env_file,
            unit_dir=unit_dir,
            telegraf=telegraf,
            healthcheck_args=healthcheck_args,
            no_healthcheck=no_healthcheck,
        )
    )
    for key, value in plan.summary:
        click.echo(f"{key:<11} {value}")
    if dry_run:
        for name, text in plan.units.items():
            click.echo(f"\n# {unit_dir / name} (mode {UNIT_MODE:04o})\n{text}", nl=False)
        if plan.env_text is not None:
            click.echo(f"\n# {plan.env_file} (mode {ENV_FILE_MODE:04o})\n{plan.env_text}", nl=False)
        click.echo("")
        for note in plan.notes:
            click.echo(f"note: {note}", err=True)
        click.echo("dry run: nothing written")
        return
    if not unit_dir.is_dir():
        raise InstallError(f"unit directory {unit_dir} does not exist")
    if not os.access(unit_dir, os.W_OK):
        raise InstallError(f"cannot write to {unit_dir}: run with sudo, or see --dry-run")
    if enable and unit_dir not in SYSTEM_UNIT_DIRS:
        raise InstallError(f"--enable: systemd does not load units from {unit_dir}")
    new, changed, same = _diffs(plan, unit_dir)
    if changed and not force:
        for name in changed:
            click.echo(_diff_text(unit_dir / name, plan.units[name]), nl=False)
        raise InstallError(
            f"{', '.join(changed)} differ(s) from the installed file(s) (diff above); nothing "
            "written. Re-run with --force to replace, or keep local changes in a drop-in "
            "(systemctl edit)"
        )

    for path in plan.make_dirs:
        path.mkdir(parents=True, exist_ok=True, mode=DATA_DIR_MODE)
        if os.geteuid() == 0:
            os.chown(path, plan.user.pw_uid, plan.user.pw_gid)
        click.echo(f"created {path}/ (mode {DATA_DIR_MODE:04o}, owner {plan.user.pw_name})")
    for name in new + changed:
        write_atomic(unit_dir / name, plan.units[name], mode=UNIT_MODE)
        click.echo(f"wrote {unit_dir / name} (mode {UNIT_MODE:04o})")
    for name in same:
        click.echo(
            f"unchanged {unit_dir / name} (mode {(unit_dir / name).stat().st_mode & 0o777:04o})"
        )
    if plan.env_text is not None:
        _create_env_file(plan.env_file, plan.env_text)
        click.echo(f"created {plan.env_file} (mode {ENV_FILE_MODE:04o}; variable names, no values)")
    else:
        click.echo(f"kept {plan.env_file} (exists)")
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    if enable:
        _systemctl("daemon-reload")
        units = [SERVICE_UNIT] + ([TIMER_UNIT] if TIMER_UNIT in plan.units else [])
        _systemctl("enable", "--now", *units)
        if SERVICE_UNIT in changed:
            _systemctl("try-restart", SERVICE_UNIT)
    click.echo("\nNext:")
    for step in _next_steps(plan, enable):
        click.echo(f"  {step}")
