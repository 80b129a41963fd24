#!/usr/bin/env bash
# The benchmark in one command:  bash bench/run.sh [--tiny] [--no-ngshare] [--blob-store sql] ...
# Sets up .venv (scripts/setup.sh test) and ngshare 0.6.0's own venv on first use,
# then runs `python -m bench` (see `bash bench/run.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec .venv/bin/python -m bench "$@"
