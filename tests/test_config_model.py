"""The typed config mirrors the schema: one field per option, of the option's type.

The schema (cli/schema.py) validates and documents every option; cli/config_model.py carries the
validated values to the commands. If an option is added to one and not the other, or its kind
changes, this fails.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path

import pytest
from telegraf_bridge.cli import config_model, schema
from telegraf_bridge.cli.settings import load_settings
from telegraf_bridge.plugins.iotflow.options import IotflowOptions

# The Python type each schema kind is validated into.
KIND_TYPES: dict[str, object] = {
    "boolean": bool,
    "integer": int,
    "duration": str,
    "path": str,
    "string": str,
    "name": str,
    "url": str,
    "env_name": str,
    "mapping": Mapping[str, object],
}

SECTIONS = [
    (config_model.AgentConfig, schema.AGENT),
    (config_model.DownsamplingConfig, schema.DOWNSAMPLING),
    (config_model.SourceConfig, schema.SOURCE),
    *[
        (config_model.SINK_CLASSES[kind], schema.SINK_COMMON + opts)
        for kind, opts in schema.SINK_TYPE_OPTS.items()
    ],
]


@pytest.mark.parametrize(("cls", "opts"), SECTIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_each_typed_section_has_one_field_per_option_of_its_type(
    cls: type, opts: tuple[schema.Opt, ...]
) -> None:
    hints = typing.get_type_hints(cls, vars(config_model))
    names = [f.name for f in dataclasses.fields(cls) if f.name != "parsed"]
    assert sorted(names) == sorted(o.key for o in opts)
    for opt in opts:
        assert hints[opt.key] == KIND_TYPES[opt.kind], opt.key


def test_every_sink_type_has_its_class() -> None:
    assert set(config_model.SINK_CLASSES) == set(schema.SINK_TYPES)
    for kind, cls in config_model.SINK_CLASSES.items():
        values = {o.key: o.default for o in schema.SINK_COMMON + schema.SINK_TYPE_OPTS[kind]}
        assert type(config_model.sink_from({**values, "type": kind})) is cls


CONFIG = """
sources:
  - {name: flow, plugin: iotflow, options: {http: {listen: "127.0.0.1:0"}}}
  - {name: spare, plugin: iotflow, enabled: false, options: {}}
sinks:
  - {name: out, type: file, path: out.lp}
  - {name: db, type: influxdb_v1, url: "http://127.0.0.1:8086", database: d}
"""


def test_loaded_settings_are_typed_with_the_plugins_own_options() -> None:
    settings = load_settings(None, {}, text=CONFIG, base_dir=Path("/srv/bridge"))
    assert isinstance(settings.agent, config_model.AgentConfig)
    flow, spare = settings.sources
    assert isinstance(flow.parsed, IotflowOptions), "the plugin's parser ran once, at load"
    assert spare.parsed is None, "a disabled source's options are not parsed"
    out, db = settings.sinks
    assert isinstance(out, config_model.FileSink) and out.path == "/srv/bridge/out.lp"
    assert isinstance(db, config_model.V1Sink) and db.database == "d"
    assert settings.active_influx_sinks() == [db]
    with pytest.raises(dataclasses.FrozenInstanceError):
        db.database = "other"  # type: ignore[misc]


def test_a_command_validates_its_config_once_and_carries_it_in_ctx_obj(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group puts a BridgeContext in ctx.obj; the command's settings come from it."""
    import click
    from click.testing import CliRunner
    from telegraf_bridge.cli import settings as settings_module
    from telegraf_bridge.cli.context import BridgeContext
    from telegraf_bridge.cli.main import cli

    config = tmp_path / "bridge.yaml"
    config.write_text("sinks: [{name: out, type: file, path: out.lp}]\n")
    validated: list[str] = []
    carried: list[bool] = []
    real_validate = settings_module._validate
    real_settings = BridgeContext.settings

    def counting(*args: object, **kwargs: object) -> object:
        validated.append("validate")
        return real_validate(*args, **kwargs)  # type: ignore[arg-type]

    def recording(self: BridgeContext, *args: object, **kwargs: object) -> object:
        carried.append(click.get_current_context().obj is self)
        return real_settings(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(settings_module, "_validate", counting)
    monkeypatch.setattr(BridgeContext, "settings", recording)
    out = tmp_path / "telegraf.conf"
    args = ["render-config", "--config", str(config), "--output", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert carried == [True], "the command asked the BridgeContext in ctx.obj"
    assert validated == ["validate"]
    assert out.exists()


def test_a_plugins_problem_names_the_sources_index_in_the_file() -> None:
    """A non-mapping entry before a source does not shift the index its problems name."""
    from telegraf_bridge.cli.settings import InvalidConfig

    text = (
        "sources:\n  - just a string\n"
        "  - {name: flow, plugin: iotflow, options: {http: {listen: 'nowhere'}}}\n"
        "sinks: [{name: out, type: file, path: out.lp}]\n"
    )
    with pytest.raises(InvalidConfig) as caught:
        load_settings(None, {}, text=text, base_dir=Path("/srv"))
    problems = caught.value.problems
    assert any(p.startswith("sources[0] is invalid") for p in problems), problems
    assert any(p.startswith("sources[1].options.http.listen") for p in problems), problems


def test_every_command_loads_its_config_through_the_bridge_context() -> None:
    """One way to load a config in cli/: ``bridge_context().settings`` (ctx.obj)."""
    from _support import REPO

    direct = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "cli").rglob("*.py"))
        if path.name not in ("settings.py", "context.py") and "load_settings(" in path.read_text()
    ]
    assert direct == []
