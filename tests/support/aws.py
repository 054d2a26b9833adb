"""AWS resources for tests on moto, made exactly as the CDK stack makes them."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest

from kg.ledger.dynamodb import GSI_NAME, TTL_ATTRIBUTE

DUMMY_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def create_ledger_table(client: Any, name: str) -> None:
    """The ledger table: pk/sk, the jobs_by_created index (gsi1pk/gsi1sk, every attribute projected,
    as CDK's default) and TTL on expires_at (on chunk items only: job items have none)."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": GSI_NAME,
            "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                          {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    )
    client.update_time_to_live(TableName=name,
                               TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE})


def make_bucket(client: Any, name: str) -> None:
    """A bucket in the client's region (us-east-1, the dummy region, takes no location constraint)."""
    region = client.meta.region_name
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    client.create_bucket(Bucket=name, **location)


def serialize_moto_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's DynamoDB is not thread-safe: concurrent update_item ADDs get lost, and a cancelled
    transaction restores a deep copy of the whole table taken when it began, undoing other threads'
    writes. One re-entrant lock (a transaction calls update_item and put_item) over its writes."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()

    def locked(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return call

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        monkeypatch.setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))
