#!/usr/bin/env bash
# Build the pinned taptap (the Tigo RS485 decoder) from crates.io, cached outside the checkout.
#
# Why pinned and cached: the taptap plugin wraps `taptap observe`, and the tests feed the real
# decoder bus bytes; a fixed version keeps its output format (0.1.x: nested gateway/node
# objects) what the tests expect. `cargo install --locked` uses taptap's own lock file.
#
# Usage: scripts/install-taptap.sh             -> builds if needed, prints the binary's path
#        scripts/install-taptap.sh --path-only -> prints the path; exit 1 if not built yet
# Env:   TAPTAP_VERSION (default 0.1.1), TELEGRAF_BRIDGE_CACHE (default ~/.cache/telegraf-bridge)
set -euo pipefail

version="${TAPTAP_VERSION:-0.1.1}"
cache_root="${TELEGRAF_BRIDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/telegraf-bridge}"
root="$cache_root/taptap-$version"
out="$root/bin/taptap"

if [[ -x "$out" ]]; then
  echo "$out"
  exit 0
fi
if [[ "${1:-}" == "--path-only" ]]; then
  echo "$out"
  exit 1
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "E! scripts/install-taptap.sh: 'cargo' is not on PATH; install Rust with rustup (https://rustup.rs) or set TAPTAP_BIN to an existing taptap $version" >&2
  exit 3
fi
# taptap's serial support links libudev (crate libudev-sys finds it with pkg-config).
if ! pkg-config --exists libudev 2>/dev/null; then
  echo "E! scripts/install-taptap.sh: libudev development files are missing; run: sudo apt-get install libudev-dev pkg-config" >&2
  exit 3
fi
echo "I! building taptap $version from crates.io into $root (about a minute)" >&2
log="$(mktemp)"
if ! cargo install taptap --locked --version "$version" --root "$root" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  rm -f "$log"
  echo "E! cargo install taptap $version failed (output above)" >&2
  exit 3
fi
rm -f "$log"
echo "$out"
