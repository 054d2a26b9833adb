"""Every Python file of the project passes ruff with the rules pyproject.toml selects (mistakes, not
style: undefined and unused names, redefinitions, syntax errors)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"


def test_ruff_finds_nothing() -> None:
    assert RUFF.exists(), "ruff is not installed (it is in the dev extra: pip install -e '.[local,aws,dev]')"
    done = subprocess.run([str(RUFF), "check", "--no-cache", "--output-format", "concise", str(ROOT)],
                          cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
