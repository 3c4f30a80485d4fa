#!/usr/bin/env bash
# The soak of issue 22 (bench/soak.py): every bdev kind at once under verify I/O through
# vhost-user, with error injection, bdev churn, RPC clients and thread moves, for MINUTES.
# Usage: bench/soak.sh MINUTES [--build DIR] [--json] [--keep]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 1 ]; then
  echo "usage: $0 MINUTES [--build DIR] [--json] [--keep]" >&2
  exit 2
fi
exec python3 "$root/bench/soak.py" "$@"
