#!/usr/bin/env bash
# What the real-JupyterHub tests need besides Python packages, installed once:
#  - configurable-http-proxy (the hub's proxy) from the npm registry into ./node_modules
#    (local, not global), and GraphiQL's browser files (scripts/graphiql-assets.sh);
#  - Debian chromium + chromium-driver for the headless browser login test.
# Idempotent: does nothing when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x node_modules/.bin/configurable-http-proxy ]; then
  # --prefix . keeps it in ./node_modules without writing a package.json to the repo.
  npm install --prefix . --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    configurable-http-proxy@4.6.3
fi

# GraphiQL served by our app from a local folder (NGSHARE_GRAPHIQL_ASSETS points at it).
bash scripts/graphiql-assets.sh ngshare_gql/static/graphiql

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" fonts-dejavu-core >/dev/null
fi
