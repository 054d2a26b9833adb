"""Batch mode as a user runs it: `kg ingest --llm-batch` against the fake server's Batch API (its own
/v1/files and /v1/batches, through the official openai client), the job WAITING while the batch is
pending, a killed process resumed without a second batch, and the fallbacks to normal calls."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import fake_openai_env, kg_env, run_kg, start_kg
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.http import http_json, wait_until_serving
from tests.support.stages import graph_fingerprint

PARAGRAPH = "Marie Curie worked in Paris with Pierre Curie. Henri Becquerel found rays in Uranium salts."
TEXT = "\n\n".join(f"Part {i}. {PARAGRAPH}" for i in range(6))


@pytest.fixture
def env(database_url: str, tmp_path: Path, fake_openai: FakeOpenAI) -> dict[str, str]:
    """The LLM on the fake server, small chunks, the batch polled often (a real one is polled for hours)."""
    return kg_env(database_url, tmp_path / "kg-data", **fake_openai_env(fake_openai), KG_LLM_TIMEOUT_S="30",
                  KG_LLM_BATCH_POLL_S="0.05", KG_LLM_BATCH_POLL_MAX_S="0.2")


def batches_of(fake: FakeOpenAI, phase: str) -> list[dict]:
    return [b for b in fake.batches.values() if (b["metadata"] or {}).get("kg_phase") == phase]


def stage_usage(env: dict[str, str], job_id: str) -> dict[str, dict]:
    return run_kg(env, "status", job_id, "--json").json()["llm_by_stage"]


def test_a_batch_job_builds_the_graph_a_normal_job_builds_with_no_direct_call_and_half_the_chat_cost(
        env, document, fake_openai, new_database):
    other_database = new_database()
    normal = run_kg({**env, "KG_DATABASE_URL": other_database}, "ingest", str(document), "--json")
    assert normal.code == 0, normal.stderr
    normal_report = normal.json()
    direct_before = len(fake_openai.direct_chat_requests())
    assert direct_before > 0 and not fake_openai.batches

    batched = run_kg(env, "ingest", str(document), "--json", "--llm-batch")
    assert batched.code == 0, batched.stderr
    report = batched.json()
    assert (report["status"], report["chunks_failed"]) == ("SUCCEEDED", 0)
    # Every chat request went as a line of a batch: one for extraction, one for the concepts.
    assert len(fake_openai.direct_chat_requests()) == direct_before
    assert [b["status"] for b in batches_of(fake_openai, "extract")] == ["completed"]
    assert [b["status"] for b in batches_of(fake_openai, "concepts")] == ["completed"]
    assert graph_fingerprint(env["KG_DATABASE_URL"]) == graph_fingerprint(other_database)

    # The same requests, the same tokens, billed at the batch price: half.
    ours = stage_usage(env, report["job_id"])["EXTRACT"]
    theirs = stage_usage({**env, "KG_DATABASE_URL": other_database}, normal_report["job_id"])["EXTRACT"]
    assert (ours["calls"], ours["input_tokens"], ours["output_tokens"]) == (
        theirs["calls"], theirs["input_tokens"], theirs["output_tokens"])
    assert theirs["cost_usd"] > 0 and ours["cost_usd"] == pytest.approx(theirs["cost_usd"] / 2, abs=1e-7)
    assert report["llm"]["cost_usd"] < normal_report["llm"]["cost_usd"]
    shown = run_kg(env, "status", report["job_id"], "--json").json()
    assert shown["batch_id"] == batches_of(fake_openai, "concepts")[0]["id"]
    assert shown["counts"]["llm_batch_extract"]["outcome"].startswith("completed")


def test_kg_status_shows_waiting_and_the_batch_and_a_killed_process_resumes_polling_the_same_batch(
        env, document, fake_openai, tmp_path):
    fake_openai.hold_batches = True  # the provider takes its time
    process = start_kg({**env, "KG_LEASE_S": "2"}, "ingest", str(document), "--json", "--llm-batch", cwd=tmp_path,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):  # bounded: until the job waits on its batch
            jobs = run_kg(env, "jobs", "--json").json()
            if jobs and jobs[0]["status"] == "WAITING":
                break
            assert process.poll() is None
            time.sleep(0.1)
        (job,) = jobs
        (batch,) = fake_openai.batches.values()
        assert (job["status"], job["batch_id"]) == ("WAITING", batch["id"])
        shown = run_kg(env, "status", job["job_id"])
        assert "WAITING" in shown.stdout and batch["id"] in shown.stdout
    finally:
        process.kill()  # SIGKILL while WAITING: nothing of the process runs again
        process.wait(timeout=60)

    for _ in range(60):  # bounded: the lease is 2 s
        (job,) = run_kg(env, "jobs", "--json").json()
        if job["status"] == "INTERRUPTED":
            break
    assert job["status"] == "INTERRUPTED"
    fake_openai.hold_batches = False  # the provider has finished meanwhile
    resumed = run_kg(env, "resume", job["job_id"], "--json")
    assert resumed.code == 0, resumed.stderr
    assert (resumed.json()["status"], resumed.json()["chunks_failed"]) == ("SUCCEEDED", 0)
    assert len(batches_of(fake_openai, "extract")) == 1  # polled again, not sent again
    assert fake_openai.direct_chat_requests() == []


@pytest.mark.parametrize("end", ["expired", "cancelled", "failed"])
def test_a_batch_that_does_not_complete_leaves_its_unanswered_requests_to_normal_calls(
        env, document, fake_openai, end):
    fake_openai.batch_end, fake_openai.batch_lines_done = end, 3
    if end == "cancelled":  # cancelled by kg itself: the batch outlived its allowed wait
        fake_openai.hold_batches = True
        env = {**env, "KG_LLM_BATCH_MAX_WAIT_S": "0.3"}
    result = run_kg(env, "ingest", str(document), "--json", "--llm-batch")
    assert result.code == 0, result.stderr
    report = result.json()
    assert (report["status"], report["chunks_failed"]) == ("SUCCEEDED", 0)
    (batch,) = batches_of(fake_openai, "extract")
    assert batch["status"] == end
    answered = 0 if end == "failed" else 3
    lines = batch["request_counts"]["total"] if end != "failed" else None
    direct = [r for r in fake_openai.direct_chat_requests() if r.triple_type is not None]
    if lines is not None:
        assert len(direct) == lines - answered
    else:
        assert direct  # none was answered: every request went the normal way
    counts = run_kg(env, "status", report["job_id"], "--json").json()["counts"]
    assert counts["llm_batch_extract"]["outcome"].startswith(end)


def test_failed_lines_of_a_batch_go_the_normal_way(env, document, fake_openai):
    fake_openai.on(lambda r: r.batch_id is not None and r.triple_type == "EVENT_EVENT", Reply(status=500))
    result = run_kg(env, "ingest", str(document), "--json", "--llm-batch", "--no-concepts")
    assert result.code == 0, result.stderr
    report = result.json()
    assert (report["status"], report["chunks_failed"]) == ("SUCCEEDED", 0)
    (batch,) = fake_openai.batches.values()
    failed = batch["request_counts"]["failed"]
    assert batch["status"] == "completed" and failed == report["chunks"]  # one line a chunk
    direct = fake_openai.direct_chat_requests()
    assert len(direct) == failed and {r.triple_type for r in direct} == {"EVENT_EVENT"}


@pytest.mark.parametrize("extra", [
    {"KG_LLM_PROVIDER": "offline", "KG_EMBEDDING_PROVIDER": "offline"},
    {"KG_LLM_PROVIDER": "offline", "KG_EMBEDDING_PROVIDER": "offline", "KG_LLM_BATCH": "true"},
], ids=["flag", "setting"])
def test_llm_batch_with_the_offline_provider_exits_2_with_one_line_and_writes_nothing(env, document, fake_openai,
                                                                                     extra):
    args = [] if "KG_LLM_BATCH" in extra else ["--llm-batch"]
    refused = run_kg({**env, **extra}, "ingest", str(document), *args)
    assert refused.code == 2, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("kg: error:") and "batch" in line
    assert run_kg(env, "jobs", "--json").json() == []
    assert not fake_openai.batches and not fake_openai.files


def test_the_api_job_option_sends_a_batch_and_the_job_view_shows_it_waiting_then_done(env, fake_openai, tmp_path):
    """`kg serve`: POST /jobs with options.llm_batch; GET /jobs/{id} is WAITING with the batch id while
    the fake provider holds the batch, and SUCCEEDED once it has answered."""
    from tests.support.moto_server import free_port

    fake_openai.hold_batches = True
    port = free_port()
    process = start_kg(env, "serve", "--port", str(port), cwd=tmp_path,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        status, accepted = http_json(url + "/jobs", "POST", {"source": "curie.txt", "text": TEXT,
                                                          "options": {"llm_batch": True, "concepts": False}})
        assert status == 202, accepted
        for _ in range(600):  # bounded: until the job waits on its batch
            status, job = http_json(url + f"/jobs/{accepted['job_id']}")
            if job["status"] == "WAITING":
                break
            assert job["status"] in ("QUEUED", "RUNNING"), job
            time.sleep(0.1)
        (batch,) = fake_openai.batches.values()
        assert (job["status"], job["batch_id"]) == ("WAITING", batch["id"])
        fake_openai.hold_batches = False
        for _ in range(1200):  # bounded: until the job ends
            status, done = http_json(url + f"/jobs/{accepted['job_id']}")
            if done["status"] in ("SUCCEEDED", "PARTIAL", "FAILED"):
                break
            time.sleep(0.1)
        assert (done["status"], done["batch_id"]) == ("SUCCEEDED", batch["id"])
        assert len(fake_openai.batches) == 1 and fake_openai.direct_chat_requests() == []
    finally:
        process.terminate()
        process.wait(timeout=120)
