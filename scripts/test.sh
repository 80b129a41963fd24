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
# Lint first but run the tests whatever it says; either failing fails the run.
lint=0
ruff check ngshare_gql tests bench wsgi.py || lint=$?
status=0
python -m pytest --durations=20 "$@" || status=$?
if [ "$lint" -ne 0 ]; then
  echo "ruff found problems (see above)" >&2
  [ "$status" -ne 0 ] || status=$lint
fi
exit "$status"
