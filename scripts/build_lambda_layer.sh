#!/usr/bin/env bash
# Builds the one Lambda layer every function uses: the `kg` library (functions/common/kg) with its core
# and `aws` dependencies, as pip installs them for the Python 3.11 Lambda runtime (Amazon Linux 2,
# x86_64), without Docker: only manylinux2014 binary wheels are taken, whatever this machine is.
#
#   bash scripts/build_lambda_layer.sh [OUT]      # OUT defaults to build/layer (context kg:layerDir)
#
# The layer's code is OUT/python/...; `cdk deploy` ships it when it exists, and with -c kg:strict=true
# refuses to deploy without it. Needs PyPI (or your index) and about 250 MB of disk.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-build/layer}
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
WHEELS=build/layer-wheel

rm -rf "$OUT" "$WHEELS"
mkdir -p "$OUT/python" "$WHEELS"

# The project itself, as a pure-Python wheel (its dependencies come next, for the target platform).
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WHEELS" .
wheel=$(ls "$WHEELS"/kg_pipeline-*.whl)

"$PYTHON" -m pip install --quiet \
    --target "$OUT/python" \
    --platform manylinux2014_x86_64 \
    --implementation cp \
    --python-version 3.11 \
    --abi cp311 \
    --only-binary=:all: \
    --upgrade \
    "${wheel}[aws]"

# Nothing the functions run: byte code is compiled again on the target, and the console scripts
# point at this machine's interpreter.
find "$OUT/python" -name __pycache__ -type d -prune -exec rm -rf {} +
rm -rf "$OUT/python/bin"

size_mb=$(du -sm "$OUT/python" | cut -f1)
echo "layer: $OUT/python (${size_mb} MB unzipped)"
# Lambda's limit is 250 MB unzipped for a function and all its layers together.
if [ "$size_mb" -gt 240 ]; then
    echo "the layer is ${size_mb} MB: too close to Lambda's 250 MB limit (function code included)" >&2
    exit 1
fi
