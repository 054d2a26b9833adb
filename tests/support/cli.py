"""The `kg` command as a user runs it: the installed console script, in a subprocess, with an
environment of the test's making (none of the developer's own settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

KG = Path(sys.executable).parent / "kg"
# The developer's own settings, which a test's `kg` must not see.
SCRUBBED = ("KG_", "OPENAI_")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)

    def json_lines(self) -> list:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def kg_env(database_url: str | None = None, data_dir: Path | str | None = None, *,
           scrub: tuple[str, ...] = SCRUBBED, **settings: str) -> dict[str, str]:
    """This process's environment without the variables starting with one of `scrub`, then
    KG_DATABASE_URL and KG_DATA_DIR (where given) and `settings` (name=value)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(scrub)}
    if database_url is not None:
        env["KG_DATABASE_URL"] = database_url
    if data_dir is not None:
        env["KG_DATA_DIR"] = str(data_dir)
    return {**env, **settings}


def fake_openai_env(fake) -> dict[str, str]:
    """`kg` on the fake OpenAI server (tests/support/fake_openai.py), embeddings 64 wide, and small chunks
    (100 tokens, 10 of them overlapping), so that a short text makes several."""
    return {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake.url, "KG_EMBEDDING_DIMENSIONS": "64",
            "KG_CHUNK_TOKENS": "100", "KG_CHUNK_OVERLAP_TOKENS": "10"}


def run_kg(env: dict[str, str], *args: str, cwd: Path | str | None = None, timeout: float = 300) -> Run:
    """`kg *args` to its end, with `env` only, in `cwd` (by default the folder holding KG_DATA_DIR, the
    test's own), its stdin empty."""
    assert KG.exists(), "the kg console script is not installed (pip install -e '.[local,aws,dev]')"
    done = subprocess.run([str(KG), *args], env=env, cwd=cwd or Path(env["KG_DATA_DIR"]).parent, check=False,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return Run(done.returncode, done.stdout, done.stderr)


def start_kg(env: dict[str, str], *args: str, **popen) -> subprocess.Popen:
    """`kg *args` in the background, with `env` only, its stdin empty; `popen`: subprocess.Popen's own
    arguments (cwd, stdout, stderr, text)."""
    assert KG.exists(), "the kg console script is not installed (pip install -e '.[local,aws,dev]')"
    return subprocess.Popen([str(KG), *args], env=env, stdin=subprocess.DEVNULL, **popen)
