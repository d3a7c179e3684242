"""The custom Telegraf: pinned version, and build tags equal to what the templates use."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from _support import REPO

from telegraf_bridge import paths


def _template_plugins() -> set[str]:
    found: set[str] = set()
    for template in (REPO / "templates").rglob("*.j2"):
        text = template.read_text()
        found |= set(
            re.findall(r"^\s*\[\[((?:inputs|outputs|processors|secretstores)\.\w+)\]\]", text, re.M)
        )
        kind = "parsers" if template.parent.name == "inputs" else "serializers"
        found |= {f"{kind}.{fmt}" for fmt in re.findall(r'data_format = "(\w+)"', text)}
    # outputs.file offers both serializers through the sink's `format` option.
    found |= {"serializers.influx", "serializers.json"}
    return found


def test_build_tags_are_exactly_the_plugins_the_templates_use() -> None:
    assert set(paths.telegraf_build_tags()) == _template_plugins()


def test_pinned_version_is_what_the_binary_reports(telegraf_bin: Path) -> None:
    out = subprocess.run(
        [str(telegraf_bin), "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith(f"Telegraf {paths.telegraf_version()} ")
    assert paths.telegraf_version() == "1.39.3"


def test_binary_is_cached_outside_the_checkout_keyed_by_version_and_tags(
    telegraf_bin: Path,
) -> None:
    assert REPO not in telegraf_bin.parents
    assert telegraf_bin.parent.name.startswith("1.39.3-")
    assert (telegraf_bin.parent / "TAGS").read_text().strip().split(",")[
        1:
    ] == paths.telegraf_build_tags()


def test_binary_has_only_the_bundles_plugins(telegraf_bin: Path) -> None:
    out = subprocess.run(
        [str(telegraf_bin), "plugins", "inputs"], capture_output=True, text=True, check=True
    )
    assert set(out.stdout.split()) == {"inputs.execd", "inputs.internal", "inputs.mqtt_consumer"}
    out = subprocess.run(
        [str(telegraf_bin), "plugins", "processors"], capture_output=True, text=True, check=True
    )
    assert set(out.stdout.split()) == {"processors.converter", "processors.lookup"}


def test_binary_carries_every_patch_in_telegraf_patches(telegraf_bin: Path) -> None:
    """The fixes in telegraf/patches/ are in the binary the tests and images run (the cache
    key holds their content, so a changed patch rebuilds)."""
    patches = sorted(p.name for p in (REPO / "telegraf" / "patches").glob("*.patch"))
    assert "0001-tracking-ids-unique-across-restarts.patch" in patches
    assert (telegraf_bin.parent / "PATCHES").read_text().split() == patches
