"""What this host offers the service: its user, device groups, programs and permissions.

Everything here is asked of the host itself (the user database, the kernel's access(2) as the
service user, the programs' ``--version``), so a unit is never written for a user who cannot
run it.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from telegraf_bridge.cli.device_nodes import device_groups
from telegraf_bridge.cli.systemd.errors import InstallError
from telegraf_bridge.cli.telegraf_bin import TelegrafNotFound, telegraf_path

from telegraf_bridge import paths

# Groups that own GPIO chips (Raspberry Pi OS: gpio) and serial ports (Debian: dialout).
DEVICE_GROUPS = ("gpio", "dialout")
_CHECK_TIMEOUT = 60.0


def absolute(path: Path) -> Path:
    """Absolute and normalised, symlinks kept (a /usr/local/bin/telegraf link may be swapped)."""
    return Path(os.path.normpath(Path(path).absolute()))


def default_user() -> str:
    """The user who ran sudo, else the current user: the person installing, not root."""
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user and sudo_user != "root":
        return sudo_user
    return pwd.getpwuid(os.geteuid()).pw_name


def lookup_user(name: str | None, allow_root: bool) -> pwd.struct_passwd:
    """The service user (``--user`` or :func:`default_user`); root only when allowed."""
    name = name or default_user()
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise InstallError(
            f"unknown user {name!r}; create one for the service with: sudo useradd --system "
            f"--home-dir {paths.DATA_DIR} --shell /usr/sbin/nologin {name}"
        ) from None
    if user.pw_uid == 0 and not allow_root:
        raise InstallError(
            "refusing to run Telegraf as root: pass --user NAME (a user in the dialout/gpio "
            "groups, or a system user), or --allow-root if you really mean it"
        )
    return user


def supplementary_groups(extra: tuple[str, ...]) -> tuple[list[str], list[str]]:
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


def bridge_cli() -> Path:
    """The ``bridge-cli`` of this venv, which the units run."""
    candidate = Path(sys.executable).parent / "bridge-cli"
    if not (candidate.is_file() and os.access(candidate, os.X_OK)):
        raise InstallError(
            f"bridge-cli is not next to this Python ({sys.executable}); run install-systemd "
            "with the bridge-cli of the venv the service should use"
        )
    return absolute(candidate)


def telegraf_binary(explicit: Path | None) -> Path:
    """``--telegraf``, else the Telegraf that ``bridge-cli telegraf-path`` finds."""
    if explicit is None:
        try:
            explicit = telegraf_path()
        except TelegrafNotFound as exc:
            raise InstallError(f"{exc}; or pass --telegraf PATH") from None
    binary = absolute(explicit)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise InstallError(f"--telegraf {binary} is not an executable file")
    return binary


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


def _access_checks(
    programs: list[Path], readable: list[Path], writable: list[Path]
) -> list[tuple[str, Path]]:
    """The ``test`` flag and path for every permission the service needs."""
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
    return checks


def _unrunnable(user: pwd.struct_passwd, programs: list[Path]) -> list[str]:
    """Programs that fail ``--version`` as ``user`` (their imports, their libraries)."""
    if user.pw_uid == os.geteuid():
        return []  # this process already runs bridge-cli and Telegraf (its version) as itself
    problems = []
    for program in programs:
        done = _as_user(user, [str(program), "--version"])
        if done is not None and done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            why = lines[-1] if lines else f"exit status {done.returncode}"
            problems.append(f"{user.pw_name} cannot run {program} --version: {why}")
    return problems


def access_problems(
    user: pwd.struct_passwd, programs: list[Path], readable: list[Path], writable: list[Path]
) -> tuple[list[str], list[str]]:
    """What ``user`` cannot do that the service needs, asked of the kernel as that user.

    access(2) (``test``) judges every path, so a venv or Telegraf under /root is caught even
    where exec is lenient; each program also runs ``--version`` (its imports, its libraries).
    """
    who = user.pw_name
    if user.pw_uid == 0:
        return [], []  # root passes every permission check
    problems: list[str] = []
    for flag, path in _access_checks(programs, readable, writable):
        done = _as_user(user, ["test", flag, str(path)])
        if done is None:
            return [], [f"not checked that {who} can run and read what the service needs"]
        if done.returncode != 0:
            verb = {"-r": "read", "-w": "write to"}.get(flag) or (
                "enter" if path.is_dir() else "run"
            )
            problems.append(f"{who} cannot {verb} {path}")
    problems += _unrunnable(user, programs)
    if problems:
        problems.append(
            f"fix: make them readable by {who} (a venv and Telegraf under /opt rather than "
            f"/root or another home; `sudo chown {who}` the data directories), or pass --user"
        )
    return list(dict.fromkeys(problems)), []
