#!/usr/bin/env bash
# Build the graph view widget's front end (our src/ plus dagre, bundled by esbuild) into
# sm_notebook/notebook/static/graph_view.js. npm fetches the pinned packages (package-lock.json)
# here, at build time only; nothing is fetched when a view is shown. Without npm the graph view
# still works and shows its static SVG.
set -euo pipefail
cd "$(dirname "$0")/../sm_notebook/notebook/graph_frontend"
if ! command -v npm >/dev/null; then
  echo "build_frontend: npm not found; the graph view will show its static SVG only" >&2
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
