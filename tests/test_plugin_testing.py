"""telegraf_bridge.testing, the helpers a plugin author's tests use (plugins/common/README.md)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from _support import REPO
from telegraf_bridge.plugins.common import ConfigError, Point
from telegraf_bridge.plugins.demo.plugin import DemoSource

from telegraf_bridge.testing import parse_lines, plugin_ctx

README = REPO / "plugins" / "common" / "README.md"
T0 = 1_800_000_000 * 10**9


def _python_block(heading: str) -> str:
    """The first ```python block after ``heading`` in plugins/common/README.md."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(f"\n## {heading}\n") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python example under '## {heading}'"
    return match.group(1)


def test_the_documented_example_runs(tmp_path: Path) -> None:
    """The README's plugin ("Using it") passes the README's test ("Testing a plugin")."""
    namespace: dict[str, Any] = {"__name__": "readme_example", "ts_ns": T0}
    exec(_python_block("Using it"), namespace)  # noqa: S102 - our own README, the doc under test
    exec(_python_block("Testing a plugin"), namespace)  # noqa: S102 - same
    namespace["test_my_source"](tmp_path)


def test_plugin_ctx_runs_a_real_plugin_as_plugin_main_does(tmp_path: Path) -> None:
    out = io.BytesIO()
    ctx = plugin_ctx("demo", {"site": "roof", "devices": 2}, tmp_path, interval_s=10, stdout=out)
    source = DemoSource(ctx)
    points: list[Point] = []
    source.gather(points.append)
    assert ctx.writer.write_points(points) == 2
    source.close()

    parsed = parse_lines(out.getvalue().decode())
    assert [(p.measurement, p.tags) for p in parsed] == [
        ("demo", {"device": "roof-1", "site": "roof"}),
        ("demo", {"device": "roof-2", "site": "roof"}),
    ]
    # The field types the plugin declared on ctx.serializer reached the written lines.
    assert all(type(p.fields["energy_wh"]) is int for p in parsed)
    assert all(type(p.fields["power_w"]) is float for p in parsed)
    assert all(p.time_ns is not None and p.time_ns % (10 * 10**9) == 0 for p in parsed)
    # State lands in the given directory under the name plugin_main's context gives it.
    assert ctx.state_path() == tmp_path / "demo-demo.state.json"
    assert ctx.state_path().exists()


def test_plugin_ctx_reads_options_through_the_typed_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="devises"):
        DemoSource(plugin_ctx("demo", {"devises": 2}, tmp_path))
    with pytest.raises(ConfigError, match="devices"):
        DemoSource(plugin_ctx("demo", {"devices": "two"}, tmp_path))
