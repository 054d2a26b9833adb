"""Decoding and validating a document before anything is planned."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kg.documents import decode_document, parse_source_date
from kg.errors import InvalidInput


def test_utf8_text_with_a_bom_is_accepted():
    doc = decode_document("Marie Curie discovered radium.".encode("utf-8-sig"), "a.txt", 1000)
    assert doc.text == "Marie Curie discovered radium."


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b" \n\t ", "empty"),
    (b"caf\xe9", "not UTF-8"),
    (b"abc\x00def", "NUL"),
    (b"x" * 1001, "over the limit"),
])
def test_unusable_bytes_are_invalid_input(data, message):
    with pytest.raises(InvalidInput, match=message):
        decode_document(data, "a.txt", 1000)


def test_source_dates_are_iso_8601_and_default_to_utc():
    assert parse_source_date("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_source_date("2024-05-01T10:00:00+02:00").utcoffset().total_seconds() == 7200
    assert parse_source_date(None) is None
    with pytest.raises(InvalidInput, match="ISO-8601"):
        parse_source_date("May 1st")
