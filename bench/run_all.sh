#!/usr/bin/env bash
# Run every benchmark in turn; each starts (and deletes) its own embedded PostgreSQL in a temp folder.
# Usage: bench/run_all.sh [python]   (default .venv/bin/python, made by scripts/install.sh, or $PYTHON)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-${PYTHON:-.venv/bin/python}}"
"$PY" bench/store_throughput.py --triples 20000 --no-merge-and-store
"$PY" bench/ingest.py
"$PY" bench/stage_split.py examples/curie.txt
"$PY" bench/llm_overhead.py
"$PY" bench/llm_rate_limit.py
"$PY" bench/llm_tokens.py
"$PY" bench/aws_overhead.py
"$PY" bench/dedup_scale.py --sizes 10000 --greedy
"$PY" bench/dedup_scale.py --sizes 100000
"$PY" bench/delete_document.py --triples 100000 --docs 100
"$PY" bench/search_latency.py --sizes 10000,100000
