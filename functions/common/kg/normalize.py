"""Normalisation and deterministic ids: the same fact found twice gets the same row."""

from __future__ import annotations

import functools
import re
import unicodedata
import uuid

_NAMESPACE = uuid.UUID("5b0e1f7e-3c1a-4f4e-9a55-6b1d2c0f7a10")
_LEADING_ARTICLE = re.compile(r"^(?:(?:the|a|an)\s+)+")  # all of them: normalising again changes nothing
_PUNCTUATION = re.compile(r"[^\w\s'&+-]")
_SPACE = re.compile(r"\s+")


@functools.lru_cache(maxsize=1 << 16)  # a document names the same things again and again (merge, ids)
def normalise(text: str) -> str:
    """Case, width, whitespace, punctuation and leading articles folded: 'The  Nobel Prize.' -> 'nobel prize'."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    folded = _SPACE.sub(" ", _PUNCTUATION.sub(" ", folded)).strip(" '-")
    return _LEADING_ARTICLE.sub("", folded) or folded


def clean_surface(text: str) -> str:
    """A display form: whitespace collapsed, nothing else changed."""
    return _SPACE.sub(" ", text).strip()


@functools.lru_cache(maxsize=1 << 16)
def node_id(kind: str, name: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"node|{kind}|{normalise(name)}")


@functools.lru_cache(maxsize=1 << 14)
def relation_id(predicate: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"relation|{normalise(predicate)}")


def triple_id(triple_type: str, subject: str, predicate: str, obj: str) -> uuid.UUID:
    return uuid.uuid5(
        _NAMESPACE, f"triple|{triple_type}|{normalise(subject)}|{normalise(predicate)}|{normalise(obj)}"
    )


def document_id(source: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"document|{source}")


def concept_id(level: str, phrase: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"concept|{level}|{normalise(phrase)}")
