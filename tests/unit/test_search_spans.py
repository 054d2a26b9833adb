"""The names of a hit found in its chunk (kg.search.supporting_span): the fast paths give exactly
the matches of the plain pattern, a look-behind, the name's words ignoring case joined by \\s+, and
a look-ahead, found with finditer."""

from __future__ import annotations

import random
import re

import pytest

from kg.search import _name_spans, supporting_span


def plain(name: str, text: str) -> list[tuple[int, int]]:
    """The pattern as first written: what every path must find."""
    pattern = re.compile(r"(?<!\w)" + r"\s+".join(re.escape(part) for part in name.split()) + r"(?!\w)",
                         re.IGNORECASE)
    return [m.span() for m in pattern.finditer(text)]


def spans(name: str, text: str) -> list[tuple[int, int]]:
    return list(_name_spans(name, text, text.lower() if text.isascii() else None))


# Letters in both cases, word and non-word neighbours, every kind of ASCII space, and characters
# whose case folding is not ASCII's (the Kelvin sign matches k, the long s matches s).
ASCII = "aAbBkKsS _-.(1\n\t\x0b\x1c"
UNICODE = ASCII + "\u212a\u017f\u0130\u0131é"


@pytest.mark.parametrize("alphabet", [ASCII, UNICODE])
def test_every_path_finds_what_the_plain_pattern_finds(alphabet):
    rng = random.Random(7)
    for _ in range(30_000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5)))
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        if name.split():
            assert spans(name, text) == plain(name, text), (name, text)


def test_names_are_found_across_case_and_spacing_and_not_inside_words():
    text = "Marie  CURIE, not mariecurie; marie\ncurie_x nor xmarie curie. marie curie!"
    assert spans("Marie Curie", text) == plain("Marie Curie", text) == [(0, 12), (62, 73)]
    assert spans("Curie", "Pierre Curie") == [(7, 12)]


def test_a_non_ascii_chunk_is_searched_by_the_pattern():
    text = "Kelvin: \u212aelvin met Marie Curie in Łódź."
    assert spans("kelvin", text) == plain("kelvin", text) == [(0, 6), (8, 14)]
    assert supporting_span(text, "Marie Curie", "Łódź") == (0, len(text))
