"""Folders for embedded PostgreSQL servers in tests.

pytest's temporary folders are 0700. Run as root, the embedded server runs as another user
(embedded_postgres), which cannot enter them, and kg refuses rather than open them up. A server's
folder is made here instead: a new folder under /tmp, opened for traversal only (0711), removed at
the end."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def server_folder(prefix: str = "kg-test-pg-") -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o711)  # its own folder: others may pass through, not list it
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
