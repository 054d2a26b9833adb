"""Turning raw bytes into a validated document: the one check every entry point uses."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

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


def read_document_bytes(path: Path, max_bytes: int) -> bytes:
    """The bytes of the file at `path`, refused (InvalidInput) past `max_bytes`.

    The file's reported size is not trusted: a character device (/dev/zero), a FIFO or a /proc file
    reports 0 or nothing useful. At most `max_bytes + 1` bytes are read, whatever the file: one more
    than the limit is enough to know it is over."""
    if not path.exists():
        raise InvalidInput(f"{path}: no such file")
    if path.is_dir():
        raise InvalidInput(f"{path}: is a directory; give the files to ingest")
    try:
        with path.open("rb") as file:
            size = _regular_size(file)
            if size is not None and size > max_bytes:  # known before reading: say how large it is
                raise InvalidInput(f"{path}: {size:,} bytes is over the limit of {max_bytes:,} (KG_MAX_DOCUMENT_BYTES)")
            chunks, remaining = [], max_bytes + 1
            while remaining > 0:  # a pipe or a device gives fewer bytes than asked per read
                chunk = file.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
    except OSError as e:
        raise InvalidInput(f"{path}: cannot be read ({e.strerror or e})") from None
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise InvalidInput(f"{path}: more than {max_bytes:,} bytes, over the limit (KG_MAX_DOCUMENT_BYTES)")
    return data


def _regular_size(file: BinaryIO) -> int | None:
    """The size of an open regular file; None for anything else (its size says nothing)."""
    status = os.fstat(file.fileno())
    return status.st_size if stat.S_ISREG(status.st_mode) else None


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
