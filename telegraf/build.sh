#!/usr/bin/env bash
# Build the pinned Telegraf with only the plugins the bundle's templates use.
#
# Why a custom build: the full Telegraf is ~245 MB and does not exist for ARMv6; a build with
# `-tags custom,<plugins>` is a fraction of that and cross-compiles with GOARCH=arm GOARM=6.
# The source comes from the Go module proxy (no git checkout needed). The result is cached
# outside the checkout, keyed by version, tag set and target, so a rebuild only happens when
# one of them changes.
#
# Patches in telegraf/patches/*.patch (each a minimal fix, written to be offered upstream) are
# applied to the copied module source in name order; their content is part of the cache key.
#
# Usage: telegraf/build.sh              -> builds if needed, prints the path of the cached binary
#        telegraf/build.sh --path-only  -> prints the path; exit 1 if it is not built yet
# Env:   GOOS/GOARCH/GOARM            -> cross-compile (Dockerfile.armv6 uses GOARCH=arm GOARM=6)
#        TELEGRAF_EXTRA_TAGS          -> extra build tags (benchmarks only; cached separately)
#        TELEGRAF_BRIDGE_CACHE        -> cache root (default ~/.cache/telegraf-bridge)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(tr -d '[:space:]' < "$here/VERSION")"
tags="custom,$(grep -v '^\s*#' "$here/plugins.txt" | grep -v '^\s*$' | tr -d ' ' | sort | paste -sd, -)"
# Extra plugins for comparisons outside the bundle (benchmarks pit inputs.tail against ours).
if [[ -n "${TELEGRAF_EXTRA_TAGS:-}" ]]; then
  tags="$tags,$TELEGRAF_EXTRA_TAGS"
fi

if ! command -v go >/dev/null 2>&1; then
  echo "E! telegraf/build.sh: 'go' is not on PATH; install Go >= 1.26 (https://go.dev/dl/) or set TELEGRAF_BIN to an existing telegraf $version" >&2
  exit 3
fi

goos="${GOOS:-$(go env GOOS)}"
goarch="${GOARCH:-$(go env GOARCH)}"
goarm="${GOARM:-}"
patches=("$here"/patches/*.patch)
[[ -e "${patches[0]}" ]] || patches=()
patch_sum="$(cat "${patches[@]}" /dev/null | sha256sum | cut -c1-16)"
key="$(printf '%s|%s|%s|%s|%s|%s' "$version" "$tags" "$goos" "$goarch" "$goarm" "$patch_sum" | sha256sum | cut -c1-12)"
cache_root="${TELEGRAF_BRIDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/telegraf-bridge}"
out_dir="$cache_root/telegraf/${version}-${goos}-${goarch}${goarm:+v$goarm}-${key}"
out="$out_dir/telegraf"

if [[ -x "$out" ]]; then
  echo "$out"
  exit 0
fi
if [[ "${1:-}" == "--path-only" ]]; then
  echo "$out"
  exit 1
fi

mkdir -p "$out_dir"
started=$SECONDS
echo "I! building telegraf v$version ($goos/$goarch${goarm:+ v$goarm}) with tags: $tags" >&2
# Only Go itself is needed (the Dockerfiles' golang stage has no Python): the module lands at a
# fixed place in the module cache.
if ! GOFLAGS=-mod=mod go mod download "github.com/influxdata/telegraf@v$version"; then
  echo "E! go mod download github.com/influxdata/telegraf@v$version failed (is the Go module proxy reachable?)" >&2
  exit 3
fi
src="$(go env GOMODCACHE)/github.com/influxdata/telegraf@v$version"

work="$(mktemp -d "$cache_root/build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"
for patch_file in "${patches[@]}"; do
  # git apply works outside a repository and is in the golang images the Dockerfiles use.
  if ! (cd "$work" && git apply -p1 "$patch_file"); then
    echo "E! telegraf/build.sh: $patch_file does not apply to telegraf v$version" >&2
    exit 3
  fi
  echo "I! applied $(basename "$patch_file")" >&2
done
(
  cd "$work"
  # `env` because an expansion such as ${goarm:+GOARM=6} is not an assignment in a command
  # prefix: bash would run it as the command name.
  env CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" ${goarm:+GOARM="$goarm"} \
    go build -trimpath -tags "$tags" \
      -ldflags "-s -w -X github.com/influxdata/telegraf/internal.Version=$version -X github.com/influxdata/telegraf/internal.Branch=HEAD -X github.com/influxdata/telegraf/internal.Commit=v$version" \
      -o "$out.tmp" ./cmd/telegraf
)
mv "$out.tmp" "$out"
printf '%s\n' "$tags" > "$out_dir/TAGS"
for patch_file in "${patches[@]}"; do basename "$patch_file"; done > "$out_dir/PATCHES"
echo "I! built $out ($(du -h "$out" | cut -f1)) in $((SECONDS - started)) s" >&2
echo "$out"
