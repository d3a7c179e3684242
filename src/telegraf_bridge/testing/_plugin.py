"""A plugin's context as ``plugin_main`` builds it, for driving a source in a test process."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from telegraf_bridge.plugins.common import (
    ClockGuard,
    LineProtocolSerializer,
    LineWriter,
    PluginContext,
    Section,
    SkipCounter,
)
from telegraf_bridge.plugins.common._wakeup import Wakeup


def plugin_ctx(
    name: str,
    options: Mapping[str, Any],
    state_dir: Path,
    interval_s: float = 60.0,
    stdout: BinaryIO | None = None,
) -> PluginContext:
    """The :class:`PluginContext` a plugin's factory gets under Telegraf, without a process.

    ``options`` are the plugin's TOML table as a dict (read through the same typed
    ``Section``); lines written through ``ctx.writer`` go to ``stdout`` (an in-memory buffer
    unless given). Two things differ from a real run, so tests can use any timestamp: the time
    floor is 0 and the clock guard does not wait for the kernel's clock sync.
    """
    serializer = LineProtocolSerializer(time_floor_ns=0, counter=SkipCounter())
    return PluginContext(
        name=name,
        config=Section(options, name),
        state_dir=state_dir,
        instance=name,
        serializer=serializer,
        clock_guard=ClockGuard(floor_ns=0, require_sync=False),
        interval_s=interval_s,
        writer=LineWriter(stdout if stdout is not None else io.BytesIO(), serializer),
        wakeup=Wakeup(),
    )
