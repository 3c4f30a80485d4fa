#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds pollux and starts pollux-tgt on the default config
# (etc/pollux.json) in the foreground. Ctrl-C stops it. Extra arguments go to pollux-tgt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
build=$("$root/scripts/build.sh" | tail -n 1)
exec "$build/apps/pollux-tgt/pollux-tgt" -c "$root/etc/pollux.json" "$@"
