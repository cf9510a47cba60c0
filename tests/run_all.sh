#!/usr/bin/env bash
# Install sm_notebook with its test extras (and Chromium for the browser tests), build the graph
# view's front end, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --upgrade pip
python3 -m pip install --quiet -e ".[test]"
# the graph view widget's front end (dagre bundled, never committed); without it the graph view
# shows its static SVG and its browser test skips
bash tools/build_frontend.sh || echo "run_all: the graph view's front end was not built" >&2
if [ ! -x /usr/lib/chromium/chromium-headless-shell ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium-headless-shell >/dev/null
fi
python3 -m pytest -q -p no:cacheprovider --nbval --nbval-sanitize-with notebooks/sanitize.cfg tests notebooks "$@"
