"""The Ledger contract, for every implementation: idempotent writes, exact counters under retries and
concurrency, conditional status transitions, leases and their take-over, lookups."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from kg.errors import InvalidInput, NotFound
from kg.ledger import Lease, LeaseHeld, Ledger, extract_progress
from kg.ledger.dynamodb import GSI_NAME, TTL_ATTRIBUTE, DynamoDbLedger
from kg.models import ChunkState, ChunkStatus, JobStatus, LlmUsage, Stage

USAGE = LlmUsage(calls=4, cached=1, input_tokens=100, cached_input_tokens=64, output_tokens=10, cost_usd=0.00125)
FINISHED = [JobStatus.SUCCEEDED, JobStatus.PARTIAL, JobStatus.FAILED]


def new_job(ledger: Ledger, chunks: int | None = None) -> str:
    job_id = str(uuid.uuid4())
    ledger.create_job(job_id, "a.txt")
    if chunks is not None:
        ledger.start_extraction(job_id, str(uuid.uuid4()), chunks)
    return job_id


def chunk(index: int, status: ChunkStatus = ChunkStatus.SUCCEEDED, **fields: object) -> ChunkState:
    return ChunkState(index=index, status=status, **fields)


def test_a_created_job_is_queued_at_plan_without_progress(ledger: Ledger):
    job_id = new_job(ledger)
    job = ledger.get(job_id)
    assert (job.job_id, job.source, job.status, job.stage, job.progress) == (
        job_id, "a.txt", JobStatus.QUEUED, Stage.PLAN, 0)
    assert (job.chunks_total, job.chunks, job.llm, job.llm_by_stage, job.counts) == (0, [], LlmUsage(), {}, {})


def test_creating_a_job_again_changes_nothing(ledger: Ledger):
    job_id = new_job(ledger, chunks=2)
    ledger.create_job(job_id, "other.txt")
    job = ledger.get(job_id)
    assert (job.source, job.status, job.chunks_total) == ("a.txt", JobStatus.RUNNING, 2)


def test_start_extraction_makes_the_job_running_with_every_chunk_pending(ledger: Ledger):
    job_id = str(uuid.uuid4())
    document_id = str(uuid.uuid4())
    ledger.create_job(job_id, "a.txt")
    ledger.start_extraction(job_id, document_id, 3)
    job = ledger.get(job_id)
    assert (job.status, job.stage, job.progress, job.document_id) == (
        JobStatus.RUNNING, Stage.EXTRACT, 5, document_id)
    assert job.chunks == [chunk(i, ChunkStatus.PENDING) for i in range(3)]
    assert (job.chunks_total, job.chunks_done, job.chunks_failed) == (3, 0, 0)


def test_recording_a_chunk_twice_counts_it_once(ledger: Ledger):
    job_id = new_job(ledger, chunks=4)
    for _ in range(2):
        ledger.record_chunk(job_id, chunk(0, triples=5), USAGE)
        ledger.record_chunk(job_id, chunk(1, ChunkStatus.FAILED, error="boom"), USAGE)
    job = ledger.get(job_id)
    assert (job.chunks_done, job.chunks_failed, job.progress) == (2, 1, extract_progress(2, 4))
    assert job.llm == USAGE.add(USAGE)
    assert job.llm_by_stage == {Stage.EXTRACT.value: USAGE.add(USAGE)}
    # Each record is an attempt: the chunk's outcome is replaced, its attempts count up.
    assert job.chunks[:2] == [chunk(0, triples=5, attempts=2), chunk(1, ChunkStatus.FAILED, error="boom", attempts=2)]
    assert job.chunks[2] == chunk(2, ChunkStatus.PENDING, attempts=0)


def test_a_failed_chunk_recorded_again_as_succeeded_moves_the_counters(ledger: Ledger):
    job_id = new_job(ledger, chunks=2)
    ledger.record_chunk(job_id, chunk(0, ChunkStatus.FAILED, error="timeout"), USAGE)
    ledger.record_chunk(job_id, chunk(0, triples=3), LlmUsage(calls=1, cost_usd=0.5))
    job = ledger.get(job_id)
    assert (job.chunks_done, job.chunks_failed) == (1, 0)
    assert job.chunks[0] == chunk(0, triples=3, attempts=2)  # the error went with the failure
    assert job.llm == LlmUsage(calls=1, cost_usd=0.5)


def test_a_partial_chunk_counts_as_done_and_failed(ledger: Ledger):
    job_id = new_job(ledger, chunks=2)
    ledger.record_chunk(job_id, chunk(1, ChunkStatus.PARTIAL, error="EVENT_EVENT failed", triples=2))
    job = ledger.get(job_id)
    assert (job.chunks_done, job.chunks_failed) == (1, 1)


def test_chunks_recorded_from_many_threads_are_all_counted(ledger: Ledger):
    total = 60
    job_id = new_job(ledger, chunks=total)
    statuses = [ChunkStatus.FAILED if i % 5 == 0 else ChunkStatus.SUCCEEDED for i in range(total)]
    usage = LlmUsage(calls=2, input_tokens=10, cost_usd=0.25)
    with ThreadPoolExecutor(max_workers=8) as pool:
        # Every chunk twice, as Step Functions retries do, interleaved with the other chunks.
        list(pool.map(lambda i: ledger.record_chunk(job_id, chunk(i % total, statuses[i % total]), usage),
                      range(2 * total)))
    job = ledger.get(job_id)
    assert (job.chunks_done, job.chunks_failed, job.progress) == (total, total // 5, extract_progress(total, total))
    assert job.llm == LlmUsage(calls=2 * total, input_tokens=10 * total, cost_usd=0.25 * total)


def test_one_chunk_recorded_from_many_threads_counts_once(ledger: Ledger):
    job_id = new_job(ledger, chunks=3)
    start = threading.Barrier(6)

    def record(n: int) -> None:
        start.wait()
        status = ChunkStatus.FAILED if n % 2 else ChunkStatus.SUCCEEDED
        ledger.record_chunk(job_id, chunk(1, status), USAGE)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(record, range(6)))
    job = ledger.get(job_id)
    failed = int(job.chunks[1].status is ChunkStatus.FAILED)
    assert (job.chunks_done, job.chunks_failed, job.llm) == (1, failed, USAGE)
    assert job.chunks[1].attempts == 6  # every concurrent record is counted, none twice


def test_start_extraction_again_keeps_the_recorded_chunks(ledger: Ledger):
    job_id = new_job(ledger, chunks=3)
    ledger.record_chunk(job_id, chunk(0, triples=4), USAGE)
    ledger.start_extraction(job_id, str(uuid.uuid4()), 3)
    job = ledger.get(job_id)
    assert job.chunks == [chunk(0, triples=4, attempts=1), chunk(1, ChunkStatus.PENDING), chunk(2, ChunkStatus.PENDING)]
    assert (job.chunks_done, job.progress, job.llm) == (1, extract_progress(1, 3), USAGE)


def test_usage_recorded_again_for_the_same_part_replaces_it(ledger: Ledger):
    job_id = new_job(ledger, chunks=1)
    ledger.record_usage(job_id, Stage.CONCEPTS, LlmUsage(calls=9, cost_usd=0.9), part="batch-0")
    ledger.record_usage(job_id, Stage.CONCEPTS, LlmUsage(calls=2, cost_usd=0.125), part="batch-0")
    job = ledger.get(job_id)
    assert job.llm_by_stage == {Stage.CONCEPTS.value: LlmUsage(calls=2, cost_usd=0.125)}
    assert job.llm == LlmUsage(calls=2, cost_usd=0.125)


def test_usage_of_different_parts_and_stages_adds_up_with_the_chunks(ledger: Ledger):
    job_id = new_job(ledger, chunks=1)
    ledger.record_chunk(job_id, chunk(0), USAGE)
    ledger.record_usage(job_id, Stage.STORE, LlmUsage(input_tokens=50, cost_usd=0.001))
    ledger.record_usage(job_id, Stage.CONCEPTS, LlmUsage(calls=1, cost_usd=0.25), part="batch-0")
    ledger.record_usage(job_id, Stage.CONCEPTS, LlmUsage(calls=2, cost_usd=0.5), part="batch-1")
    job = ledger.get(job_id)
    assert job.llm_by_stage == {
        Stage.EXTRACT.value: USAGE,
        Stage.STORE.value: LlmUsage(input_tokens=50, cost_usd=0.001),
        Stage.CONCEPTS.value: LlmUsage(calls=3, cost_usd=0.75),
    }
    assert job.llm == USAGE.add(LlmUsage(calls=3, input_tokens=50, cost_usd=0.751))


def test_set_stage_raises_progress_and_merges_counts(ledger: Ledger):
    job_id = new_job(ledger, chunks=1)
    ledger.set_stage(job_id, Stage.STORE, {"triples": {"total": 7}, "new_rows": 3})
    ledger.set_stage(job_id, Stage.CONCEPTS, {"new_rows": 5, "duration_s": 1.5})
    job = ledger.get(job_id)
    assert (job.status, job.stage, job.progress) == (JobStatus.RUNNING, Stage.CONCEPTS, 90)
    assert job.counts == {"triples": {"total": 7}, "new_rows": 5, "duration_s": 1.5}


def test_set_stage_to_an_earlier_stage_keeps_the_progress(ledger: Ledger):
    job_id = new_job(ledger, chunks=1)
    ledger.set_stage(job_id, Stage.DEDUP)
    ledger.set_stage(job_id, Stage.STORE, {"retried": True})
    job = ledger.get(job_id)
    assert (job.stage, job.progress, job.counts) == (Stage.STORE, 95, {"retried": True})


def test_a_job_lives_from_creation_to_its_finish(ledger: Ledger):
    job_id = new_job(ledger, chunks=2)
    ledger.record_chunk(job_id, chunk(0, triples=3), USAGE)
    ledger.record_chunk(job_id, chunk(1, ChunkStatus.FAILED, error="boom"))
    ledger.set_stage(job_id, Stage.STORE, {"new_rows": 3})
    assert ledger.finish(job_id, JobStatus.PARTIAL, {"triples": {"total": 7}}, "chunk 1 failed") is True
    job = ledger.get(job_id)
    assert (job.status, job.stage, job.progress, job.error) == (
        JobStatus.PARTIAL, Stage.FINALIZE, 100, "chunk 1 failed")
    assert job.counts == {"new_rows": 3, "triples": {"total": 7}}
    assert (job.chunks_done, job.chunks_failed, job.llm) == (2, 1, USAGE)
    assert job.created_at <= job.updated_at


def test_a_queued_job_can_fail_before_it_is_planned(ledger: Ledger):
    job_id = new_job(ledger)
    assert ledger.finish(job_id, JobStatus.FAILED, error="InvalidInput: empty document") is True
    job = ledger.get(job_id)
    assert (job.status, job.progress, job.error) == (JobStatus.FAILED, 100, "InvalidInput: empty document")


@pytest.mark.parametrize("status", FINISHED)
def test_finishing_again_with_the_same_status_is_a_no_op_that_succeeds(ledger: Ledger, status: JobStatus):
    job_id = new_job(ledger, chunks=1)
    assert ledger.finish(job_id, status, {"a": 1}, "first") is True
    before = ledger.get(job_id)
    assert ledger.finish(job_id, status, {"a": 2, "b": 2}, "retried") is True
    assert ledger.get(job_id) == before


@pytest.mark.parametrize(("first", "then"), [(a, b) for a in FINISHED for b in FINISHED if a is not b])
def test_finishing_with_another_status_after_the_end_changes_nothing(ledger: Ledger, first: JobStatus,
                                                                      then: JobStatus):
    job_id = new_job(ledger, chunks=1)
    ledger.finish(job_id, first, {"a": 1})
    before = ledger.get(job_id)
    assert ledger.finish(job_id, then, {"a": 2}, "too late") is False
    assert ledger.get(job_id) == before


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING])
def test_finishing_with_an_unfinished_status_is_refused(ledger: Ledger, status: JobStatus):
    job_id = new_job(ledger, chunks=1)
    before = ledger.get(job_id)
    with pytest.raises(ValueError):
        ledger.finish(job_id, status)
    assert ledger.get(job_id) == before


def test_set_stage_after_the_finish_changes_nothing(ledger: Ledger):
    job_id = new_job(ledger, chunks=1)
    ledger.finish(job_id, JobStatus.SUCCEEDED)
    before = ledger.get(job_id)
    ledger.set_stage(job_id, Stage.DEDUP, {"late": True})
    assert ledger.get(job_id) == before


def test_start_extraction_after_the_finish_changes_nothing(ledger: Ledger):
    job_id = new_job(ledger)
    ledger.finish(job_id, JobStatus.FAILED, error="cancelled")
    before = ledger.get(job_id)
    ledger.start_extraction(job_id, str(uuid.uuid4()), 4)
    assert ledger.get(job_id) == before


def test_usage_spent_after_the_finish_is_still_counted(ledger: Ledger):
    # The money is spent whether or not the job has ended (a late retry of a chunk, a stage's last
    # batch): the ledger's cost stays the truth, while the status stays as finished.
    job_id = new_job(ledger, chunks=2)
    ledger.finish(job_id, JobStatus.FAILED, error="cancelled")
    ledger.record_chunk(job_id, chunk(1), USAGE)
    ledger.record_usage(job_id, Stage.DEDUP, LlmUsage(calls=1, cost_usd=0.5))
    job = ledger.get(job_id)
    assert (job.status, job.progress, job.chunks_done) == (JobStatus.FAILED, 100, 1)
    assert job.llm == USAGE.add(LlmUsage(calls=1, cost_usd=0.5))


def test_errors_are_stored_exactly_as_given(ledger: Ledger):
    error = "Traceback (most recent call last):\n  ValueError: «bad» 'input' \"here\"\t€\n" + "x" * 3000
    job_id = new_job(ledger, chunks=1)
    ledger.record_chunk(job_id, chunk(0, ChunkStatus.FAILED, error=error))
    ledger.finish(job_id, JobStatus.FAILED, error=error)
    job = ledger.get(job_id)
    assert (job.error, job.chunks[0].error) == (error, error)


def test_get_without_chunks_leaves_them_out_but_keeps_the_counters(ledger: Ledger):
    job_id = new_job(ledger, chunks=2)
    ledger.record_chunk(job_id, chunk(0))
    job = ledger.get(job_id, with_chunks=False)
    assert (job.chunks, job.chunks_done, job.chunks_total) == ([], 1, 2)


def test_list_jobs_gives_the_newest_first_up_to_the_limit(ledger: Ledger):
    created = [new_job(ledger, chunks=2 if n % 2 else None) for n in range(4)]
    ledger.record_chunk(created[1], chunk(0), USAGE)
    ledger.finish(created[0], JobStatus.SUCCEEDED)
    assert [job.job_id for job in ledger.list_jobs()] == created[::-1]
    latest = ledger.list_jobs(limit=2)
    assert [job.job_id for job in latest] == created[:1:-1]
    assert ledger.list_jobs(limit=0) == []


def test_list_jobs_gives_each_job_as_get_does_without_its_chunks(ledger: Ledger):
    job_id = new_job(ledger, chunks=2)
    ledger.record_chunk(job_id, chunk(0, triples=2), USAGE)
    ledger.record_usage(job_id, Stage.CONCEPTS, LlmUsage(calls=1, cost_usd=0.5), part="batch-0")
    ledger.set_stage(job_id, Stage.CONCEPTS, {"new_rows": 3})
    other = new_job(ledger)
    assert ledger.list_jobs() == [ledger.get(other, with_chunks=False), ledger.get(job_id, with_chunks=False)]


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_an_unknown_job_is_not_found(ledger: Ledger, job_id: str):
    with pytest.raises(NotFound):
        ledger.get(job_id)


WRITES: dict[str, Callable[[Ledger, str], object]] = {
    "start_extraction": lambda ledger, job_id: ledger.start_extraction(job_id, str(uuid.uuid4()), 2),
    "record_chunk": lambda ledger, job_id: ledger.record_chunk(job_id, chunk(0), USAGE),
    "record_usage": lambda ledger, job_id: ledger.record_usage(job_id, Stage.STORE, USAGE),
    "set_stage": lambda ledger, job_id: ledger.set_stage(job_id, Stage.STORE),
    "finish": lambda ledger, job_id: ledger.finish(job_id, JobStatus.FAILED),
    "renew_lease": lambda ledger, job_id: ledger.renew_lease(job_id, Lease(owner="me", seconds=60)),
    "take_over": lambda ledger, job_id: ledger.take_over(job_id, Lease(owner="me", seconds=60)),
    "interrupt": lambda ledger, job_id: ledger.interrupt(job_id, "me", "stopped"),
    "wait_for_batch": lambda ledger, job_id: ledger.wait_for_batch(job_id, "batch_1"),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_a_write_to_an_unknown_job_raises_not_found_and_creates_nothing(ledger: Ledger, write):
    job_id = str(uuid.uuid4())
    with pytest.raises(NotFound):
        write(ledger, job_id)
    with pytest.raises(NotFound):
        ledger.get(job_id)
    assert ledger.list_jobs() == []


# -- leases: a local job is held by its process; a lapsed or interrupted job can be taken over ----

OWNER = Lease(owner="host:1:aaaa", seconds=600)
OTHER = Lease(owner="host:2:bbbb", seconds=600)


def leased_job(ledger: Ledger, lease: Lease = OWNER, chunks: int | None = 2) -> str:
    job_id = str(uuid.uuid4())
    ledger.create_job(job_id, "a.txt", lease)
    if chunks is not None:
        ledger.start_extraction(job_id, str(uuid.uuid4()), chunks)
    return job_id


def eventually(condition: Callable[[], bool], attempts: int = 500) -> bool:
    """Waits (boundedly) for a condition that time makes true, such as a lease running out."""
    for _ in range(attempts):
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def lapsed_job(ledger: Ledger, chunks: int | None = 2) -> str:
    """A job whose process died: held under a lease that has run out."""
    job_id = leased_job(ledger, Lease(owner="dead:9:0000", seconds=0.05), chunks)
    assert eventually(lambda: ledger.get(job_id).status is JobStatus.INTERRUPTED)
    return job_id


def test_a_job_created_under_a_lease_is_held_by_its_owner(ledger: Ledger):
    job_id = leased_job(ledger, chunks=None)
    job = ledger.get(job_id)
    assert (job.status, job.lease_owner) == (JobStatus.QUEUED, OWNER.owner)
    assert job.lease_until is not None and job.lease_until > job.created_at


def test_a_job_whose_lease_has_lapsed_reads_interrupted_wherever_it_is_read(ledger: Ledger):
    job_id = lapsed_job(ledger)
    job = ledger.get(job_id)
    assert job.status is JobStatus.INTERRUPTED and not job.status.finished
    assert [j.status for j in ledger.list_jobs()] == [JobStatus.INTERRUPTED]
    assert ledger.latest_job("a.txt").status is JobStatus.INTERRUPTED


def test_a_job_without_a_lease_never_reads_interrupted(ledger: Ledger):
    job_id = new_job(ledger, chunks=2)  # an AWS job: Step Functions ends it
    job = ledger.get(job_id)
    assert (job.status, job.lease_owner, job.lease_until) == (JobStatus.RUNNING, None, None)


def test_renewing_extends_the_owners_lease_and_no_one_elses(ledger: Ledger):
    job_id = leased_job(ledger, Lease(owner=OWNER.owner, seconds=5))
    before = ledger.get(job_id).lease_until
    assert ledger.renew_lease(job_id, OTHER) is False
    assert ledger.get(job_id).lease_until == before
    assert ledger.renew_lease(job_id, OWNER) is True
    job = ledger.get(job_id)
    assert (job.status, job.lease_owner) == (JobStatus.RUNNING, OWNER.owner)
    assert (job.lease_until - before).total_seconds() > 500  # now 600 s from now, not 5


def test_a_renewal_brings_a_lapsed_job_back_while_no_one_has_taken_it(ledger: Ledger):
    job_id = lapsed_job(ledger)
    assert ledger.renew_lease(job_id, Lease(owner="dead:9:0000", seconds=600)) is True  # it was only slow
    assert ledger.get(job_id).status is JobStatus.RUNNING


def test_interrupting_stops_the_owners_job_resumable_and_releases_its_lease(ledger: Ledger):
    job_id = leased_job(ledger)
    ledger.record_chunk(job_id, chunk(0, triples=2), USAGE)
    assert ledger.interrupt(job_id, OWNER.owner, "interrupted (KeyboardInterrupt)") is True
    job = ledger.get(job_id)
    assert (job.status, job.error, job.lease_owner, job.lease_until) == (
        JobStatus.INTERRUPTED, "interrupted (KeyboardInterrupt)", None, None)
    assert not job.status.finished and job.chunks_done == 1
    assert ledger.renew_lease(job_id, OWNER) is False
    assert ledger.interrupt(job_id, OWNER.owner, "again") is False
    assert ledger.get(job_id) == job


def test_an_interrupted_job_takes_no_stage_or_plan_until_it_is_taken_over(ledger: Ledger):
    job_id = leased_job(ledger)
    ledger.interrupt(job_id, OWNER.owner, "stopped")
    before = ledger.get(job_id)
    ledger.set_stage(job_id, Stage.STORE, {"late": True})
    ledger.start_extraction(job_id, str(uuid.uuid4()), 2)
    assert ledger.get(job_id) == before


def test_a_job_held_by_another_cannot_be_interrupted_by_a_stranger(ledger: Ledger):
    job_id = leased_job(ledger)
    assert ledger.interrupt(job_id, OTHER.owner, "not mine") is False
    assert ledger.get(job_id).status is JobStatus.RUNNING


@pytest.mark.parametrize("how", ["interrupted", "lapsed"])
def test_taking_over_a_stopped_job_runs_it_under_the_new_lease_with_what_it_had_done(ledger: Ledger, how: str):
    if how == "interrupted":
        job_id = leased_job(ledger)
        ledger.record_chunk(job_id, chunk(0, triples=2), USAGE)
        ledger.interrupt(job_id, OWNER.owner, "interrupted (KeyboardInterrupt)")
    else:
        job_id = lapsed_job(ledger)
        ledger.record_chunk(job_id, chunk(0, triples=2), USAGE)
    taken = ledger.take_over(job_id, OTHER)
    job = ledger.get(job_id)
    assert taken == ledger.get(job_id, with_chunks=False)
    assert (job.status, job.lease_owner, job.error, job.stage) == (JobStatus.RUNNING, OTHER.owner, None, Stage.EXTRACT)
    assert job.chunks == [chunk(0, triples=2, attempts=1), chunk(1, ChunkStatus.PENDING)]
    assert (job.chunks_done, job.llm) == (1, USAGE)
    assert ledger.renew_lease(job_id, OTHER) is True
    assert ledger.renew_lease(job_id, Lease(owner="dead:9:0000", seconds=60)) is False  # the old owner lost it


def test_taking_over_a_job_whose_lease_is_live_is_refused(ledger: Ledger):
    job_id = leased_job(ledger)
    before = ledger.get(job_id)
    with pytest.raises(LeaseHeld, match=job_id):
        ledger.take_over(job_id, OTHER)
    assert ledger.get(job_id) == before


@pytest.mark.parametrize("state", ["finished", "unleased"])
def test_a_finished_or_unleased_job_cannot_be_taken_over(ledger: Ledger, state: str):
    job_id = new_job(ledger, chunks=1)
    if state == "finished":
        ledger.finish(job_id, JobStatus.SUCCEEDED)
    before = ledger.get(job_id)
    with pytest.raises(InvalidInput, match=job_id):
        ledger.take_over(job_id, OTHER)
    assert ledger.get(job_id) == before


def test_of_takeovers_at_once_exactly_one_wins(ledger: Ledger):
    job_id = lapsed_job(ledger)
    contenders = [Lease(owner=f"host:{n}:cccc", seconds=600) for n in range(6)]
    start = threading.Barrier(len(contenders))

    def take(lease: Lease) -> str:
        start.wait()
        try:
            ledger.take_over(job_id, lease)
            return "won"
        except LeaseHeld:
            return "refused"

    with ThreadPoolExecutor(max_workers=len(contenders)) as pool:
        outcomes = list(pool.map(take, contenders))
    assert sorted(outcomes) == ["refused"] * 5 + ["won"]
    assert ledger.get(job_id).lease_owner == contenders[outcomes.index("won")].owner


def test_finishing_releases_the_lease_and_an_interrupted_job_can_still_be_finished(ledger: Ledger):
    held, stopped = leased_job(ledger), leased_job(ledger)
    ledger.interrupt(stopped, OWNER.owner, "stopped")
    assert ledger.finish(held, JobStatus.SUCCEEDED) is True
    assert ledger.finish(stopped, JobStatus.FAILED, error="cannot be resumed") is True
    for job_id, status in ((held, JobStatus.SUCCEEDED), (stopped, JobStatus.FAILED)):
        job = ledger.get(job_id)
        assert (job.status, job.lease_owner, job.lease_until) == (status, None, None)
    assert ledger.renew_lease(held, OWNER) is False


def test_a_queued_job_is_taken_by_the_first_lease_and_refused_to_a_second(ledger: Ledger):
    job_id = new_job(ledger)  # kg serve opens a job QUEUED before it runs
    ledger.create_job(job_id, "a.txt", OWNER)
    assert ledger.get(job_id).lease_owner == OWNER.owner
    ledger.create_job(job_id, "a.txt", OWNER)  # plan again under the same lease: a no-op
    with pytest.raises(LeaseHeld):
        ledger.create_job(job_id, "a.txt", OTHER)
    job = ledger.get(job_id)
    assert (job.status, job.lease_owner) == (JobStatus.QUEUED, OWNER.owner)


def test_latest_job_is_the_newest_of_its_source(ledger: Ledger):
    ledger.create_job(str(uuid.uuid4()), "a.txt")
    newest = str(uuid.uuid4())
    ledger.create_job(newest, "a.txt")
    other = str(uuid.uuid4())
    ledger.create_job(other, "b.txt")
    assert ledger.latest_job("a.txt") == ledger.get(newest, with_chunks=False)
    assert ledger.latest_job("b.txt").job_id == other
    assert ledger.latest_job("c.txt") is None


# -- DynamoDB only: the table layout that the stack's TTL and index rely on ----------------------


def test_dynamodb_chunk_items_expire_and_job_items_do_not(dynamodb_ledger: DynamoDbLedger):
    job_id = new_job(dynamodb_ledger, chunks=3)
    dynamodb_ledger.record_chunk(job_id, chunk(1), USAGE)
    client = dynamodb_ledger.client
    items = client.query(TableName=dynamodb_ledger.table, KeyConditionExpression="pk = :pk",
                         ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}})["Items"]
    by_sort_key = {item["sk"]["S"]: item for item in items}
    # Planning writes no chunk items: only the recorded chunk has one.
    assert set(by_sort_key) == {"JOB", "CHUNK#000001"}
    assert TTL_ATTRIBUTE not in by_sort_key["JOB"]
    expires_in = int(by_sort_key["CHUNK#000001"][TTL_ATTRIBUTE]["N"]) - time.time()
    assert 29 * 86_400 < expires_in <= 30 * 86_400
    ttl = client.describe_time_to_live(TableName=dynamodb_ledger.table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", TTL_ATTRIBUTE)


def test_dynamodb_only_job_items_are_in_the_jobs_index(dynamodb_ledger: DynamoDbLedger):
    job_id = new_job(dynamodb_ledger, chunks=2)
    dynamodb_ledger.record_chunk(job_id, chunk(0))
    items = dynamodb_ledger.client.scan(TableName=dynamodb_ledger.table, IndexName=GSI_NAME)["Items"]
    assert [(item["pk"]["S"], item["sk"]["S"], item["gsi1pk"]["S"]) for item in items] == [
        (f"JOB#{job_id}", "JOB", "JOB")]
    assert items[0]["gsi1sk"]["S"].endswith(f"#{job_id}")


def test_dynamodb_list_jobs_reads_on_over_short_pages(dynamodb_ledger: DynamoDbLedger):
    created = [new_job(dynamodb_ledger) for _ in range(5)]
    # DynamoDB ends a page at 1 MB whatever the Limit: pages of two items stand in for that.
    dynamodb_ledger.client = _ShortPages(dynamodb_ledger.client)
    assert [job.job_id for job in dynamodb_ledger.list_jobs(limit=4)] == created[:0:-1]


class _ShortPages:
    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def query(self, **kwargs: Any) -> Any:
        return self._client.query(**{**kwargs, "Limit": min(kwargs["Limit"], 2)})


# -- batch mode: a job WAITING on its provider batch ----------------------------------------------


def test_a_job_waiting_on_a_batch_reads_waiting_with_the_batch_and_running_again_after(ledger: Ledger):
    job_id = leased_job(ledger)
    assert ledger.get(job_id).batch_id is None
    ledger.wait_for_batch(job_id, "batch_abc")
    job = ledger.get(job_id)
    assert (job.status, job.batch_id, job.lease_owner) == (JobStatus.WAITING, "batch_abc", OWNER.owner)
    assert not job.status.finished
    assert [(j.status, j.batch_id) for j in ledger.list_jobs()] == [(JobStatus.WAITING, "batch_abc")]
    assert ledger.renew_lease(job_id, OWNER) is True  # its process keeps it while it waits
    ledger.set_stage(job_id, Stage.EXTRACT, {"llm_batch_extract": {"outcome": "completed"}})
    ledger.wait_for_batch(job_id, None)
    job = ledger.get(job_id)
    assert (job.status, job.batch_id) == (JobStatus.RUNNING, "batch_abc")  # the last batch stays on the record
    assert job.counts["llm_batch_extract"] == {"outcome": "completed"}


def test_a_waiting_job_can_be_interrupted_or_lapse_and_then_be_taken_over(ledger: Ledger):
    job_id = leased_job(ledger)
    ledger.wait_for_batch(job_id, "batch_abc")
    assert ledger.interrupt(job_id, OWNER.owner, "interrupted (KeyboardInterrupt)") is True
    assert ledger.get(job_id).status is JobStatus.INTERRUPTED
    ledger.wait_for_batch(job_id, "batch_other")  # an interrupted job takes no write until taken over
    assert ledger.get(job_id).batch_id == "batch_abc"
    ledger.take_over(job_id, OTHER)
    ledger.wait_for_batch(job_id, "batch_abc")

    lapsed = leased_job(ledger, Lease(owner="dead:9:0000", seconds=0.05))
    ledger.wait_for_batch(lapsed, "batch_xyz")
    assert eventually(lambda: ledger.get(lapsed).status is JobStatus.INTERRUPTED)
    assert ledger.take_over(lapsed, OTHER).batch_id == "batch_xyz"
    assert {j.job_id: j.status for j in ledger.list_jobs()}[job_id] is JobStatus.WAITING


def test_a_finished_job_does_not_wait_on_a_batch(ledger: Ledger):
    job_id = leased_job(ledger)
    ledger.finish(job_id, JobStatus.SUCCEEDED)
    ledger.wait_for_batch(job_id, "batch_late")
    assert (ledger.get(job_id).status, ledger.get(job_id).batch_id) == (JobStatus.SUCCEEDED, None)
