"""The job ledger in DynamoDB (AWS engine).

One table, partition key `pk` and sort key `sk`: per job one item (`JOB#<id>`, `JOB`) and one item
per recorded chunk (`JOB#<id>`, `CHUNK#<index:06d>`) that expires `chunk_ttl_days` later (TTL
attribute `expires_at`). A chunk without an item reads as PENDING, so that planning a job of many
chunks is one write and a repeated plan cannot reset a recorded chunk. The GSI `jobs_by_created`
(`gsi1pk` = "JOB", `gsi1sk` = created_at#id) lists jobs newest first.

The job item holds the counters (chunks_done, chunks_failed and EXTRACT's usage as `extract_*`),
changed by ADD in the same transaction as the chunk item, on the condition that the chunk item is
still the version that was read: a retried or concurrent record_chunk applies its delta once.

Leases (`lease_owner`, `lease_until` in epoch seconds on the job item) follow the port's contract,
with this process's clock; the AWS engine itself never takes one (Step Functions ends its jobs), so
its jobs never read INTERRUPTED.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from kg.errors import NotFound
from kg.ledger import STAGE_PROGRESS, Lease, LeaseHeld, check_resumable, extract_progress, when
from kg.models import ChunkState, ChunkStatus, JobRecord, JobStatus, LlmUsage, Stage

GSI_NAME = "jobs_by_created"
TTL_ATTRIBUTE = "expires_at"
_USAGE_FIELDS = tuple(LlmUsage.model_fields)
_FAILED = (ChunkStatus.FAILED, ChunkStatus.PARTIAL)
# The states a process may move on (set_stage, start_extraction); an INTERRUPTED job can still be finished.
_UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.WAITING.value)
_NOT_ENDED = (*_UNFINISHED, JobStatus.INTERRUPTED.value)
_ATTEMPTS = 10
_serializer, _deserializer = TypeSerializer(), TypeDeserializer()


class DynamoDbLedger:
    def __init__(self, table_name: str, client: Any = None, chunk_ttl_days: int = 30):
        """`client`: a boto3 DynamoDB client. Not a resource's client: the items here are already in
        DynamoDB's typed form, which a resource's client would serialize a second time."""
        self.table = table_name
        self.client = client or boto3.client("dynamodb")
        self.chunk_ttl_s = chunk_ttl_days * 86_400

    def create_job(self, job_id: str, source: str, lease: Lease | None = None) -> None:
        job, now = _job_id(job_id), _now()
        item = {
            **_job_key(job), "gsi1pk": "JOB", "gsi1sk": f"{now}#{job}", "job_id": job, "source": source,
            "status": JobStatus.QUEUED.value, "stage": Stage.PLAN.value, "progress": 0, "chunks_total": 0,
            "chunks_done": 0, "chunks_failed": 0, "counts": {}, "usage": {}, "created_at": now, "updated_at": now,
        }
        if lease is not None:
            item.update(lease_owner=lease.owner, lease_until=time.time() + lease.seconds)
        try:
            self._call(self.client.put_item, TableName=self.table, Item=_dump(item),
                       ConditionExpression="attribute_not_exists(pk)")
            return
        except ClientError as e:
            if _code(e) != "ConditionalCheckFailedException":
                raise
        if lease is None:
            return
        u = _Update()
        u.set(("lease_owner",), lease.owner)
        u.set(("lease_until",), time.time() + lease.seconds)
        owner = u.name("lease_owner")
        condition = (f"{_status_in(u, _UNFINISHED)} AND (attribute_not_exists({owner}) OR {owner} = "
                     f"{u.value(lease.owner)} OR {u.name('lease_until')} < {u.value(time.time())})")
        try:
            self._update_job(job, u, condition, return_old=True)
        except ClientError as e:
            if _code(e) != "ConditionalCheckFailedException":
                raise
            old = _load(e.response["Item"])
            if old["status"] in _UNFINISHED:  # else ended or interrupted: plan's later writes leave it alone
                raise LeaseHeld(f"job {job} is held by {old.get('lease_owner')} until "
                                f"{when(_moment(old.get('lease_until')))}") from e

    def renew_lease(self, job_id: str, lease: Lease) -> bool:
        job = _job_id(job_id)
        u = _Update()
        u.set(("lease_until",), time.time() + lease.seconds)
        condition = (f"attribute_exists({u.name('pk')}) AND {_status_in(u, _UNFINISHED)} AND "
                     f"{u.name('lease_owner')} = {u.value(lease.owner)}")
        return self._conditional(job, u, condition)

    def take_over(self, job_id: str, lease: Lease) -> JobRecord:
        job = _job_id(job_id)
        for attempt in range(_ATTEMPTS):
            found = self.client.get_item(TableName=self.table, Key=_dump(_job_key(job)), ConsistentRead=True)
            if "Item" not in found:
                raise NotFound(f"no job {job_id}")
            item, now = _load(found["Item"]), time.time()
            until = item.get("lease_until")
            check_resumable(job, JobStatus(item["status"]), item.get("lease_owner"), _moment(until),
                            None if until is None else until < now)
            u = _Update()
            u.set(("status",), JobStatus.RUNNING.value)
            u.set(("lease_owner",), lease.owner)
            u.set(("lease_until",), now + lease.seconds)
            u.set(("updated_at",), _now())
            u.remove(("error",))
            # The write holds only if the job is still as read (the same status and lease), so that of
            # two resumes that read it at once, one wins and the other reads the winner's lease.
            condition = f"{u.name('status')} = {u.value(item['status'])} AND "
            if until is None:
                condition += f"attribute_not_exists({u.name('lease_until')})"
            else:
                condition += f"{u.name('lease_until')} = {u.value(until)}"
            if self._conditional(job, u, condition):
                return self.get(job, with_chunks=False)
            _backoff(attempt)
        raise LeaseHeld(f"job {job_id} is being taken over by another process")

    def interrupt(self, job_id: str, owner: str, error: str) -> bool:
        job = _job_id(job_id)
        u = _Update()
        u.set(("status",), JobStatus.INTERRUPTED.value)
        u.set(("error",), error)
        u.set(("updated_at",), _now())
        u.remove(("lease_owner",))
        u.remove(("lease_until",))
        held_by = u.name("lease_owner")
        condition = (f"attribute_exists({u.name('pk')}) AND {_status_in(u, _UNFINISHED)} AND "
                     f"(attribute_not_exists({held_by}) OR {held_by} = {u.value(owner)})")
        return self._conditional(job, u, condition)

    def latest_job(self, source: str) -> JobRecord | None:
        # No index by source: the jobs index, newest first, filtered (a local engine's question; the
        # AWS engine finds a submission's jobs by their derived ids instead).
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table, IndexName=GSI_NAME, KeyConditionExpression="gsi1pk = :job",
            FilterExpression="#source = :source", ExpressionAttributeNames={"#source": "source"},
            ExpressionAttributeValues={":job": {"S": "JOB"}, ":source": {"S": source}}, ScanIndexForward=False,
        )
        for page in pages:
            if page["Items"]:
                return _record(_load(page["Items"][0]), [])
        return None

    def start_extraction(self, job_id: str, document_id: str, chunks_total: int) -> None:
        def fill(u: _Update) -> None:
            u.set(("status",), JobStatus.RUNNING.value)
            u.set(("stage",), Stage.EXTRACT.value)
            u.set(("document_id",), str(uuid.UUID(document_id)))
            u.set(("chunks_total",), chunks_total)

        self._update_unfinished(_job_id(job_id), fill, STAGE_PROGRESS[Stage.EXTRACT])

    def record_chunk(self, job_id: str, chunk: ChunkState, usage: LlmUsage | None = None) -> None:
        job, usage = _job_id(job_id), usage or LlmUsage()
        key = {**_job_key(job), "sk": f"CHUNK#{chunk.index:06d}"}
        for attempt in range(_ATTEMPTS):
            found = self.client.get_item(TableName=self.table, Key=_dump(key), ConsistentRead=True).get("Item")
            before = _load(found) if found else None
            version = before["version"] if before else 0
            put = _Update()
            condition = (f"{put.name('version')} = {put.value(version)}" if before
                         else f"attribute_not_exists({put.name('sk')})")
            # The version condition below makes the read-then-count exact under concurrent records.
            attempts = int(before.get("attempts", 0)) + 1 if before else 1
            item = {**key, "index": chunk.index, "status": chunk.status.value, "triples": chunk.triples,
                    "llm": usage.model_dump(), "version": version + 1, "attempts": attempts,
                    TTL_ATTRIBUTE: int(time.time()) + self.chunk_ttl_s, "updated_at": _now()}
            if chunk.error is not None:
                item["error"] = chunk.error
            job_update = self._chunk_delta(before, chunk.status, usage)
            try:
                self.client.transact_write_items(TransactItems=[
                    {"Put": {"TableName": self.table, "Item": _dump(item), **put.kwargs(condition)}},
                    {"Update": {"TableName": self.table, "Key": _dump(_job_key(job)),
                                **job_update.kwargs(f"attribute_exists({job_update.name('pk')})")}},
                ])
                return
            except ClientError as e:
                reasons = [r.get("Code") for r in e.response.get("CancellationReasons", [])]
                if _code(e) != "TransactionCanceledException" or len(reasons) != 2:
                    raise
                if reasons[1] == "ConditionalCheckFailed":
                    raise NotFound(f"no job {job}") from e
                # The chunk changed since it was read (a concurrent record of the same chunk), or
                # another transaction held the job item: read again and recompute the delta.
                if attempt == _ATTEMPTS - 1 or not set(reasons) & {"ConditionalCheckFailed", "TransactionConflict"}:
                    raise
                _backoff(attempt)

    def record_usage(self, job_id: str, stage: Stage, usage: LlmUsage, part: str = "") -> None:
        job = _job_id(job_id)
        u = _Update()
        u.set(("usage", f"{stage.value}#{part}"), usage.model_dump())
        u.set(("updated_at",), _now())
        self._update_job(job, u, f"attribute_exists({u.name('pk')})")

    def set_stage(self, job_id: str, stage: Stage, counts: dict[str, object] | None = None) -> None:
        def fill(u: _Update) -> None:
            u.set(("stage",), stage.value)
            for name, value in (counts or {}).items():
                u.set(("counts", name), value)

        self._update_unfinished(_job_id(job_id), fill, STAGE_PROGRESS[stage])

    def wait_for_batch(self, job_id: str, batch_id: str | None) -> None:
        job = _job_id(job_id)
        u = _Update()
        u.set(("status",), (JobStatus.WAITING if batch_id else JobStatus.RUNNING).value)
        if batch_id:
            u.set(("batch_id",), batch_id)
        u.set(("updated_at",), _now())
        self._conditional(job, u, f"attribute_exists({u.name('pk')}) AND {_status_in(u, _UNFINISHED)}")

    def finish(
        self, job_id: str, status: JobStatus, counts: dict[str, object] | None = None, error: str | None = None
    ) -> bool:
        if not status.finished:
            raise ValueError(f"a job ends SUCCEEDED, PARTIAL or FAILED, not {status}")
        job = _job_id(job_id)
        u = _Update()
        u.set(("status",), status.value)
        u.set(("stage",), Stage.FINALIZE.value)
        u.set(("progress",), 100)
        u.set(("updated_at",), _now())
        for name, value in (counts or {}).items():
            u.set(("counts", name), value)
        if error is None:
            u.remove(("error",))
        else:
            u.set(("error",), error)
        u.remove(("lease_owner",))
        u.remove(("lease_until",))
        condition = f"attribute_exists({u.name('pk')}) AND {_status_in(u, _NOT_ENDED)}"
        try:
            self._update_job(job, u, condition, return_old=True)
            return True
        except ClientError as e:
            if _code(e) != "ConditionalCheckFailedException":
                raise
            if "Item" not in e.response:
                raise NotFound(f"no job {job}") from e
            # The same status again is a retried finalize whose first attempt got through.
            return _load(e.response["Item"])["status"] == status.value

    def get(self, job_id: str, with_chunks: bool = True) -> JobRecord:
        job = _job_id(job_id)
        found = self.client.get_item(TableName=self.table, Key=_dump(_job_key(job)), ConsistentRead=True).get("Item")
        if found is None:
            raise NotFound(f"no job {job_id}")
        item = _load(found)
        return _record(item, self._chunks(job, item["chunks_total"]) if with_chunks else [])

    def list_jobs(self, limit: int = 20) -> list[JobRecord]:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] = {}
        # A query page ends at 1 MB as well as at Limit: a long list of large job items takes pages.
        while len(items) < limit:
            page = self.client.query(
                TableName=self.table, IndexName=GSI_NAME, KeyConditionExpression="gsi1pk = :job",
                ExpressionAttributeValues={":job": {"S": "JOB"}}, ScanIndexForward=False,
                Limit=limit - len(items), **start,
            )
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        return [_record(_load(item), []) for item in items]

    # -- internals ----------------------------------------------------------------------------

    def _chunk_delta(self, before: dict | None, status: ChunkStatus, usage: LlmUsage) -> _Update:
        """The job item's update for one chunk going from `before` to (`status`, `usage`)."""
        old_status = ChunkStatus(before["status"]) if before else ChunkStatus.PENDING
        old_usage = LlmUsage.model_validate(before["llm"]) if before else LlmUsage()
        u = _Update()
        u.add(("chunks_done",), int(status != ChunkStatus.PENDING) - int(old_status != ChunkStatus.PENDING))
        u.add(("chunks_failed",), int(status in _FAILED) - int(old_status in _FAILED))
        spent = usage.since(old_usage)
        for field in _USAGE_FIELDS:
            u.add((f"extract_{field}",), getattr(spent, field))
        u.set(("updated_at",), _now())
        return u

    def _update_unfinished(self, job: str, fill: Callable[[_Update], None], progress: int) -> None:
        """Apply `fill` to a job still QUEUED or RUNNING (a finished job is left alone), raising its
        progress to `progress` unless it is already further."""
        for raise_progress in (True, False):
            u = _Update()
            fill(u)
            u.set(("updated_at",), _now())
            status = u.name("status")
            condition = (f"attribute_exists({u.name('pk')}) AND {status} IN "
                         f"({', '.join(u.value(s) for s in _UNFINISHED)})")
            if raise_progress:
                # DynamoDB has no max(): progress is set on the condition that it does not go back.
                u.set(("progress",), progress)
                condition += f" AND {u.name('progress')} <= {u.value(progress)}"
            try:
                self._update_job(job, u, condition, return_old=True)
                return
            except ClientError as e:
                if _code(e) != "ConditionalCheckFailedException":
                    raise
                old = e.response.get("Item")
                if old is None:
                    raise NotFound(f"no job {job}") from e
                if _load(old)["status"] not in _UNFINISHED:
                    return

    def _conditional(self, job: str, u: _Update, condition: str) -> bool:
        """Apply `u` if `condition` holds: False when it did not; NotFound when there is no such job."""
        try:
            self._update_job(job, u, condition, return_old=True)
            return True
        except ClientError as e:
            if _code(e) != "ConditionalCheckFailedException":
                raise
            if "Item" not in e.response:
                raise NotFound(f"no job {job}") from e
            return False

    def _update_job(self, job: str, u: _Update, condition: str, return_old: bool = False) -> None:
        extra = {"ReturnValuesOnConditionCheckFailure": "ALL_OLD"} if return_old else {}
        try:
            self._call(self.client.update_item, TableName=self.table, Key=_dump(_job_key(job)),
                       **u.kwargs(condition), **extra)
        except ClientError as e:
            if _code(e) == "ConditionalCheckFailedException" and not return_old:
                raise NotFound(f"no job {job}") from e
            raise

    def _call(self, operation: Callable[..., Any], **kwargs: Any) -> Any:
        """A plain write that meets a record_chunk transaction on the same item fails with
        TransactionConflictException, which botocore does not retry."""
        for attempt in range(_ATTEMPTS):
            try:
                return operation(**kwargs)
            except ClientError as e:
                if _code(e) != "TransactionConflictException" or attempt == _ATTEMPTS - 1:
                    raise
                _backoff(attempt)

    def _chunks(self, job: str, total: int) -> list[ChunkState]:
        recorded: dict[int, ChunkState] = {}
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table, ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :chunk)",
            ExpressionAttributeValues={":pk": {"S": f"JOB#{job}"}, ":chunk": {"S": "CHUNK#"}},
        )
        for page in pages:
            for found in page["Items"]:
                item = _load(found)
                recorded[item["index"]] = ChunkState.model_validate(item)
        indexes = sorted(set(range(total)) | set(recorded))
        return [recorded.get(i, ChunkState(index=i, status=ChunkStatus.PENDING)) for i in indexes]


class _Update:
    """An update and its condition, every attribute name and value behind a placeholder (DynamoDB
    reserves words such as status, and counts' keys are arbitrary)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.clauses: dict[str, list[str]] = {"SET": [], "ADD": [], "REMOVE": []}

    def name(self, *path: str) -> str:
        placeholders = []
        for part in path:
            placeholder = next((p for p, n in self.names.items() if n == part), f"#n{len(self.names)}")
            self.names[placeholder] = part
            placeholders.append(placeholder)
        return ".".join(placeholders)

    def value(self, value: object) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _serializer.serialize(_to_dynamo(value))
        return placeholder

    def set(self, path: tuple[str, ...], value: object) -> None:
        self.clauses["SET"].append(f"{self.name(*path)} = {self.value(value)}")

    def add(self, path: tuple[str, ...], value: int | float) -> None:
        self.clauses["ADD"].append(f"{self.name(*path)} {self.value(value)}")

    def remove(self, path: tuple[str, ...]) -> None:
        self.clauses["REMOVE"].append(self.name(*path))

    def kwargs(self, condition: str) -> dict[str, Any]:
        """Call arguments; the update expression is left out when there is none (a Put's condition)."""
        expression = " ".join(f"{verb} {', '.join(parts)}" for verb, parts in self.clauses.items() if parts)
        kwargs: dict[str, Any] = {"ConditionExpression": condition}
        if self.names:
            kwargs["ExpressionAttributeNames"] = self.names
        if expression:
            kwargs["UpdateExpression"] = expression
        if self.values:
            kwargs["ExpressionAttributeValues"] = self.values
        return kwargs


def _status_in(u: _Update, statuses: tuple[str, ...]) -> str:
    return f"{u.name('status')} IN ({', '.join(u.value(s) for s in statuses)})"


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _record(item: Mapping[str, Any], chunks: list[ChunkState]) -> JobRecord:
    by_stage = {Stage.EXTRACT.value: LlmUsage(**{f: item.get(f"extract_{f}", 0) for f in _USAGE_FIELDS})}
    for key, usage in sorted(item["usage"].items()):
        stage = key.split("#", 1)[0]
        by_stage[stage] = by_stage.get(stage, LlmUsage()).add(LlmUsage.model_validate(usage))
    by_stage = {stage: usage for stage, usage in by_stage.items() if usage != LlmUsage()}
    total = LlmUsage()
    for usage in by_stage.values():
        total = total.add(usage)
    done, chunks_total = item["chunks_done"], item["chunks_total"]
    status, until = item["status"], item.get("lease_until")
    if status in _UNFINISHED and until is not None and until < time.time():
        status = JobStatus.INTERRUPTED.value  # its process stopped renewing: it died
    return JobRecord(
        job_id=item["job_id"],
        source=item["source"],
        document_id=item.get("document_id"),
        status=status,
        stage=item["stage"],
        # Extraction's progress follows from the counters (ADD cannot also raise a stored maximum).
        progress=max(item["progress"], extract_progress(done, chunks_total) if chunks_total else 0),
        chunks_total=chunks_total,
        chunks_done=done,
        chunks_failed=item["chunks_failed"],
        counts=item["counts"],
        llm=total,
        llm_by_stage=by_stage,
        error=item.get("error"),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
        chunks=chunks,
        lease_owner=item.get("lease_owner"),
        lease_until=_moment(until),
        batch_id=item.get("batch_id"),
    )


def _job_id(job_id: str) -> str:
    """The canonical form of a job id, as the Postgres ledger returns it."""
    try:
        return str(uuid.UUID(job_id))
    except ValueError as e:
        raise NotFound(f"no job {job_id!r}: a job id is a UUID") from e


def _job_key(job: str) -> dict[str, str]:
    return {"pk": f"JOB#{job}", "sk": "JOB"}


def _now() -> str:
    # Fixed width, so that the GSI's string order is time order.
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))


def _to_dynamo(value: Any) -> Any:
    """DynamoDB numbers are Decimals; floats go through their shortest repr (0.1 stays 0.1)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def _dump(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in item.items()}


def _load(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}
