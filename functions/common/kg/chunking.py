"""Token-bounded chunking with overlap, cut at paragraph, then sentence, then word boundaries.

Invariants (tested with hypothesis):
- `chunk.text == text[chunk.start_char:chunk.end_char]`, and together the chunks cover every character;
- every chunk has at most `max_tokens` tokens;
- consecutive chunks overlap by at most `overlap_tokens` tokens (and by some text, when there is room);
- a chunk ends at the end of a paragraph when one lies in the second half of its window, else at the
  end of a sentence, else after a word; only a text with no whitespace at all is cut mid-word.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from kg.models import Chunk
from kg.tokenizer import get_encoding

# A boundary is the position just after the whitespace that follows a paragraph, a sentence or a
# word, so that the whitespace stays with the chunk before it and the next chunk starts on text.
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+")
_WORD_END = re.compile(r"\s+")
# A heading ("== History ==", "## History") belongs with the paragraph after it, never at a chunk's end.
_HEADING = re.compile(r"\s*(=+[^=\n]+=+|#{1,6}\s.*)\s*")


def _boundaries(text: str, pattern: re.Pattern[str]) -> list[int]:
    return [m.end() for m in pattern.finditer(text) if 0 < m.end() < len(text)]


def _paragraph_boundaries(text: str) -> list[int]:
    positions = []
    for m in _PARAGRAPH_END.finditer(text):
        last_line = text[text.rfind("\n", 0, m.start()) + 1 : m.start()]
        if 0 < m.end() < len(text) and not _HEADING.fullmatch(last_line):
            positions.append(m.end())
    return positions


class _Boundaries:
    def __init__(self, text: str):
        self.levels: Sequence[list[int]] = (
            _paragraph_boundaries(text),
            _boundaries(text, _SENTENCE_END),
            _boundaries(text, _WORD_END),
        )

    def last_in(self, low: int, high: int, min_level_fill: int) -> int | None:
        """The best boundary in (low, high]: the latest paragraph end past `min_level_fill`, else the
        latest sentence end past it, else the latest word end anywhere in the window."""
        for level, positions in enumerate(self.levels):
            floor = low if level == len(self.levels) - 1 else min_level_fill
            i = bisect.bisect_right(positions, high) - 1
            if i >= 0 and positions[i] > max(low, floor):
                return positions[i]
        return None

    def first_in(self, low: int, high: int) -> int | None:
        """The earliest sentence (else word) boundary in [low, high)."""
        for positions in self.levels[1:]:
            i = bisect.bisect_left(positions, low)
            if i < len(positions) and positions[i] < high:
                return positions[i]
        return None


def chunk_text(
    text: str,
    document_id: str,
    max_tokens: int = 3000,
    overlap_tokens: int = 200,
    encoding: str = "o200k_base",
) -> list[Chunk]:
    if max_tokens < 1 or not 0 <= overlap_tokens < max_tokens:
        raise ValueError("need max_tokens >= 1 and 0 <= overlap_tokens < max_tokens")
    enc = get_encoding(encoding)

    def tokens_in(start: int, end: int) -> int:
        return len(enc.encode(text[start:end], disallowed_special=()))

    def make(index: int, start: int, end: int, tokens: int) -> Chunk:
        return Chunk(document_id=document_id, index=index, text=text[start:end],
                     start_char=start, end_char=end, tokens=tokens)

    tokens = enc.encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return [make(0, 0, len(text), len(tokens))]

    # Token start offsets of the whole text: a cheap, near-exact measure of any slice's length.
    # Each chunk is then encoded on its own to make the limit exact.
    _, starts = enc.decode_with_offsets(tokens)
    starts.append(len(text))
    boundaries = _Boundaries(text)

    def char_at_token(i: int) -> int:
        return starts[min(max(i, 0), len(starts) - 1)]

    def token_at_char(pos: int) -> int:
        return bisect.bisect_right(starts, pos) - 1

    chunks: list[Chunk] = []
    start = 0
    while True:
        first_token = token_at_char(start)
        budget = max_tokens
        while True:
            window_end = char_at_token(first_token + budget)
            if window_end >= len(text):
                end = len(text)
            else:
                half = char_at_token(first_token + budget // 2)
                end = boundaries.last_in(start, window_end, half) or window_end
            if end <= start:  # a single token wider than the budget cannot happen; guard progress anyway
                end = min(len(text), start + 1)
            count = tokens_in(start, end)
            if count <= max_tokens:
                break
            budget -= max(1, count - max_tokens)
        chunks.append(make(len(chunks), start, end, count))
        if end >= len(text):
            return chunks
        # The next chunk starts within the last `overlap_tokens` of this one, on a sentence if possible.
        overlap_start = char_at_token(token_at_char(end) - overlap_tokens)
        if overlap_start <= start:
            overlap_start = char_at_token(token_at_char(start) + 1)
        next_start = boundaries.first_in(overlap_start, end) or overlap_start
        start = next_start if overlap_tokens else end
