#!/usr/bin/env bash
# Sets up everything the tests need and runs them: the README's test command.
#   bash scripts/test.sh [pytest args...]
# Idempotent: a second run reuses the virtual environment and installed packages.
# Each scripts/provision/*.sh step installs one kind of thing (Debian packages,
# npm packages) the tests need; servers are started and stopped by the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh test
for step in scripts/provision/*.sh; do
  [ -e "$step" ] || continue
  echo "== provision: $step"
  bash "$step"
done

export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"
ruff check ngshare_gql tests bench wsgi.py 2>/dev/null || ruff check ngshare_gql tests wsgi.py
exec python -m pytest "$@"
