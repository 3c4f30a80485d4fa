#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds pollux and starts pollux-tgt in the foreground on
# the default config (etc/pollux.json) unless the arguments name one (-c FILE). Ctrl-C stops
# it. Arguments go to pollux-tgt: scripts/run.sh -c etc/vhost-blk.json -S /var/tmp
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
build=$("$root/scripts/build.sh" | tail -n 1)
config=(-c "$root/etc/pollux.json")
for arg in "$@"; do
  case "$arg" in -c|--config|--config=*) config=() ;; esac
done
exec "$build/apps/pollux-tgt/pollux-tgt" "${config[@]}" "$@"
