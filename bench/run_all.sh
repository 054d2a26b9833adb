#!/usr/bin/env bash
# Run every benchmark in turn; each starts (and deletes) its own embedded PostgreSQL in a temp folder.
# Usage: bench/run_all.sh [python]   (default /tmp/venv/bin/python, or $PYTHON)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-${PYTHON:-/tmp/venv/bin/python}}"
"$PY" bench/store_throughput.py --triples 20000 --no-merge-and-store
"$PY" bench/ingest.py
"$PY" bench/stage_split.py examples/curie.txt
