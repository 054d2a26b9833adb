#!/usr/bin/env bash
# Creates .venv and installs the project with its offline providers and test tools.
# Re-runs are quick: pip runs again only when pyproject.toml has changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "kg needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

stamp=.venv/.kg-installed
wanted=$("$PYTHON" -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[local,aws,dev]"
    echo "$wanted" > "$stamp"
fi

# The web view of `kg serve` (functions/common/kg/web): its graph-drawing library comes from the npm
# registry, pinned by package-lock.json, and is copied into vendor/, which the server serves (no CDN).
web=functions/common/kg/web
if [ ! -f "$web/vendor/cytoscape.min.js" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "install.sh: npm not found: the web view of 'kg serve' needs Node.js and npm to install its" \
             "front-end dependencies (e.g. apt-get install -y npm), then run scripts/install.sh again" >&2
        exit 1
    fi
    npm ci --prefix "$web" --no-audit --no-fund --silent
    mkdir -p "$web/vendor"
    cp "$web/node_modules/cytoscape/dist/cytoscape.min.js" "$web/vendor/cytoscape.min.js"
    cp "$web/node_modules/cytoscape/LICENSE" "$web/vendor/cytoscape.LICENSE"
fi
