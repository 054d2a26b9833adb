"""Decoding and validating a document before anything is planned."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kg.documents import decode_document, parse_source_date, read_document_bytes
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


def test_a_file_is_read_whole_up_to_the_limit(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"x" * 1000)
    (tmp_path / "b.txt").write_bytes(b"x" * 1001)
    assert read_document_bytes(tmp_path / "a.txt", 1000) == b"x" * 1000
    with pytest.raises(InvalidInput, match="1,001 bytes is over the limit of 1,000"):
        read_document_bytes(tmp_path / "b.txt", 1000)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="a system with /dev/zero")
def test_a_device_without_end_is_refused_after_reading_one_byte_past_the_limit():
    # /dev/zero reports a size of 0 and never ends: only a bounded read stops.
    with pytest.raises(InvalidInput, match="more than 1,000 bytes, over the limit"):
        read_document_bytes(Path("/dev/zero"), 1000)


def test_a_file_whose_size_says_nothing_is_read_as_it_comes(tmp_path):
    # /proc files report 0 bytes and hold text: the reported size is not the content's.
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("a system with /proc")
    assert status.stat().st_size == 0
    assert b"Name:" in read_document_bytes(status, 1_000_000)


@pytest.mark.parametrize("path, message", [("missing.txt", "no such file"), (".", "is a directory")])
def test_a_path_that_is_no_file_is_invalid_input(tmp_path, path, message):
    with pytest.raises(InvalidInput, match=message):
        read_document_bytes(tmp_path / path, 1000)
