#!/usr/bin/env bash
# Push the bundle to a balena fleet: assemble a build folder, then `balena push` it.
#
# Why a folder of its own: `balena push` builds the docker-compose.yml at the root of what it
# pushes, and the repository root's docker-compose.yml is the home-server stack (InfluxDB,
# Grafana, Mosquitto, bind mounts, ${VAR}s), which the balena supervisor cannot run. The folder
# holds the committed sources (`git archive`, so nothing untracked or ignored is uploaded) with
# deploy/balena/docker-compose.yml and balena.yml at its root.
#
# Usage: deploy/balena/push.sh [--dry-run] [--ref REF] FLEET [-- BALENA_PUSH_OPTIONS...]
#   --dry-run   assemble the folder, print its path, push nothing
#   --ref REF   the commit to archive (default HEAD; uncommitted changes are not pushed)
# Env: BALENA  the balena CLI to run (default: balena on PATH)
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

dry_run=0
ref=HEAD
fleet=""
extra=()
while (($#)); do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --ref) ref="${2:?--ref needs a commit}"; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "push.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *)
      if [[ -n "$fleet" ]]; then echo "push.sh: one fleet only ($fleet, $1)" >&2; exit 2; fi
      fleet="$1"
      ;;
  esac
  shift
done
if [[ -z "$fleet" ]]; then
  echo "push.sh: name the fleet, e.g. deploy/balena/push.sh myorg/solar-pis" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(git -C "$here" rev-parse --show-toplevel)"
if [[ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]]; then
  echo "push.sh: note: uncommitted changes are not pushed (the folder is $ref)" >&2
fi

out="$(mktemp -d "${TMPDIR:-/tmp}/telegraf-bridge-balena.XXXXXX")"
git -C "$repo" archive --format=tar "$ref" | tar -x -C "$out"
# The fleet's compose file and balena.yml replace the home-server ones at the root.
cp "$here/docker-compose.yml" "$out/docker-compose.yml"
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$out/src/telegraf_bridge/_version.py")"
{
  cat "$here/balena.yml"
  printf '# Stamped by deploy/balena/push.sh from src/telegraf_bridge/_version.py.\n'
  printf 'version: "%s"\n' "${version:-0.0.0}"
} >"$out/balena.yml"
for needed in docker-compose.yml balena.yml Dockerfile.armv6 pyproject.toml; do
  if [[ ! -f "$out/$needed" ]]; then
    echo "push.sh: $needed is missing from the build folder $out (is it committed at $ref?)" >&2
    exit 1
  fi
done

if ((dry_run)); then
  echo "$out"
  exit 0
fi
balena="${BALENA:-balena}"
if ! command -v "$balena" >/dev/null 2>&1; then
  echo "push.sh: the balena CLI is not installed (https://github.com/balena-io/balena-cli);" \
    "the assembled folder is $out" >&2
  exit 3
fi
echo "push.sh: balena push $fleet --source $out" >&2
exec "$balena" push "$fleet" --source "$out" "${extra[@]}"
