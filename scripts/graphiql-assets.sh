#!/usr/bin/env bash
# Puts GraphiQL's browser files into a folder this service can serve, so GraphiQL works
# where browsers cannot reach a CDN:
#   bash scripts/graphiql-assets.sh [DEST]     (default: ngshare_gql/static/graphiql)
# The app serves DEST at {prefix}static/graphiql/ when NGSHARE_GRAPHIQL_ASSETS=DEST
# (the default folder is picked up by itself).  Needs npm and the npm registry; idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-ngshare_gql/static/graphiql}"
files=(graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js)
have=1
for f in "${files[@]}"; do [ -s "$dest/$f" ] || have=0; done
[ "$have" = 1 ] && exit 0

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo '{"private": true}' > "$work/package.json"
npm install --prefix "$work" --no-save --no-audit --no-fund --loglevel=error \
  graphiql@3.8.3 react@18.3.1 react-dom@18.3.1 >/dev/null
mkdir -p "$dest"
cp "$work/node_modules/graphiql/graphiql.min.js" "$work/node_modules/graphiql/graphiql.min.css" "$dest/"
cp "$work/node_modules/react/umd/react.production.min.js" "$dest/"
cp "$work/node_modules/react-dom/umd/react-dom.production.min.js" "$dest/"
echo "GraphiQL assets in $dest"
