"""Every job ends, or can be resumed: a real `kg ingest` killed (SIGKILL, SIGTERM) mid-extraction, its
job read INTERRUPTED, and `kg resume`; settings found invalid before any job is opened."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.cli import fake_openai_env, kg_env, run_kg, start_kg
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.http import http_json, wait_until_serving
from tests.support.stages import graph_fingerprint

PARAGRAPH = ("Marie Curie worked in Paris with Pierre Curie. Henri Becquerel found rays in Uranium salts. "
             "The Sorbonne hired Marie after Pierre died. Irene Curie later married Frederic Joliot.")
TEXT = "\n\n".join(f"Part {i}. {PARAGRAPH}" for i in range(16))


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        # Extraction is slow (a second a chunk), so that a kill lands in the middle of it.
        fake.on(lambda r: r.triple_type == "ALL", Reply(delay_s=1.0))
        yield fake


@pytest.fixture
def env(database_url: str, tmp_path: Path, fake_openai: FakeOpenAI) -> dict[str, str]:
    """What `kg` runs with: the LLM on the fake server, small chunks extracted two at a time."""
    return kg_env(database_url, tmp_path / "kg-data", **fake_openai_env(fake_openai), KG_EXTRACTION_MODE="combined",
                  KG_MAX_CONCURRENCY="2", KG_LLM_TIMEOUT_S="30")


_OUTPUTS: dict[int, tuple[Path, Path]] = {}


def start(env: dict[str, str], tmp_path: Path, *args: str, **extra: str) -> subprocess.Popen:
    """`kg` in the background, its stdout and stderr in files (read with `output`)."""
    name = uuid.uuid4().hex[:8]
    paths = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with paths[0].open("w") as stdout, paths[1].open("w") as stderr:
        process = start_kg({**env, **extra}, *args, cwd=tmp_path, stdout=stdout, stderr=stderr)
    _OUTPUTS[process.pid] = paths
    return process


def output(process: subprocess.Popen) -> tuple[str, str]:
    stdout, stderr = _OUTPUTS[process.pid]
    return stdout.read_text(), stderr.read_text()


def chunks_done(database_url: str) -> tuple[str | None, int, int]:
    """The job's id, its chunks recorded and its chunks in all, read from the ledger's tables."""
    with psycopg.connect(database_url) as conn:
        if conn.execute("SELECT to_regclass('job_chunks') IS NULL").fetchone()[0]:
            return None, 0, 0  # `kg` has not migrated the new database yet
        row = conn.execute("SELECT job_id::text, count(*) FILTER (WHERE status <> 'PENDING'), count(*)"
                           " FROM job_chunks GROUP BY job_id").fetchone()
    return row if row else (None, 0, 0)


def extracting(process: subprocess.Popen, database_url: str, at_least: int) -> str:
    """Waits (boundedly) until the job has recorded `at_least` chunks, and gives its id."""
    for _ in range(3000):
        job_id, done, _ = chunks_done(database_url)
        if job_id and done >= at_least:
            return job_id
        assert process.poll() is None, output(process)
        time.sleep(0.02)
    raise AssertionError(f"no {at_least} chunks recorded: {chunks_done(database_url)}")


def interrupted_by_sigterm(env: dict[str, str], tmp_path: Path, document: Path) -> str:
    process = start(env, tmp_path, "ingest", str(document), "--json", KG_LEASE_S="600")
    job_id = extracting(process, env["KG_DATABASE_URL"], at_least=1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 130, output(process)
    return job_id


def stored_job(database_url: str, job_id: str) -> tuple[str, str | None]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT status, lease_owner FROM jobs WHERE id = %s", (job_id,)).fetchone()


def chunk_usage(database_url: str, job_id: str) -> dict[int, dict]:
    """Each recorded chunk's LLM usage: a chunk extracted again would show its reply served by the cache."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT idx, llm FROM job_chunks WHERE job_id = %s AND status <> 'PENDING'",
                            (job_id,)).fetchall()
    return dict(rows)


def test_a_killed_ingest_reads_interrupted_once_its_lease_lapses_and_resume_ends_it_as_a_clean_ingest_would(
        env, tmp_path, document, fake_openai, new_database):
    url = env["KG_DATABASE_URL"]
    process = start(env, tmp_path, "ingest", str(document), "--json", KG_LEASE_S="2")
    job_id = extracting(process, url, at_least=2)
    process.kill()  # SIGKILL: nothing of the process runs again
    process.wait(timeout=60)
    _, done, total = chunks_done(url)
    assert 0 < done < total

    for _ in range(60):  # bounded: the lease is 2 s, and each `kg jobs` starts a process
        (job,) = run_kg(env, "jobs", "--json").json()
        if job["status"] == "INTERRUPTED":
            break
    assert (job["job_id"], job["status"]) == (job_id, "INTERRUPTED")
    assert run_kg(env, "status", job_id, "--json").json()["status"] == "INTERRUPTED"
    before = chunk_usage(url, job_id)
    assert all(u["calls"] == 1 and u["cached"] == 0 for u in before.values())  # each one extracted once
    asked_before = len(fake_openai.chat_requests("ALL"))

    resumed = run_kg(env, "resume", job_id, "--json")
    assert resumed.code == 0, resumed.stderr
    report = resumed.json()
    assert (report["job_id"], report["status"], report["chunks"], report["chunks_failed"]) == (
        job_id, "SUCCEEDED", total, 0)
    # The chunks recorded before the kill were not extracted again: their usage is as it was (a second
    # extraction would have been served by the LLM cache and recorded so), and no request carried them.
    after = chunk_usage(url, job_id)
    assert {i: after[i] for i in before} == before and len(after) == total
    with psycopg.connect(url) as conn:
        done_texts = [t for (t,) in conn.execute("SELECT text FROM chunks WHERE idx = ANY(%s)", (list(before),))]
    asked_since = fake_openai.chat_requests("ALL")[asked_before:]
    assert len(asked_since) <= total - len(before)
    assert not [r for r in asked_since if any(t in r.message("user") for t in done_texts)]
    assert not (tmp_path / "kg-data" / "blobs" / "jobs" / job_id).exists()

    other_database = new_database()
    clean = run_kg({**env, "KG_DATABASE_URL": other_database, "KG_DATA_DIR": str(tmp_path / "clean")},
                   "ingest", str(document), "--json")
    assert clean.code == 0, clean.stderr
    assert graph_fingerprint(url) == graph_fingerprint(other_database)


def test_sigterm_ends_the_job_interrupted_at_once_and_ingest_resume_continues_it(env, tmp_path, document):
    url = env["KG_DATABASE_URL"]
    job_id = interrupted_by_sigterm(env, tmp_path, document)
    # Stored as INTERRUPTED by the process itself: its 600 s lease has not lapsed, and is released.
    assert stored_job(url, job_id) == ("INTERRUPTED", None)
    (job,) = run_kg(env, "jobs", "--json").json()
    assert (job["job_id"], job["status"]) == (job_id, "INTERRUPTED")
    shown = run_kg(env, "status", job_id)
    assert "INTERRUPTED" in shown.stdout and f"kg resume {job_id}" in shown.stdout
    assert (tmp_path / "kg-data" / "blobs" / "jobs" / job_id).is_dir()  # kept while it can be resumed

    resumed = run_kg(env, "ingest", str(document), "--resume", "--json")
    assert resumed.code == 0, resumed.stderr
    (report,) = resumed.json_lines()
    assert (report["job_id"], report["status"]) == (job_id, "SUCCEEDED"), report["error"]
    assert [j["job_id"] for j in run_kg(env, "jobs", "--json").json()] == [job_id]  # no second job
    assert not (tmp_path / "kg-data" / "blobs" / "jobs" / job_id).exists()


def test_ingest_of_a_source_whose_job_was_interrupted_names_kg_resume_and_runs_a_new_job(env, tmp_path, document):
    job_id = interrupted_by_sigterm(env, tmp_path, document)
    again = run_kg(env, "ingest", str(document), "--json")
    assert again.code == 0, again.stderr
    (report,) = again.json_lines()
    assert report["job_id"] != job_id and report["status"] == "SUCCEEDED"
    notes = [line for line in again.stderr.splitlines() if job_id in line]
    assert len(notes) == 1 and f"kg resume {job_id}" in notes[0]
    statuses = {j["job_id"]: j["status"] for j in run_kg(env, "jobs", "--json").json()}
    assert statuses == {job_id: "INTERRUPTED", report["job_id"]: "SUCCEEDED"}  # the old one is still resumable


def test_of_two_resumes_at_once_one_wins_and_the_other_is_told_why(env, tmp_path, document):
    job_id = interrupted_by_sigterm(env, tmp_path, document)
    first, second = (start(env, tmp_path, "resume", job_id, "--json") for _ in range(2))
    codes = [first.wait(timeout=300), second.wait(timeout=300)]
    assert sorted(codes) in ([0, 1], [0, 2]), [output(first), output(second)]
    winner, loser = (first, second) if codes[0] == 0 else (second, first)
    assert json.loads(output(winner)[0])["status"] == "SUCCEEDED"
    (line,) = output(loser)[1].strip().splitlines()  # one line, naming the job
    assert line.startswith("kg: error:") and job_id in line
    assert stored_job(env["KG_DATABASE_URL"], job_id) == ("SUCCEEDED", None)


@pytest.mark.parametrize("setting", [
    {"KG_CHUNK_TOKENS": "400", "KG_CHUNK_OVERLAP_TOKENS": "400"},
    {"KG_TOKENIZER_ENCODING": "p50k_base"},
    {"KG_SPACY_MODEL": "xx_no_such_model", "KG_LLM_PROVIDER": "offline", "KG_EMBEDDING_PROVIDER": "offline"},
], ids=["overlap-not-below-chunk-size", "unknown-encoding", "unknown-spacy-model"])
def test_settings_plan_or_extraction_cannot_use_exit_2_before_any_job_is_opened(env, document, setting):
    refused = run_kg({**env, **setting}, "ingest", str(document))
    assert refused.code == 2, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("kg: error:") and "Traceback" not in refused.stderr
    assert run_kg(env, "jobs", "--json").json() == []


def test_jobs_queued_in_a_killed_kg_serve_read_interrupted_and_resume_to_their_end(env, tmp_path, document):
    """`kg serve` holds the jobs it has accepted under its lease: killed with one job running and one
    waiting, both read INTERRUPTED once the lease lapses, and `kg resume` ends each."""
    from tests.support.moto_server import free_port

    port = free_port()
    server = start(env, tmp_path, "serve", "--port", str(port), KG_LEASE_S="2")
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(base, server)
    accepted = []
    for source in ("first.txt", "second.txt"):
        status, job = http_json(base + "/jobs", "POST", {"source": source, "text": document.read_text()})
        assert status < 400, job
        accepted.append(job["job_id"])
    extracting(server, env["KG_DATABASE_URL"], at_least=1)
    server.kill()
    server.wait(timeout=60)
    assert {stored_job(env["KG_DATABASE_URL"], j)[0] for j in accepted} <= {"QUEUED", "RUNNING"}

    for _ in range(60):  # bounded: the lease is 2 s
        jobs = {j["job_id"]: j["status"] for j in run_kg(env, "jobs", "--json").json()}
        if all(jobs.get(j) == "INTERRUPTED" for j in accepted):
            break
    assert [jobs.get(j) for j in accepted] == ["INTERRUPTED", "INTERRUPTED"]
    for job_id in accepted:
        resumed = run_kg(env, "resume", job_id, "--json")
        assert resumed.code == 0, resumed.stderr
        assert (resumed.json()["status"], resumed.json()["chunks_failed"]) == ("SUCCEEDED", 0)
