"""The one Lambda layer: the `kg` library (functions/common/kg) and its dependencies, under `python/`.

A real deploy ships what `scripts/build_lambda_layer.sh` builds into `build/layer` (context
`kg:layerDir`): `kg` with the core and `aws` dependencies, pip-installed for Python 3.11 on
manylinux2014 x86_64, without Docker. When that folder is absent (a test, a quick `cdk synth`), the
asset is `functions/common/kg` alone, staged under `python/` so the layout is right: synth stays
offline and fast, and the stack carries a warning that this layer cannot run the handlers.
Context `kg:strict=true` turns that warning into an error that fails the synth (set it to deploy).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parents[1]
LIBRARY = REPO_ROOT / "functions" / "common" / "kg"

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def built_layer(layer_dir: str) -> Path | None:
    """The built layer folder (it holds `python/kg`), or None when it has not been built."""
    folder = Path(layer_dir)
    if not folder.is_absolute():
        folder = REPO_ROOT / folder
    return folder if (folder / "python" / "kg").is_dir() else None


def library_only_layer() -> Path:
    """A temporary folder with `python/kg` copied from the source tree (removed at exit)."""
    staging = Path(tempfile.mkdtemp(prefix="kg-layer-"))
    atexit.register(shutil.rmtree, staging, ignore_errors=True)
    shutil.copytree(LIBRARY, staging / "python" / "kg", ignore=_IGNORED)
    return staging


def layer_code(layer_dir: str) -> tuple[lambda_.Code, bool]:
    """The layer's code, and whether it is the full build (False: the library-only fallback)."""
    folder = built_layer(layer_dir)
    if folder is not None:
        return lambda_.Code.from_asset(str(folder), exclude=["**/__pycache__", "**/*.pyc"]), True
    return lambda_.Code.from_asset(str(library_only_layer())), False
