"""Turning raw bytes into a validated document: the one check every entry point uses."""

from __future__ import annotations

from datetime import UTC, datetime

from kg.errors import InvalidInput
from kg.models import DocumentInput


def parse_source_date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"--source-date {value!r} is not an ISO-8601 date or date-time (e.g. 2024-05-01)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def decode_document(
    data: bytes,
    source: str,
    max_bytes: int,
    source_type: str = "text",
    source_date: datetime | None = None,
) -> DocumentInput:
    if len(data) > max_bytes:
        raise InvalidInput(f"{source}: {len(data):,} bytes is over the limit of {max_bytes:,} (KG_MAX_DOCUMENT_BYTES)")
    if b"\x00" in data:
        raise InvalidInput(f"{source}: not text (it contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{source}: not UTF-8 text (invalid byte at offset {e.start})") from None
    if not text.strip():
        raise InvalidInput(f"{source}: the document is empty")
    if not source.strip():
        raise InvalidInput("the source name is empty")
    return DocumentInput(text=text, source=source, source_type=source_type or "text", source_date=source_date)
