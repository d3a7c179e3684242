#!/usr/bin/env bash
# Build (or reuse) a real InfluxDB 2 server, influxd, for the v2 tests.
#
# Why build it: no influxd 2.x package is reachable from this machine, and the tests of the
# Cloud/v2 path need a real server rather than our fake. The source comes from the Go module
# proxy; flux's Rust core (libflux) is built by the pkg-config the server's go.mod pins, with
# crates from crates.io. The result is cached outside the checkout, keyed by version and target,
# so a rebuild only happens when one of them changes. No `assets` tag: the server is built
# without the UI and fetches nothing else.
#
# Usage: scripts/build-influxd2.sh              -> builds if needed, prints the path of the binary
#        scripts/build-influxd2.sh --path-only  -> prints the path; exit 1 if it is not built yet
# Env:   INFLUXD2_BIN           -> use this influxd 2.x instead of building one
#        INFLUXD2_VERSION       -> the influxdb/v2 module version (default v2.7.12)
#        TELEGRAF_BRIDGE_CACHE  -> cache root (default ~/.cache/telegraf-bridge)
set -euo pipefail

version="${INFLUXD2_VERSION:-v2.7.12}"
# The pkg-config the server's go.mod pins for v2.7.x (v0.3.x cannot be fetched here).
pkg_config_version="v0.2.14"
tags="sqlite_foreign_keys,sqlite_json"

# An influxd 2.x of one's own (e.g. from InfluxData's packages) replaces the build.
if [[ -n "${INFLUXD2_BIN:-}" ]]; then
  if [[ ! -x "$INFLUXD2_BIN" ]]; then
    echo "E! scripts/build-influxd2.sh: INFLUXD2_BIN=$INFLUXD2_BIN is not an executable file" >&2
    exit 3
  fi
  echo "$INFLUXD2_BIN"
  exit 0
fi

missing=()
for tool in go cargo rustc; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "E! scripts/build-influxd2.sh: ${missing[*]} not on PATH; influxd $version needs Go >= 1.26 (https://go.dev/dl/) and a stable Rust with cargo (https://rustup.rs), or set INFLUXD2_BIN to an existing influxd 2.x" >&2
  exit 3
fi

goos="$(go env GOOS)"
goarch="$(go env GOARCH)"
cache_root="${TELEGRAF_BRIDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/telegraf-bridge}"
out_dir="$cache_root/influxd2/${version}-${goos}-${goarch}"
out="$out_dir/influxd"
stamp="$out_dir/BUILT"

if [[ -x "$out" && -f "$stamp" ]]; then
  echo "$out"
  exit 0
fi
if [[ "${1:-}" == "--path-only" ]]; then
  echo "$out"
  exit 1
fi

mkdir -p "$out_dir"
started=$SECONDS
echo "I! building influxd $version ($goos/$goarch) with tags: $tags (cold: ~10 min on 2 cores)" >&2
if ! GOFLAGS=-mod=mod go mod download "github.com/influxdata/influxdb/v2@$version"; then
  echo "E! go mod download github.com/influxdata/influxdb/v2@$version failed (is the Go module proxy reachable?)" >&2
  exit 3
fi
src="$(go env GOMODCACHE)/github.com/influxdata/influxdb/v2@$version"

work="$(mktemp -d "$cache_root/influxd2-build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
mkdir "$work/src" "$work/bin"
# The module cache is read-only; the build writes next to the sources.
cp -r "$src/." "$work/src/"
chmod -R u+w "$work/src"

if ! GOBIN="$work/bin" GOFLAGS=-mod=mod go install "github.com/influxdata/pkg-config@$pkg_config_version"; then
  echo "E! go install github.com/influxdata/pkg-config@$pkg_config_version failed (is the Go module proxy reachable?)" >&2
  exit 3
fi
# flux-core denies warnings and today's rustc warns; RUSTFLAGS does not reach the host
# build-dependencies, a wrapper around every rustc call does. Cargo already passes
# `--cap-lints allow` for dependencies: those calls are left as they are.
cat > "$work/bin/rustc-cap-lints" <<'EOF'
#!/bin/sh
for arg in "$@"; do
  case "$arg" in --cap-lints*) exec "$@" ;; esac
done
exec "$@" --cap-lints warn
EOF
chmod +x "$work/bin/rustc-cap-lints"

# flux pins Rust 1.72 in rust-toolchain.toml, which cannot be downloaded here: the installed
# stable builds it. pkg-config builds libflux in $GOCACHE/pkgconfig (cargo's target dir there),
# so CARGO_TARGET_DIR must not move it elsewhere.
export PKG_CONFIG="$work/bin/pkg-config"
export RUSTUP_TOOLCHAIN=stable
export RUSTC_WRAPPER="$work/bin/rustc-cap-lints"
export GOFLAGS=-mod=mod
unset CARGO_TARGET_DIR

go_version="$(go env GOVERSION)"
(
  cd "$work/src"
  # Go 1.26.11 and later refuse the LTO bitcode sections rustc leaves in the archive
  # ("disallowed LTO section .llvmbc"): build libflux first and strip them before linking.
  if [[ "$(printf '%s\n' go1.26.11 "$go_version" | sort -V | head -n1)" == "go1.26.11" ]]; then
    command -v objcopy >/dev/null 2>&1 || {
      echo "E! $go_version needs objcopy (binutils) to strip .llvmbc from libflux.a" >&2
      exit 3
    }
    "$PKG_CONFIG" --libs flux >/dev/null
    lib="$(find "$(go env GOCACHE)/pkgconfig" -path '*/libflux/target/*release/libflux.a' | head -n1)"
    objcopy --remove-section=.llvmbc --remove-section=.llvmcmd "$lib"
  fi
  go build -trimpath -tags "$tags" \
    -ldflags "-s -w -X main.version=$version -X main.commit=$version" \
    -o "$out.tmp" ./cmd/influxd
)
"$out.tmp" version >/dev/null
mv "$out.tmp" "$out"
printf 'version=%s\ntags=%s\ngo=%s\nrustc=%s\n' "$version" "$tags" "$go_version" \
  "$(RUSTUP_TOOLCHAIN=stable rustc --version)" > "$stamp"
echo "I! built $out ($(du -h "$out" | cut -f1)) in $((SECONDS - started)) s" >&2
echo "$out"
