"""The BlobStore contract, for every implementation: bytes back as put, NotFound, prefix deletion."""

from __future__ import annotations

import pytest

from kg.blobs import BlobStore, chunk_key, get_optional, job_prefix, result_key
from kg.blobs.s3 import S3BlobStore
from kg.errors import NotFound

JOB = "5b0f4a52-7f4e-4d4f-9a4e-2f1d8c0c9a11"


def test_a_blob_comes_back_byte_for_byte(blob_store: BlobStore):
    data = bytes(range(256)) + "«triples» €".encode()
    blob_store.put(chunk_key(JOB, 0), data)
    assert blob_store.get(chunk_key(JOB, 0)) == data


def test_an_empty_blob_is_a_blob(blob_store: BlobStore):
    blob_store.put("errors/x/empty.txt", b"")
    assert blob_store.get("errors/x/empty.txt") == b""


def test_putting_a_key_again_replaces_its_blob(blob_store: BlobStore):
    blob_store.put(result_key(JOB, 3), b"first")
    blob_store.put(result_key(JOB, 3), b"second")
    assert blob_store.get(result_key(JOB, 3)) == b"second"


def test_getting_a_missing_key_raises_not_found(blob_store: BlobStore):
    blob_store.put(chunk_key(JOB, 0), b"x")
    with pytest.raises(NotFound):
        blob_store.get(chunk_key(JOB, 1))


def test_a_blob_exists_once_put_and_no_longer_once_deleted(blob_store: BlobStore):
    # get_optional is how the stages ask whether a step already left its result.
    assert get_optional(blob_store, result_key(JOB, 0)) is None
    blob_store.put(result_key(JOB, 0), b"{}")
    assert get_optional(blob_store, result_key(JOB, 0)) == b"{}"
    blob_store.delete_prefix(job_prefix(JOB))
    assert get_optional(blob_store, result_key(JOB, 0)) is None


def test_delete_prefix_removes_the_keys_under_it_and_no_others(blob_store: BlobStore):
    other = JOB[:-1] + "2"
    kept = {chunk_key(other, 0): b"other job", f"jobs/{JOB}x/a.json": b"same first characters",
            f"errors/{JOB}/extract.txt": b"kept after the job"}
    for key, data in kept.items():
        blob_store.put(key, data)
    blob_store.put(chunk_key(JOB, 0), b"a")
    blob_store.put(result_key(JOB, 0), b"b")
    blob_store.delete_prefix(job_prefix(JOB))
    for key in (chunk_key(JOB, 0), result_key(JOB, 0)):
        with pytest.raises(NotFound):
            blob_store.get(key)
    assert {key: blob_store.get(key) for key in kept} == kept


def test_delete_prefix_without_a_trailing_slash_still_means_that_folder(blob_store: BlobStore):
    blob_store.put("jobs/1/a.json", b"a")
    blob_store.put("jobs/10/a.json", b"b")
    blob_store.delete_prefix("jobs/1")
    with pytest.raises(NotFound):
        blob_store.get("jobs/1/a.json")
    assert blob_store.get("jobs/10/a.json") == b"b"


def test_delete_prefix_removes_more_keys_than_one_delete_call_takes(blob_store: BlobStore):
    count = 1_005  # S3 lists and deletes at most 1,000 keys per call
    for index in range(count):
        blob_store.put(chunk_key(JOB, index), b"x")
    blob_store.delete_prefix(job_prefix(JOB))
    for index in (0, 999, 1_000, count - 1):
        with pytest.raises(NotFound):
            blob_store.get(chunk_key(JOB, index))


def test_delete_prefix_with_nothing_under_it_does_nothing(blob_store: BlobStore):
    blob_store.put(chunk_key(JOB, 0), b"a")
    blob_store.delete_prefix(job_prefix(JOB[:-1] + "2"))
    assert blob_store.get(chunk_key(JOB, 0)) == b"a"


def test_s3_keys_sit_under_the_store_prefix(s3_blob_store: S3BlobStore):
    s3_blob_store.put(chunk_key(JOB, 0), b"a")
    listed = s3_blob_store.client.list_objects_v2(Bucket=s3_blob_store.bucket)["Contents"]
    assert [obj["Key"] for obj in listed] == [f"store/{chunk_key(JOB, 0)}"]
