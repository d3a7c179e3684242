#!/usr/bin/env bash
# Debian armel's CPython 3.11, unpacked (not installed) for running under `qemu-arm -cpu arm1176`.
#
# Why: it is the Python that Dockerfile.armv6 ships (Debian armel targets ARMv5TE, so it runs on
# the Pi Zero's ARM1176), and running the plugins on it here, with no Pi, no chroot and no
# binfmt, proves they need nothing the Pi Zero lacks. The packages are fetched with
# `apt-get download` (after `dpkg --add-architecture armel`; needs root, as CI has) and unpacked
# with `dpkg -x` into the cache, so nothing is installed on the host.
#
# Usage: scripts/armel-python.sh   -> prepares the root if needed and prints its path; run with
#          qemu-arm -cpu arm1176 -L ROOT ROOT/usr/bin/python3.11 ...
# Env:   TELEGRAF_BRIDGE_CACHE     -> cache root (default ~/.cache/telegraf-bridge)
set -euo pipefail

cache_root="${TELEGRAF_BRIDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/telegraf-bridge}"
root="$cache_root/armel-root"
# python3.11-minimal and libpython3.11-stdlib with the libraries their modules link against
# (libgcc-s1: glibc loads it to unwind a thread on pthread_exit; libatomic1: armel's libssl3).
# Every stdlib extension module must load (checked below) except `nis`, deprecated and unused,
# whose libnsl2 pulls in Kerberos.
packages=(
  python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
  libc6 libgcc-s1 libatomic1 libcrypt1 zlib1g libexpat1 libffi8 libbz2-1.0 liblzma5 libssl3
  libuuid1 libsqlite3-0 libncursesw6 libtinfo6 libreadline8 libdb5.3
)
want="$(printf '%s\n' "${packages[@]}")"

if [[ -x "$root/usr/bin/python3.11" && -f "$root/.packages" && "$(cat "$root/.packages")" == "$want" ]]; then
  echo "$root"
  exit 0
fi
if ! command -v qemu-arm >/dev/null 2>&1; then
  echo "E! scripts/armel-python.sh: qemu-arm is missing; run scripts/install-system-deps.sh" >&2
  exit 3
fi
if ! dpkg --print-foreign-architectures | grep -qx armel; then
  echo "I! adding the armel architecture to dpkg (for apt-get download only)" >&2
  dpkg --add-architecture armel
  apt-get update -qq
elif ! apt-cache show python3.11-minimal:armel >/dev/null 2>&1; then
  apt-get update -qq
fi

mkdir -p "$cache_root"
work="$(mktemp -d "$cache_root/armel.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir "$work/debs" "$work/root"
# apt-get download as root warns that it cannot drop to the _apt user; that is expected.
if ! (cd "$work/debs" && apt-get download -qq "${packages[@]/%/:armel}") 2>"$work/apt.log"; then
  grep -v 'unsandboxed' "$work/apt.log" >&2
  echo "E! scripts/armel-python.sh: apt-get download failed" >&2
  exit 1
fi
shopt -s nullglob
debs=("$work"/debs/*.deb)
if (( ${#debs[@]} != ${#packages[@]} )); then
  echo "E! scripts/armel-python.sh: downloaded ${#debs[@]} of ${#packages[@]} packages" >&2
  exit 1
fi
for deb in "${debs[@]}"; do
  dpkg -x "$deb" "$work/root"
done
# Check it runs on the Pi Zero's CPU model, with every extension module's library present,
# before it replaces a working root.
probe='
import importlib, os, platform, sys
dynload = next(p for p in sys.path if p.endswith("lib-dynload"))
for so in sorted(os.listdir(dynload)):
    if not so.startswith("nis."):
        importlib.import_module(so.split(".")[0])
print(platform.machine())
'
machine="$(qemu-arm -cpu arm1176 -L "$work/root" "$work/root/usr/bin/python3.11" -c "$probe")"
if [[ "$machine" != "armv6l" ]]; then
  echo "E! scripts/armel-python.sh: the unpacked Python reports machine '$machine', not armv6l" >&2
  exit 1
fi
printf '%s\n' "$want" > "$work/root/.packages"
rm -rf "$root"
mv "$work/root" "$root"
echo "I! Debian armel Python 3.11 unpacked into $root" >&2
echo "$root"
