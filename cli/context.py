"""click's ``ctx.obj`` for bridge-cli: the configuration, read and validated once per command.

Why: every command takes ``--config`` and several layers of a command need the settings (the
command, the sink picker, the admin context, preflight). They ask this object, which loads and
validates a config once per invocation and hands every layer the same typed
:class:`~telegraf_bridge.cli.settings.Settings`; the group creates it, and a command invoked on
its own (tests, ``make_context``) gets one on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import click
from telegraf_bridge.cli.settings import Settings, load_settings

_Key = tuple[str, str | None, str | None, tuple[tuple[str, str], ...] | None]


@dataclass
class BridgeContext:
    """The settings each config of this invocation loaded to, by how it was loaded."""

    loaded: dict[_Key, Settings] = field(default_factory=dict)

    def settings(
        self,
        path: Path | None,
        env: Mapping[str, str] | None = None,
        *,
        text: str | None = None,
        base_dir: Path | None = None,
    ) -> Settings:
        """:func:`load_settings` of these arguments, validated on the first call only.

        Raises :class:`~telegraf_bridge.cli.settings.InvalidConfig` (never cached).
        """
        env_key = None if env is None else tuple(sorted(env.items()))
        key: _Key = (str(path), text, None if base_dir is None else str(base_dir), env_key)
        if key not in self.loaded:
            self.loaded[key] = load_settings(path, env, text=text, base_dir=base_dir)
        return self.loaded[key]


def bridge_context() -> BridgeContext:
    """The invocation's :class:`BridgeContext` (a new one outside any command)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return BridgeContext()
    return ctx.ensure_object(BridgeContext)
