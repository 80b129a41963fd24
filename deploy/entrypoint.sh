#!/bin/sh
# Container start: bring the database schema up to date, then serve with gunicorn.
# NGSHARE_MIGRATE=0 skips the migration, for deployments with several replicas that
# migrate once in a separate step (deploy/kubernetes/migrate-job.yaml) instead.
set -e
cd /opt/ngshare-gql
if [ "${NGSHARE_MIGRATE:-1}" != "0" ]; then
  flask --app ngshare_gql:create_app db upgrade
fi
exec gunicorn -c deploy/gunicorn.conf.py "ngshare_gql:create_app()"
