"""The container entrypoint: render telegraf.conf, validate it, drop root, exec Telegraf.

It is Python, not a shell script, so the container renders with exactly the code and the
environment rules of ``bridge-cli render-config`` and validates with ``check-config``'s rules.
Everything the config touches happens after root is dropped, so a token file the run-as user
cannot read fails the check here, with a clear message, instead of failing later in Telegraf.

Environment (all optional):

- ``BRIDGE_CONFIG_YAML``: the bridge.yaml text itself (balena fleet variables);
- ``BRIDGE_CONFIG``: a bridge.yaml file (default ``/etc/telegraf-bridge/bridge.yaml``); when
  neither exists the embedded container default runs the demo into a file;
- ``BRIDGE_DATA_DIR``: buffer, state, the rendered config (default ``/var/lib/telegraf-bridge``);
  relative paths in the config are under it;
- ``BRIDGE_RUN_AS``: the user Telegraf and the plugins run as (default ``bridge``; ``root``
  keeps root, for device nodes only root may open);
- ``BRIDGE_HEALTH_LISTEN``: Telegraf's health endpoint when the config disables it
  (default ``127.0.0.1:8080``); the container health check needs one;
- ``BRIDGE_CHECK``: ``0`` skips ``telegraf config check`` (it costs a few seconds on a Pi Zero);
- every variable ``bridge-cli render-config`` reads (``BRIDGE_SINK_<NAME>_<KEY>``,
  ``INFLUX_TOKEN``, ``INFLUXDB_HOST``, ...).

Arguments: none runs Telegraf; arguments starting with ``-`` are passed to Telegraf
(``--debug``); anything else is run instead, as the run-as user in the data directory
(``docker run IMAGE bridge-cli devices list``).
"""

from __future__ import annotations

import grp
import os
import pwd
import sys
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from telegraf_bridge.cli import device_nodes, dir_lock, preflight, render
from telegraf_bridge.cli.commands.check_config import config_check
from telegraf_bridge.cli.config_model import FileSink, TokenSink
from telegraf_bridge.cli.settings import InvalidConfig, Settings, load_settings
from telegraf_bridge.cli.telegraf_bin import TelegrafNotFound, telegraf_path

from telegraf_bridge import paths

CONFIG_YAML_ENV = "BRIDGE_CONFIG_YAML"
CONFIG_ENV = "BRIDGE_CONFIG"
DATA_DIR_ENV = "BRIDGE_DATA_DIR"
RUN_AS_ENV = "BRIDGE_RUN_AS"
HEALTH_ENV = "BRIDGE_HEALTH_LISTEN"
CHECK_ENV = "BRIDGE_CHECK"

DEFAULT_CONFIG = paths.CONFIG_FILE
DEFAULT_DATA_DIR = paths.DATA_DIR
DEFAULT_RUN_AS = "bridge"
DEFAULT_HEALTH = "127.0.0.1:8080"
RENDERED_NAME = "telegraf.conf"
# Where the health probe learns the address the rendered config really listens on.
HEALTH_FILE_NAME = ".health-listen"

EX_CONFIG = 78  # sysexits.h: configuration error; a restart loop will not fix it


class EntrypointError(Exception):
    """A problem the user must fix; the message says how."""


def log(level: str, message: str) -> None:
    """Telegraf's log shape, so `docker logs` reads as one stream."""
    print(f"{level}! [entrypoint] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ConfigChoice:
    """Which bridge.yaml the container runs, and how to name it in messages."""

    label: str
    path: Path | None = None
    text: str | None = None


def choose_config(env: dict[str, str]) -> ConfigChoice:
    """BRIDGE_CONFIG_YAML, else the BRIDGE_CONFIG file, else the embedded container default."""
    inline = env.get(CONFIG_YAML_ENV, "")
    if inline.strip():
        return ConfigChoice(label=f"${CONFIG_YAML_ENV}", text=inline)
    explicit = env.get(CONFIG_ENV)
    path = Path(explicit) if explicit else DEFAULT_CONFIG
    if path.is_file():
        return ConfigChoice(label=str(path), path=path)
    if explicit:
        # A named file that is missing is a mistake (a typo, a mount that did not happen);
        # falling back to the demo would hide it.
        raise EntrypointError(
            f"{CONFIG_ENV}={explicit} does not exist in the container: mount your bridge.yaml "
            f"there, or unset {CONFIG_ENV} to run the embedded demo config"
        )
    text = resources.files("telegraf_bridge.telegraf").joinpath("container.yaml").read_text()
    return ConfigChoice(label="the embedded container default (demo)", text=text)


def load(env: dict[str, str], data_dir: Path) -> tuple[Settings, ConfigChoice]:
    """The validated settings, anchored in the data directory, with a health endpoint."""
    choice = choose_config(env)
    try:
        settings = load_settings(choice.path, env, text=choice.text, base_dir=data_dir)
    except InvalidConfig as exc:
        raise EntrypointError(str(exc).replace("<embedded>", choice.label)) from None
    # The schema's defaults name the images' volume; on another data dir (balena's /data) they
    # must follow it, or the buffer would live outside the volume and vanish with the container.
    agent = settings.agent
    if data_dir != DEFAULT_DATA_DIR:
        agent = replace(
            agent,
            buffer_directory=_follow(agent.buffer_directory, "buffer", data_dir),
            state_directory=_follow(agent.state_directory, "state", data_dir),
        )
    if not agent.health_listen:
        listen = env.get(HEALTH_ENV) or DEFAULT_HEALTH
        agent = replace(agent, health_listen=listen)
        settings.notes.append(f"health endpoint on {listen}: the container health check uses it")
    return replace(settings, agent=agent), choice


def _follow(directory: str, sub: str, data_dir: Path) -> str:
    """``directory``, moved under ``data_dir`` when it is the images' default one."""
    return str(data_dir / sub) if directory == str(DEFAULT_DATA_DIR / sub) else directory


def render_into(settings: Settings, data_dir: Path, label: str) -> Path:
    """Write telegraf.conf (0600) and the plugin configs; create the directories they use."""
    output = data_dir / RENDERED_NAME
    rendered = render.render(settings, output, config_source=label)
    render.write(rendered, output)
    for directory in (settings.agent.buffer_directory, settings.agent.state_directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
    for sink in settings.active_sinks():
        if isinstance(sink, FileSink):
            Path(sink.path).parent.mkdir(parents=True, exist_ok=True)
    (data_dir / HEALTH_FILE_NAME).write_text(settings.agent.health_listen + "\n")
    return output


def device_groups(dev: Path = Path("/dev")) -> tuple[set[int], list[str]]:
    """The device nodes' groups; the warnings name the container's way out."""
    gids, warnings = device_nodes.device_groups(dev)
    return gids, [f"{warning}, or set {RUN_AS_ENV}=root" for warning in warnings]


def hand_over(data_dir: Path, uid: int, gid: int) -> int:
    """Give the data directory to the run-as user; returns how many entries changed owner.

    Only entries owned by someone else are touched, so a large buffer costs one stat per file,
    and symlinks are never followed (a planted link must not chown a file outside).
    """
    changed = 0
    for root, dirs, files in os.walk(data_dir):
        for name in [Path(root), *(Path(root, n) for n in dirs + files)]:
            info = name.lstat()
            if info.st_uid != uid or info.st_gid != gid:
                os.lchown(name, uid, gid)
                changed += 1
    return changed


def drop_privileges(user: str, data_dir: Path, env: dict[str, str]) -> None:
    """Become ``user`` with its groups plus the device nodes' groups, owning the data dir."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise EntrypointError(f"{RUN_AS_ENV}={user}: no such user in the image") from None
    changed = hand_over(data_dir, entry.pw_uid, entry.pw_gid)
    if changed:
        log("I", f"gave {changed} entries under {data_dir} to {user}")
    extra, warnings = device_groups()
    for warning in warnings:
        log("W", warning)
    groups = set(os.getgrouplist(user, entry.pw_gid)) | extra
    os.setgroups(sorted(groups))
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    names = []
    for gid in sorted(groups):
        try:
            names.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            names.append(str(gid))
    log("I", f"running as {user} (uid {entry.pw_uid}, groups {','.join(names)})")
    env.update(HOME=entry.pw_dir, USER=user, LOGNAME=user)


_PREFLIGHT_LEVELS = {"ok": "I", "warn": "W", "fail": "E"}


def run_preflight(settings: Settings, env: dict[str, str]) -> Settings:
    """Log the preflight; returns the settings to render (without a health output on a busy port).

    A sink that answered and refused (credentials, organization, not InfluxDB) stops start-up
    with its fix: Telegraf would drop what such a sink refuses, while the sources keep their
    data until the container starts. An unreachable sink only warns (Telegraf buffers on
    disk), and a busy health port is rendered away so Telegraf does not stop on it.
    """
    findings = preflight.preflight(settings, env=env)
    for finding in findings:
        log(_PREFLIGHT_LEVELS[finding.level], finding.line())
    if preflight.has_failures(findings):
        failed = ", ".join(f.subject for f in findings if f.level == "fail")
        raise EntrypointError(f"preflight failed for {failed}: see the fix on each line above")
    return preflight.health_fallback(settings, findings)


def prepare(env: dict[str, str], data_dir: Path, *, check: bool) -> tuple[Path, Path, list[Path]]:
    """Render and validate; returns (telegraf binary, rendered config, directories to lock)."""
    try:
        binary = telegraf_path()
    except TelegrafNotFound as exc:
        raise EntrypointError(str(exc)) from None
    settings, choice = load(env, data_dir)
    for note in settings.notes:
        log("I", note)
    settings = run_preflight(settings, env)
    conf = render_into(settings, data_dir, choice.label)
    log("I", f"rendered {conf} from {choice.label}")
    unset = [name for name in settings.referenced_env() if not env.get(name)]
    if unset:
        raise EntrypointError(
            f"the config reads {', '.join(unset)} from the environment and it is not set: "
            "pass it with `-e`, an env_file or a balena variable"
        )
    for sink in settings.active_sinks():
        token_file = sink.token_file if isinstance(sink, TokenSink) else ""
        if not token_file:
            continue
        if not os.access(token_file, os.R_OK):
            raise EntrypointError(
                f"token file {token_file} of sink {sink.name} is missing or not readable "
                f"by uid {os.getuid()}: mount it (docker secret, volume) readable by that user"
            )
        problem = render.token_file_problem(Path(token_file))
        if problem:
            raise EntrypointError(problem)
    if check:
        ok, output = config_check(binary, conf)
        if not ok:
            for line in output.splitlines():
                log("E", line)
            raise EntrypointError(f"Telegraf rejects {conf}; fix {choice.label}")
        log("I", "telegraf config check: OK")
    agent = settings.agent
    return binary, conf, [Path(agent.buffer_directory), Path(agent.state_directory)]


def main(argv: list[str] | None = None) -> int:  # noqa: RET503 - ends in execve
    """Entry point of the `bridge-entrypoint` console script (the images' ENTRYPOINT)."""
    args = sys.argv[1:] if argv is None else argv
    env = dict(os.environ)
    data_dir = Path(env.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).resolve()
    user = env.get(RUN_AS_ENV) or DEFAULT_RUN_AS
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0 and user != "root":
            drop_privileges(user, data_dir, env)
        os.chdir(data_dir)
        if args and not args[0].startswith("-"):
            log("I", f"running {args[0]} instead of Telegraf")
            os.execvpe(args[0], args, env)  # noqa: S606 - the user's own command, as given
        binary, conf, directories = prepare(env, data_dir, check=env.get(CHECK_ENV, "1") != "0")
        # Kept open across exec: the lock lasts as long as Telegraf does.
        dir_lock.lock_directories(directories)
    except dir_lock.DirectoryBusy as exc:
        log("E", str(exc))
        return 1
    except EntrypointError as exc:
        log("E", str(exc))
        return EX_CONFIG
    except OSError as exc:
        log("E", f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return 1
    command = [str(binary), "--config", str(conf), "--strict-env-handling", *args]
    log("I", "starting " + " ".join(command))
    os.execve(binary, command, env)  # noqa: S606 - Telegraf becomes the container's process


if __name__ == "__main__":
    sys.exit(main())
