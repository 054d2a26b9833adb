"""The server killed mid-job (SIGKILL: nothing runs after it), then the job resumed with `kg resume`:
nothing lost, nothing duplicated, and only the questions in flight at the kill are asked again.

`kg serve` takes the document (POST /jobs) and is killed mid-extraction. The job's lease lapses
(KG_LEASE_S is 2 s here), the job reads INTERRUPTED, `kg resume <id>` takes it over and ends it; its
graph must equal that of a clean `kg ingest` of the same document on a database of its own. The
LLM is the fake OpenAI server (per-type extraction), with latency, so that the kill lands
mid-extraction. The same for a killed `kg ingest` (combined extraction) is
tests/e2e/test_resume_cli.py::test_a_killed_ingest_reads_interrupted_once_its_lease_lapses_and_resume_ends_it_as_a_clean_ingest_would.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.cli import KG, fake_openai_env, kg_env, run_kg, start_kg
from tests.support.fake_openai import FakeOpenAI
from tests.support.http import http_json, wait_until_serving
from tests.support.moto_server import free_port
from tests.support.stages import graph_fingerprint

PARAGRAPH = ("Marie Curie met Pierre Curie in Paris. Because Pierre admired Marie, Pierre proposed. "
             "Henri Becquerel found rays in Uranium salts, and Warsaw remembered Marie with pride.")
NOTE = "\n\n".join(f"Part {i}. {PARAGRAPH}" for i in range(16))
SOURCE = "letters"
CONCURRENCY = 2


def _has_resume() -> bool:
    done = subprocess.run([str(KG), "resume", "--help"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return done.returncode == 0


pytestmark = pytest.mark.skipif(not _has_resume(), reason="`kg resume` (job leases) is not in this kg yet")


def env_for(fake: FakeOpenAI, database_url: str, data_dir: Path) -> dict[str, str]:
    return kg_env(database_url, data_dir, **fake_openai_env(fake), KG_MAX_CONCURRENCY=str(CONCURRENCY),
                  KG_LEASE_S="2", KG_LLM_BACKOFF_BASE_S="0.001", KG_LLM_BACKOFF_MAX_S="0.01")


def until(condition, what: str, timeout_s: float = 120.0, every_s: float = 0.05):
    """Poll `condition()` until it returns something truthy; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every_s)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def extraction_questions(fake: FakeOpenAI, since: int, after: float | None = None,
                         before: float | None = None) -> list[tuple]:
    """(type, chunk text) of the extraction requests from the `since`-th on, that arrived in the window."""
    return [(r.triple_type, r.message("user")) for r in fake.requests[since:]
            if r.triple_type and (after is None or r.at > after) and (before is None or r.at <= before)]


def serve_job(env: dict[str, str]) -> subprocess.Popen:
    """`kg serve` with the note POSTed to /jobs: the process running the job."""
    port = free_port()
    process = start_kg(env, "serve", "--port", str(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(url, process)
    status, accepted = http_json(url + "/jobs", "POST", {"source": SOURCE, "text": NOTE})
    assert status == 202, accepted
    return process


def test_kg_serve_killed_mid_job_then_kg_resume_equals_a_clean_run(new_database, tmp_path):
    note = tmp_path / "letters.txt"
    note.write_text(NOTE)
    with FakeOpenAI(latency_s=0.4) as fake:
        clean_url = new_database()
        clean_env = env_for(fake, clean_url, tmp_path / "clean-data")
        clean = run_kg(clean_env, "ingest", str(note), "--source", SOURCE, "--json")
        assert clean.code == 0, clean.stderr
        clean_report = clean.json()
        assert clean_report["status"] == "SUCCEEDED" and clean_report["chunks"] >= 8
        chunks = clean_report["chunks"]
        since = len(fake.requests)  # from here on, the killed run's

        url = new_database()
        env = env_for(fake, url, tmp_path / "data")
        process = serve_job(env)

        def two_chunks_done():
            with psycopg.connect(url) as conn:
                if conn.execute("SELECT to_regclass('jobs')").fetchone()[0] is None:
                    return None  # not migrated yet
                row = conn.execute("SELECT id::text, chunks_done FROM jobs").fetchone()
            return row if row and row[1] >= 2 else None

        try:
            job_id, _ = until(two_chunks_done, "two chunks extracted")
        finally:
            process.kill()  # SIGKILL: no handler runs, the job is left as it was
            process.wait(60)
        killed_at = time.monotonic()
        with psycopg.connect(url) as conn:
            status, done = conn.execute("SELECT status, chunks_done FROM jobs WHERE id = %s", (job_id,)).fetchone()
        assert status == "RUNNING" and done < chunks, (status, done)  # killed mid-extraction

        def interrupted():
            shown = run_kg(env, "status", job_id, "--json")
            return shown.code == 0 and shown.json()["status"] == "INTERRUPTED"

        until(interrupted, "the job reading INTERRUPTED once its lease lapsed", every_s=0.5)
        resumed = run_kg(env, "resume", job_id, "--json")
        assert resumed.code == 0, resumed.stderr
        report = resumed.json()

    assert report["status"] == "SUCCEEDED" and report["chunks"] == chunks
    assert report["triples"] == clean_report["triples"]
    assert graph_fingerprint(url) == graph_fingerprint(clean_url)
    # Every question was asked; again only those in flight at the kill (at most one chunk's four
    # types per worker); the chunks done before the kill were not extracted again.
    before = extraction_questions(fake, since, before=killed_at)
    after = extraction_questions(fake, since, after=killed_at)
    assert len(set(before) | set(after)) == 4 * chunks
    assert len(set(before) & set(after)) <= 4 * CONCURRENCY
    assert len(after) <= 4 * (chunks - done)
