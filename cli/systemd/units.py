"""The unit files: their names and the Jinja environment that renders ``templates/systemd/``.

The environment is separate from render-config's: its ``finalize`` refuses any interpolation
that did not go through an ``sd_*`` filter of :mod:`.escape`, so a template edit cannot put an
unescaped value into a unit.
"""

from __future__ import annotations

from typing import Any

import jinja2
from telegraf_bridge.cli.systemd.escape import (
    UnitText,
    sd_comment,
    sd_exec,
    sd_list,
    sd_quoted,
    sd_value,
)

from telegraf_bridge import paths

SERVICE_UNIT = "telegraf-bridge.service"
HEALTHCHECK_UNIT = "telegraf-bridge-healthcheck.service"
TIMER_UNIT = "telegraf-bridge-healthcheck.timer"
ENV_TEMPLATE = "bridge.env.j2"


def _finalize(value: Any) -> Any:
    """Refuse an interpolation that skipped the escaping filters."""
    if isinstance(value, UnitText):
        return value
    if value is None or value == "":
        return ""
    raise jinja2.TemplateError(f"unit template interpolated {value!r} without an sd_* filter")


def environment() -> jinja2.Environment:
    """The Jinja environment for ``templates/systemd/``, with the ``sd_*`` filters."""
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


def render_units(
    env: jinja2.Environment, context: dict[str, object], with_healthcheck: bool
) -> dict[str, str]:
    """The service unit, plus the health check's service and timer when asked, by file name."""
    names = [SERVICE_UNIT] + ([HEALTHCHECK_UNIT, TIMER_UNIT] if with_healthcheck else [])
    return {name: env.get_template(f"{name}.j2").render(context) for name in names}


def started_units(units: dict[str, str]) -> list[str]:
    """The units ``systemctl enable --now`` starts: the service, and the timer when written."""
    return [SERVICE_UNIT] + ([TIMER_UNIT] if TIMER_UNIT in units else [])
