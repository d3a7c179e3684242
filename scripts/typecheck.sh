#!/usr/bin/env bash
# mypy --strict on the installed layout: the top-level folders are mapped into telegraf_bridge
# by the build backend, which mypy cannot follow through the editable-install import hook, so
# the same mapping is rebuilt here as a tree of symlinks under build/typecheck. The tests' servers
# (tests/rig, imported as `rig`) are checked as strictly: the tests stand on them.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=build/typecheck/telegraf_bridge
rm -rf build/typecheck
mkdir -p "$tree"
for item in src/telegraf_bridge/*; do ln -s "../../../$item" "$tree/$(basename "$item")"; done
for dir in cli plugins templates telegraf; do ln -s "../../../$dir" "$tree/$dir"; done
ln -s ../../tests/rig build/typecheck/rig
exec "${MYPY:-.venv/bin/mypy}" --config-file pyproject.toml -p telegraf_bridge -p rig "$@"
