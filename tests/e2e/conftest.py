"""The `kg` command as a user runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "curie.txt"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)

    def json_lines(self) -> list:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


@pytest.fixture
def kg(database_url: str, tmp_path: Path):
    executable = Path(sys.executable).parent / "kg"
    assert executable.exists(), "the kg console script is not installed (pip install -e '.[local,dev]')"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KG_", "OPENAI_"))}
    env.update(KG_DATABASE_URL=database_url, KG_DATA_DIR=str(tmp_path / "kg-data"))

    def run(*args: str, extra_env: dict[str, str] | None = None, timeout: float = 300) -> Run:
        done = subprocess.run(
            [str(executable), *args], env={**env, **(extra_env or {})}, cwd=tmp_path,
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    return run
