"""The LlmCache contract, for every implementation: batched lookups, and the first response wins."""

from __future__ import annotations

from kg.llm.cache import CachedResponse, LlmCache, cache_key
from kg.llm.cache_s3 import S3LlmCache


def key(n: int) -> str:
    return cache_key("gpt-test", "v1", "json", "ENTITY_ENTITY", f"chunk text {n}")


def response(n: int) -> CachedResponse:
    return CachedResponse(model="gpt-test", content=f'{{"triples": [{n}], "note": "«é»"}}',
                          input_tokens=100 + n, output_tokens=n)


def test_get_many_returns_the_stored_keys_and_leaves_out_the_others(llm_cache: LlmCache):
    stored = {key(n): response(n) for n in range(20)}
    llm_cache.put_many(stored)
    missing = [key(n) for n in range(20, 25)]
    assert llm_cache.get_many([*stored, *missing]) == stored


def test_a_cached_response_keeps_every_field(llm_cache: LlmCache):
    llm_cache.put_many({key(1): response(1)})
    assert llm_cache.get_many([key(1)]) == {key(1): response(1)}


def test_a_key_stored_again_keeps_its_first_response(llm_cache: LlmCache):
    llm_cache.put_many({key(1): response(1)})
    llm_cache.put_many({key(1): response(2), key(3): response(3)})
    assert llm_cache.get_many([key(1), key(3)]) == {key(1): response(1), key(3): response(3)}


def test_empty_batches_store_and_find_nothing(llm_cache: LlmCache):
    llm_cache.put_many({})
    assert llm_cache.get_many([]) == {}
    assert llm_cache.get_many([key(1)]) == {}


def test_s3_stores_one_content_addressed_object_per_key(s3_llm_cache: S3LlmCache):
    s3_llm_cache.put_many({key(1): response(1)})
    stored = key(1)
    name = f"llm-cache/{stored[:2]}/{stored}.json"
    listed = s3_llm_cache.client.list_objects_v2(Bucket=s3_llm_cache.bucket)["Contents"]
    assert [obj["Key"] for obj in listed] == [name]
    body = s3_llm_cache.client.get_object(Bucket=s3_llm_cache.bucket, Key=name)["Body"].read()
    assert CachedResponse.model_validate_json(body) == response(1)
