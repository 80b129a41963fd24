#!/usr/bin/env bash
# Sets everything up and starts the service on its embedded default: the README's first command.
#   bash scripts/demo.sh          (PORT=8000 by default)
# SQLite and the blob store live under ./instance; the INSECURE dev identity is on
# (the token is the user name); a demo course is seeded.  Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export NGSHARE_AUTH="${NGSHARE_AUTH:-dev}"
export NGSHARE_ADMINS="${NGSHARE_ADMINS:-admin}"
PORT="${PORT:-8000}"
PATH="$PWD/.venv/bin:$PATH"

flask --app wsgi db upgrade
flask --app wsgi course add demo --title "Demo course" \
  --instructor instructor --student student1 --student student2

cat <<BANNER

  ngshare-gql demo is starting on http://127.0.0.1:${PORT}/

  GraphiQL:  open http://127.0.0.1:${PORT}/graphql in a browser, and in its Headers
             pane put  {"Authorization": "token instructor"}  (or student1, student2,
             admin).  DEV IDENTITY: the token is the user name; never use it for real.
  curl:      see "Walkthrough" in README.md (BASE=http://127.0.0.1:${PORT}).
  Health:    http://127.0.0.1:${PORT}/healthz

BANNER
# The deployed settings (deploy/gunicorn.conf.py), on loopback, with an access log.
exec gunicorn --config deploy/gunicorn.conf.py wsgi:app --workers 2 --threads 4 \
  --bind "127.0.0.1:${PORT}" --access-logfile -
