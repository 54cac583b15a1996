#!/usr/bin/env bash
# Fetches the GraphQL console served at GET /graphql — GraphiQL (MIT) and the React it runs
# on (MIT) — from the npm registry, once, into $GRAPHIQL_DIR (scripts/env.sh). The build
# compiles these files into the binary (chrono-server/build.rs), so the console works
# offline and nothing is loaded from a CDN at run time. A build without them serves a page
# saying how to use GraphQL without the console.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

GRAPHIQL_VERSION=3.8.3
REACT_VERSION=18.3.1

if [ -f "$GRAPHIQL_DIR/version" ] && [ "$(cat "$GRAPHIQL_DIR/version")" = "$GRAPHIQL_VERSION $REACT_VERSION" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "setup: npm not found: the GraphQL console (GraphiQL) is left out of the build" >&2
  exit 0
fi
echo "setup: fetching GraphiQL $GRAPHIQL_VERSION and React $REACT_VERSION (the GraphQL console)" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "graphiql@$GRAPHIQL_VERSION" "react@$REACT_VERSION" "react-dom@$REACT_VERSION" >/dev/null)
for p in "graphiql-$GRAPHIQL_VERSION" "react-$REACT_VERSION" "react-dom-$REACT_VERSION"; do
  mkdir -p "$work/${p%-*}"
  tar xzf "$work/$p.tgz" -C "$work/${p%-*}"
done
rm -rf "$GRAPHIQL_DIR.partial"
mkdir -p "$GRAPHIQL_DIR.partial"
cp "$work/graphiql/package/graphiql.min.js" "$work/graphiql/package/graphiql.min.css" "$GRAPHIQL_DIR.partial/"
cp "$work/react/package/umd/react.production.min.js" "$GRAPHIQL_DIR.partial/"
cp "$work/react-dom/package/umd/react-dom.production.min.js" "$GRAPHIQL_DIR.partial/"
cat "$work/graphiql/package/LICENSE" > "$GRAPHIQL_DIR.partial/LICENSES.txt"
echo >> "$GRAPHIQL_DIR.partial/LICENSES.txt"
cat "$work/react/package/LICENSE" >> "$GRAPHIQL_DIR.partial/LICENSES.txt"
echo "$GRAPHIQL_VERSION $REACT_VERSION" > "$GRAPHIQL_DIR.partial/version"
rm -rf "$GRAPHIQL_DIR"
mv "$GRAPHIQL_DIR.partial" "$GRAPHIQL_DIR"
