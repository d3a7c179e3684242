#!/usr/bin/env bash
# Install what the tests and builds need from Debian's packages, only when missing:
# influxd (InfluxDB 1.x, package `influxdb`), mosquitto and mosquitto_pub (packages `mosquitto`,
# `mosquitto-clients`), the libudev development files with pkg-config that building taptap
# from crates.io needs, and qemu-arm (package `qemu-user`), which runs the ARMv6 Telegraf build
# on an emulated ARM1176 (the Pi Zero's core), and systemd-analyze (package `systemd`), which
# verifies the units `bridge-cli install-systemd` writes.
set -euo pipefail

declare -A packages=(
  [influxd]=influxdb [mosquitto]=mosquitto [mosquitto_pub]=mosquitto-clients [pkg-config]=pkg-config
  [qemu-arm]=qemu-user [systemd-analyze]=systemd
)
missing=()
for tool in "${!packages[@]}"; do
  if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$tool" ]]; then
    missing+=("${packages[$tool]}")
  fi
done
if ! pkg-config --exists libudev 2>/dev/null; then
  missing+=(libudev-dev)
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "I! installing missing Debian packages: ${missing[*]}" >&2
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "E! missing ${missing[*]} and cannot install them (not root, no passwordless sudo)." >&2
  echo "E! run: sudo apt-get install ${missing[*]}" >&2
  exit 3
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "E! missing ${missing[*]}: this is not a Debian-based system; install them with your package manager" >&2
  exit 3
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null || {
    echo "E! apt-get could not install ${missing[*]}" >&2
    exit 3
  }
fi
# Debian's packages may start their services; the tests run their own instances on loopback.
for svc in influxdb mosquitto; do
  command -v service >/dev/null 2>&1 && "${as_root[@]}" service "$svc" stop >/dev/null 2>&1 || true
done
echo "I! installed ${missing[*]}" >&2
