#!/usr/bin/env bash
# Installs everything, then turns the example document into a knowledge graph in the embedded
# PostgreSQL (under ~/.local/share/kg, or /var/lib/kg as root, unless KG_DATA_DIR or KG_DATABASE_URL say otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/kg ingest examples/curie.txt --source-type essay
.venv/bin/kg stats
echo
echo "Next: source .venv/bin/activate, then kg --help (kg jobs, kg status JOB_ID, kg ingest YOUR_FILE.txt)"
