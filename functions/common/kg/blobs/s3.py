"""An S3 bucket as blob store (AWS engine)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

from kg.errors import NotFound

_DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


class S3BlobStore:
    def __init__(self, bucket: str, prefix: str = "", client: Any = None):
        self.bucket = bucket
        self.prefix = prefix
        self.client = client or boto3.client("s3")

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(f"no blob {key}") from e
            raise

    def delete_prefix(self, prefix: str) -> None:
        # A prefix is a folder, as in the folder store: "jobs/1" must not take "jobs/10/" with it.
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix, PaginationConfig={"PageSize": _DELETE_BATCH})
        for page in pages:
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if not keys:
                continue
            result = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
            if result.get("Errors"):
                first = result["Errors"][0]
                raise RuntimeError(f"could not delete {len(result['Errors'])} blobs under {prefix!r}, "
                                   f"first {first.get('Key')}: {first.get('Message')}")
