"""The LLM response cache in S3 (AWS engine): one content-addressed object per key.

`<prefix><key[:2]>/<key>.json` holds the CachedResponse as JSON; the two-character folder spreads
keys over S3's partitions. A conditional put (If-None-Match: *) keeps the first response stored.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
from botocore.exceptions import ClientError

from kg.llm.cache import CachedResponse

_WORKERS = 8  # a chunk looks up a handful of keys; more threads buy nothing
# 412: the key exists already; 409: another writer's conditional put of the key is in flight.
_ALREADY_STORED = ("PreconditionFailed", "ConditionalRequestConflict")

T = TypeVar("T")
R = TypeVar("R")


class S3LlmCache:
    def __init__(self, bucket: str, prefix: str = "llm-cache/", client: Any = None):
        self.bucket = bucket
        self.prefix = prefix
        self.client = client or boto3.client("s3")

    def object_key(self, key: str) -> str:
        return f"{self.prefix}{key[:2]}/{key}.json"

    def get_many(self, keys: Collection[str]) -> dict[str, CachedResponse]:
        found = _each(self._get, set(keys))
        return {key: response for key, response in found if response is not None}

    def put_many(self, responses: Mapping[str, CachedResponse]) -> None:
        _each(self._put, responses.items())

    def _get(self, key: str) -> tuple[str, CachedResponse | None]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return key, None
            raise
        return key, CachedResponse.model_validate_json(body)

    def _put(self, entry: tuple[str, CachedResponse]) -> None:
        key, response = entry
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), IfNoneMatch="*",
                                   Body=response.model_dump_json().encode(), ContentType="application/json")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in _ALREADY_STORED:
                raise


def _each(call: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`call` over `items` on a few threads (boto3 clients are thread-safe); one item runs inline."""
    items = list(items)
    if len(items) <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(items))) as pool:
        return list(pool.map(call, items))
