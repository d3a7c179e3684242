#!/usr/bin/env bash
# Fail early, and say so, when the Python that would build the venv is older than 3.11.
set -euo pipefail
py="${1:-python3}"
if ! command -v "$py" >/dev/null 2>&1; then
  echo "E! $py not found: install Python >= 3.11 (Raspberry Pi OS bookworm ships 3.11) or run make PYTHON=/path/to/python3.11" >&2
  exit 3
fi
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "E! $py is $("$py" -V 2>&1); telegraf-bridge needs Python >= 3.11 (make PYTHON=python3.11)" >&2
  exit 3
fi
"$py" -c 'import venv, ensurepip' 2>/dev/null || {
  echo "E! $py lacks venv/ensurepip: apt-get install python3-venv" >&2
  exit 3
}
