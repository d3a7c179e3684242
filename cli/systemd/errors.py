"""The one error of the systemd installer."""

from __future__ import annotations

import click


class InstallError(click.ClickException):
    """Bad input or an unusable host; the message says what to do."""
