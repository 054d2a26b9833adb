"""Querying the graph: fusion search over four ranked lists, concept search, neighbourhoods.

The request and response models are the payloads of every edge (the `kg` commands, and the MCP
tools and HTTP routes that serve the same functions), so that what an edge advertises is what it
validates. The store finds candidates (`GraphStore.match`, `triples_of`, ...); this module ranks
and fuses them.

Fusion search: four lists, each of triples, each ranked from two halves of one kind of element:
its cosine nearest neighbours (HNSW) and its lexical matches (trigrams), merged by reciprocal rank.

- entity: nodes near the query; their triples (as subject or object), nearest statements first;
- relationship: relations (predicates) near the query; their triples;
- semantic: triple statements near the query;
- concept: concepts near the query; the triples of the elements under them nearest the query.

The lists are merged by weighted reciprocal-rank fusion: score = sum over lists of
weight / (60 + rank). Every similarity is cosine, and the query is embedded by the model the store
was built with, or refused.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, time as day_time
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from kg.embeddings import Embedder
from kg.errors import InvalidInput, StoreMismatch
from kg.graph import GraphStore, Match, MatchQuery, TripleFilter, TripleMatch
from kg.models import ConceptLevel, NodeKind, TripleType
from kg.normalize import normalise

RRF_K = 60  # the usual constant of reciprocal-rank fusion (Cormack et al.): rank 1 is not everything
MAX_QUERY_CHARS = 2000
SearchList = Literal["entity", "relationship", "semantic", "concept"]
SEARCH_LISTS: tuple[SearchList, ...] = ("entity", "relationship", "semantic", "concept")

# How deep each list goes, per request: elements taken from each half, the elements whose triples
# make a list, the members of each concept, and the triples a list holds at least.
CANDIDATES = 20
ELEMENTS = 10
CONCEPTS = 5
MEMBERS = 10  # per concept: the list reaches CONCEPTS * MEMBERS elements, those nearest the query
MIN_LIST_DEPTH = 30
MAX_PROVENANCE = 3
# A nearest-neighbour search always answers, even when nothing is near: without a floor, every list
# holds the whole of a small graph, and a triple gains more from being in one more list at any rank
# than from being first. With sentence-embedding models unrelated short texts have cosine 0 to 0.3.
DEFAULT_THRESHOLD = 0.3

# Words that say nothing about which element is meant: a lexical term is any other word of three
# letters or more.
STOPWORDS = frozenset("""
    about above after again against all also among and any are aren because been before being below between
    both but can cannot could did didn does doesn doing done down during each either else ever every few for
    from further had has have having her here hers herself him himself his how however into isn its itself
    just least less let like made make many may might more most much must near neither nor not now off once
    one only onto other ought our ours ourselves out over own per rather same shall she should since some
    such than that the their theirs them themselves then there these they this those though through thus
    till too under until upon very via was wasn were weren what whatever when where whether which while who
    whom whose why will with within without would yet you your yours yourself yourselves
""".split())
MAX_TERMS = 12


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


def _query(value: str) -> str:
    value = _no_nul(value).strip()
    if not value:
        raise ValueError("the query is empty")
    if len(value) > MAX_QUERY_CHARS:
        raise ValueError(f"the query has {len(value):,} characters; at most {MAX_QUERY_CHARS:,} are allowed")
    return value


Query = Annotated[str, AfterValidator(_query)]


def _node(value: str) -> str:
    value = _no_nul(value).strip()
    if not value:
        raise ValueError("the node name is empty")
    return value


def _bound(end_of_day: bool) -> Callable[[Any], Any]:
    """A date alone covers its whole day (UTC); a date-time without a zone is UTC."""

    def parse(value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            value = date.fromisoformat(value.strip())
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, day_time.max if end_of_day else day_time.min)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    return parse


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchWeights(_Request):
    """The weight of each list in the fusion; a list of weight 0 is not searched."""

    entity: float = Field(default=0.3, ge=0.0, le=1.0)
    relationship: float = Field(default=0.2, ge=0.0, le=1.0)
    semantic: float = Field(default=0.3, ge=0.0, le=1.0)
    concept: float = Field(default=0.2, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _some_list(self) -> SearchWeights:
        if not any(getattr(self, name) for name in SEARCH_LISTS):
            raise ValueError("at least one weight must be above 0")
        return self


class SearchRequest(_Request):
    query: Query = Field(description="What to look for, in words (at most 2,000 characters).")
    limit: int = Field(default=10, ge=1, le=100, description="How many triples to return.")
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0.0, le=1.0,
                             description="The least cosine similarity between the query and what matched "
                                         "(the statement, an end, the predicate or a concept); 0: none.")
    types: list[TripleType] | None = Field(default=None, max_length=4, description="Only triples of these types.")
    sources: list[Text] | None = Field(default=None, max_length=100,
                                       description="Only triples supported by one of these documents (by source).")
    source_types: list[Text] | None = Field(default=None, max_length=20,
                                            description="Only triples supported by a document of these types.")
    date_from: Annotated[datetime | None, BeforeValidator(_bound(False))] = Field(
        default=None, description="Only triples supported by a document dated on or after this (source date).")
    date_to: Annotated[datetime | None, BeforeValidator(_bound(True))] = Field(
        default=None, description="Only triples supported by a document dated on or before this (a date alone: "
                                  "its whole day).")
    search_types: list[SearchList] = Field(default_factory=lambda: list(SEARCH_LISTS), min_length=1,
                                           description="The lists to search and fuse.")
    weights: SearchWeights = Field(default_factory=SearchWeights)

    @model_validator(mode="after")
    def _consistent(self) -> SearchRequest:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        if not any(getattr(self.weights, name) for name in self.search_types):
            raise ValueError("every list in search_types has weight 0")
        return self

    def filters(self) -> TripleFilter:
        return TripleFilter(
            types=tuple(t.value for t in self.types) if self.types else None,
            sources=tuple(self.sources) if self.sources else None,
            source_types=tuple(self.source_types) if self.source_types else None,
            date_from=self.date_from, date_to=self.date_to,
        )


class ListRanks(BaseModel):
    """A hit's rank in each list (1 is first); None where the list did not find it."""

    entity: int | None = None
    relationship: int | None = None
    semantic: int | None = None
    concept: int | None = None


class SourceSpan(BaseModel):
    """A chunk that supports a hit, and the part of it that says so: the sentence that names the
    subject and the object (or one of them), as offsets into the document and as text."""

    source: str
    source_type: str
    source_date: datetime | None
    document_id: str
    chunk_index: int
    start: int
    end: int
    text: str


class SearchHit(BaseModel):
    id: str
    subject: str
    predicate: str
    object: str
    type: TripleType
    score: float = Field(description="The weighted reciprocal-rank fusion score (higher is better).")
    ranks: ListRanks
    similarity: float = Field(description="The best cosine similarity of the query with what matched.")
    confidence: float
    sources: list[SourceSpan]
    source_count: int = Field(description="Chunks supporting the triple (sources lists at most 3).")


class SearchResponse(BaseModel):
    query: str
    hits: list[SearchHit]
    embedding_model: str
    took_ms: float


class ConceptRequest(_Request):
    query: Query = Field(description="The idea to look for (at most 2,000 characters).")
    level: ConceptLevel | None = Field(default=None, description="Only concepts of this abstraction level.")
    limit: int = Field(default=10, ge=1, le=100, description="How many concepts to return.")
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0.0, le=1.0,
                             description="The least cosine similarity to the query; 0: none.")
    members: int = Field(default=20, ge=1, le=100, description="Elements listed per concept (most confident first).")


class ConceptElementRef(BaseModel):
    id: str
    kind: str  # entity, event, emotion or relation
    name: str
    confidence: float


class ConceptHit(BaseModel):
    id: str
    name: str
    level: ConceptLevel
    score: float
    similarity: float
    vector_rank: int | None
    lexical_rank: int | None
    element_count: int
    elements: list[ConceptElementRef]


class ConceptResponse(BaseModel):
    query: str
    level: ConceptLevel | None
    concepts: list[ConceptHit]


class NeighborsRequest(_Request):
    node: Annotated[str, AfterValidator(_node)] = Field(max_length=500, description="A node's name, or its id.")
    hops: int = Field(default=1, ge=1, le=3)
    limit: int = Field(default=50, ge=1, le=500, description="At most this many triples.")
    types: list[TripleType] | None = Field(default=None, max_length=4, description="Only triples of these types.")
    kind: NodeKind | None = Field(default=None, description="Of the nodes with that name, only this kind.")


class NodeRef(BaseModel):
    id: str
    kind: str
    name: str
    hops: int


class NeighborTriple(BaseModel):
    id: str
    type: TripleType
    subject_id: str
    subject: str
    predicate: str
    object_id: str
    object: str
    confidence: float
    hop: int


class NeighborsResponse(BaseModel):
    node: str
    centres: list[NodeRef]
    nodes: list[NodeRef]
    triples: list[NeighborTriple]
    truncated: bool


RequestModel = TypeVar("RequestModel", bound=BaseModel)


def parse_request(model: type[RequestModel], **fields: Any) -> RequestModel:
    """A request from an edge's arguments; what breaks the model is InvalidInput, in one line."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        raise InvalidInput(describe_validation_error(e)) from None


def describe_validation_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


# -- pure parts: terms, reciprocal-rank fusion, supporting spans -----------------------------------


def query_terms(query: str) -> tuple[str, ...]:
    """The words of a query that can name something: normalised, three letters or more, no stopwords."""
    seen: dict[str, None] = {}
    for word in normalise(query).split():
        word = word.strip("'-&+")
        if len(word) >= 3 and word not in STOPWORDS:
            seen.setdefault(word, None)
    return tuple(seen)[:MAX_TERMS]


def reciprocal_rank(*ranks: int | None) -> float:
    """The sum of 1 / (RRF_K + rank) over the ranks that are not None."""
    return sum(1 / (RRF_K + r) for r in ranks if r is not None)


def rank_matches(matches: Iterable[Match]) -> list[Match]:
    """Elements found by the vector half and the lexical half of one kind, in one order: reciprocal
    rank over the two halves, then cosine similarity, then id (so equal scores order the same way)."""
    return sorted(matches, key=lambda m: (-reciprocal_rank(m.vector_rank, m.lexical_rank), -m.similarity, str(m.id)))


def fuse(lists: Mapping[SearchList, Sequence[uuid.UUID]], weights: SearchWeights) -> list[tuple[uuid.UUID, float, ListRanks]]:
    """Weighted reciprocal-rank fusion of ranked lists of triple ids: (id, score, ranks), best first;
    on equal scores the better best rank in any list first, then the id."""
    ranks: dict[uuid.UUID, dict[str, int]] = {}
    for name, ids in lists.items():
        for position, triple in enumerate(ids, start=1):
            ranks.setdefault(triple, {}).setdefault(name, position)
    scored = [(triple, sum(getattr(weights, name) / (RRF_K + rank) for name, rank in by_list.items()), by_list)
              for triple, by_list in ranks.items()]
    scored.sort(key=lambda f: (-f[1], min(f[2].values()), str(f[0])))
    return [(triple, score, ListRanks(**by_list)) for triple, score, by_list in scored]


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s)|\n\s*\n")
MAX_SPAN_CHARS = 400
_LOOK = 1000  # how far from a name its sentence's ends are looked for


def supporting_span(text: str, subject: str, obj: str) -> tuple[int, int]:
    """Where in a chunk `text` a triple is stated: the first sentence naming both its subject and its
    object, else the first naming either, else the chunk's start; at most MAX_SPAN_CHARS, around the
    names. Offsets into `text`; names are found ignoring case and spacing."""
    sentences: dict[int, list] = {}  # start -> [start, end, subject's place, object's place]
    folded = text.lower() if text.isascii() else None
    for slot, name in ((2, subject), (3, obj)):
        for span in _name_spans(name, text, folded):
            start, end = _sentence_around(text, span[0])
            entry = sentences.setdefault(start, [start, end, None, None])
            entry[slot] = entry[slot] or span
    if not sentences:
        return 0, min(len(text), MAX_SPAN_CHARS)
    both = [e for e in sentences.values() if e[2] and e[3]]
    s, e, *places = min(both or sentences.values(), key=lambda entry: entry[0])
    if e - s <= MAX_SPAN_CHARS:
        return s, e
    # A long sentence: a window of it around the names it contains.
    spots = [p for p in places if p]
    lo, hi = min(a for a, _ in spots), max(b for _, b in spots)
    if hi - lo >= MAX_SPAN_CHARS:
        return lo, lo + MAX_SPAN_CHARS
    start = max(s, lo - (MAX_SPAN_CHARS - (hi - lo)) // 2)
    end = min(e, start + MAX_SPAN_CHARS)
    return max(s, end - MAX_SPAN_CHARS), end


@functools.lru_cache(maxsize=4096)
def _name_pattern(name: str) -> re.Pattern[str]:
    """Where `name` is named: its words, ignoring case, separated by any spacing, not inside a
    longer word. The check that no word character comes before is made after the first character
    (the same test), so that the pattern starts with a literal the regex engine scans for: several
    times faster over a long chunk than a pattern that starts with the look-behind."""
    parts = name.split()
    if not parts:
        return re.compile(r"(?<!\w)(?!\w)", re.IGNORECASE)
    head = re.escape(parts[0][0]) + r"(?<!\w.)" + re.escape(parts[0][1:])
    return re.compile(r"\s+".join([head, *(re.escape(part) for part in parts[1:])]) + r"(?!\w)", re.IGNORECASE)


def _name_spans(name: str, text: str, folded: str | None) -> Iterator[tuple[int, int]]:
    """The spans _name_pattern(name).finditer(text) finds. When the name and the text are ASCII
    (`folded`: the text lowercased, the same offsets), matching ignoring case is comparing
    lowercase, \\w is a letter, a digit or "_" and \\s what str.isspace says: str.find jumps from
    one place the first word occurs to the next and the rest is checked there, without compiling a
    pattern (a search meets names it has not seen), left to right and without overlaps as finditer."""
    parts = name.split()
    if folded is None or not parts or not name.isascii():
        for m in _name_pattern(name).finditer(text):
            yield m.span()
        return
    words = [part.lower() for part in parts]
    first, size = words[0], len(text)
    at = folded.find(first)
    while at >= 0:
        end: int | None = at + len(first)
        if at and (text[at - 1].isalnum() or text[at - 1] == "_"):
            end = None
        for word in words[1:]:
            if end is None:
                break
            gap = end
            while end < size and text[end].isspace():
                end += 1
            end = end + len(word) if end > gap and folded.startswith(word, end) else None
        if end is not None and end < size and (text[end].isalnum() or text[end] == "_"):
            end = None
        if end is None:
            at = folded.find(first, at + 1)
        else:
            yield at, end
            at = folded.find(first, end)


def _sentence_around(text: str, at: int) -> tuple[int, int]:
    """The sentence containing position `at`, without its surrounding spaces (at most _LOOK either side)."""
    start = max(0, at - _LOOK)
    for boundary in _SENTENCE_END.finditer(text, start, at):
        start = boundary.end()
    boundary = _SENTENCE_END.search(text, at, at + _LOOK)
    end = min(len(text), at + _LOOK) if boundary is None else boundary.end() if text[boundary.start()] in ".!?" \
        else boundary.start()
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# -- the searches --------------------------------------------------------------------------------


def query_vector(query: str, embedder: Embedder, graph: GraphStore) -> np.ndarray:
    """The query embedded in the store's own space; a store built with another model is refused
    (its vectors and the query's would not be comparable)."""
    model, dimensions = graph.embedding_space()
    if (embedder.model, embedder.dimensions) != (model, dimensions):
        raise StoreMismatch(
            f"this graph was built with {model} ({dimensions} dimensions) and the query would be embedded with "
            f"{embedder.model} ({embedder.dimensions}): set the embedding settings the graph was built with "
            "(KG_EMBEDDING_PROVIDER, KG_EMBEDDING_MODEL, KG_EMBEDDING_DIMENSIONS)"
        )
    return np.asarray(embedder.embed([query]).vectors[0], dtype=np.float32)


RankedList = list[tuple[uuid.UUID, float]]  # triple ids best first, each with the similarity of what matched


# The lexical halves of the node and statement matches, made once for the entity and semantic lists
# (GraphStore.lexical_matches): (nodes, triples).
SharedLexical = Future[tuple[list[Match], list[Match]]]


def semantic_list(graph: GraphStore, query: MatchQuery, depth: int, lexical: SharedLexical | None = None
                  ) -> RankedList:
    """Triple statements near the query, and statements naming the query's entities."""
    query = replace(query, limit=depth)
    if lexical is None:
        matches = graph.match("triple", query)
    else:
        matches = _both_halves(graph.match("triple", query, lexical=False), lexical.result()[1])
    return [(m.id, m.similarity) for m in rank_matches(matches)]


def entity_list(graph: GraphStore, query: MatchQuery, depth: int, lexical: SharedLexical | None = None
                ) -> RankedList:
    """The triples of the nodes that match the query best (as subject or object)."""
    if lexical is None:
        matches = graph.match("node", query)
    else:
        matches = _both_halves(graph.match("node", query, lexical=False), lexical.result()[0])
    nodes = rank_matches(matches)[:ELEMENTS]
    reached = graph.triples_of([n.id for n in nodes], [], query.vector, query.filters, depth)
    return _by_element(reached, {n.id: (i, n.similarity) for i, n in enumerate(nodes)})


def relationship_list(graph: GraphStore, query: MatchQuery, depth: int) -> RankedList:
    """The triples of the relations (predicates) that match the query best."""
    relations = rank_matches(graph.match("relation", query))[:ELEMENTS]
    reached = graph.triples_of([], [r.id for r in relations], query.vector, query.filters, depth)
    return _by_element(reached, {r.id: (i, r.similarity) for i, r in enumerate(relations)})


def concept_list(graph: GraphStore, query: MatchQuery, depth: int) -> RankedList:
    """The triples of the elements nearest the query among those under the concepts that match it
    best. An element stands for its concept: its triples rank by the concept's rank, and what they
    matched is the concept."""
    concepts = {c.id: (i, c.similarity) for i, c in enumerate(rank_matches(graph.match("concept", query))[:CONCEPTS])}
    position: dict[uuid.UUID, tuple[int, float]] = {}
    relations: set[uuid.UUID] = set()
    for concept, member in graph.members_near(list(concepts), query.vector, CONCEPTS * MEMBERS):
        position[member.id] = min(position.get(member.id, concepts[concept]), concepts[concept])
        if member.kind == "relation":
            relations.add(member.id)
    reached = graph.triples_of([e for e in position if e not in relations], list(relations), query.vector,
                               query.filters, depth)
    return _by_element(reached, position)


def _both_halves(vector: list[Match], lexical: list[Match]) -> list[Match]:
    """One match per element from the two halves of a kind, as `match` gives them together: an
    element in both has both ranks (its similarity is the same in both)."""
    lexical_rank = {m.id: m.lexical_rank for m in lexical}
    merged = [m.model_copy(update={"lexical_rank": lexical_rank[m.id]}) if m.id in lexical_rank else m for m in vector]
    near = {m.id for m in vector}
    return merged + [m for m in lexical if m.id not in near]


LISTS: dict[SearchList, Callable[..., RankedList]] = {
    "entity": entity_list, "relationship": relationship_list, "semantic": semantic_list, "concept": concept_list,
}


# The lists of every search run on one pool of threads, made once: starting four threads for each
# search cost milliseconds on a busy machine. Threads start as needed, for up to 4 searches at once
# (four lists and the shared lexical matches each).
SEARCH_THREADS = 4 * (len(SEARCH_LISTS) + 1)
_pool: Executor | None = None
_pool_lock = threading.Lock()


def _executor() -> Executor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=SEARCH_THREADS, thread_name_prefix="search")
        return _pool


def _forget_pool() -> None:
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()  # a forked child has none of the parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


_SHARING: tuple[SearchList, ...] = ("entity", "semantic")  # the lists that take the shared lexical halves


def _in_session(make: Callable[[GraphStore, MatchQuery, int], RankedList], graph: GraphStore, query: MatchQuery,
                depth: int) -> RankedList:
    with graph.search_session():
        return make(graph, query, depth)


def search(request: SearchRequest, graph: GraphStore, embedder: Embedder) -> SearchResponse:
    """The `limit` triples that best answer the query: four ranked lists, fused by weighted
    reciprocal rank. The lists are searched at once (each on its own connection, all its
    statements in one transaction: GraphStore.search_session), since each is a few index scans
    that wait on the database."""
    started = time.perf_counter()
    query = MatchQuery(vector=query_vector(request.query, embedder, graph), text=normalise(request.query),
                       terms=query_terms(request.query), limit=CANDIDATES, threshold=request.threshold,
                       filters=request.filters())
    depth = max(MIN_LIST_DEPTH, 2 * request.limit)
    wanted = [name for name in SEARCH_LISTS if name in request.search_types and getattr(request.weights, name)]
    pool = _executor()
    # The entity and semantic lists both match node names by trigrams: done once, in a task of its
    # own submitted first, so that it has started before any task that waits for it (no deadlock
    # in a busy pool of threads). The two lists wait for it after their own nearest-neighbour
    # search, holding no connection while they wait (none in a small pool of connections).
    lexical = None
    if "entity" in wanted and "semantic" in wanted and query.terms:
        lexical = pool.submit(graph.lexical_matches, query, depth)
    futures = {name: pool.submit(LISTS[name], graph, query, depth, lexical) if lexical and name in _SHARING
               else pool.submit(_in_session, LISTS[name], graph, query, depth) for name in wanted}
    ranked = {name: future.result() for name, future in futures.items()}
    lists = {name: [triple for triple, _ in entries] for name, entries in ranked.items()}
    similarity: dict[uuid.UUID, float] = {}
    for entries in ranked.values():
        for triple, sim in entries:
            similarity[triple] = max(similarity.get(triple, -1.0), sim)

    fused = fuse(lists, request.weights)[: request.limit]
    found = graph.found_triples([triple for triple, _, _ in fused], MAX_PROVENANCE)
    hits = []
    for triple, score, ranks in fused:
        row = found.get(triple)
        if row is None:  # deleted between the two reads
            continue
        hits.append(SearchHit(
            id=str(triple), subject=row.subject, predicate=row.predicate, object=row.object, type=row.type,
            score=round(score, 6), ranks=ranks, similarity=round(similarity[triple], 4),
            confidence=round(row.confidence, 4), source_count=row.provenance_count,
            sources=[_span(p, row.subject, row.object) for p in row.provenance],
        ))
    model, _ = graph.embedding_space()
    return SearchResponse(query=request.query, hits=hits, embedding_model=model,
                          took_ms=round((time.perf_counter() - started) * 1000, 1))


def _by_element(reached: Iterable[TripleMatch], position: Mapping[uuid.UUID, tuple[int, float]]
                ) -> list[tuple[uuid.UUID, float]]:
    """Triples reached from ranked elements (element id -> (rank, similarity)), ordered by the best
    ranked element among their subject, predicate and object, then by how near their statement is
    to the query; each with its element's similarity (what matched was the element)."""
    ranked = []
    for t in reached:
        rank, sim = min(position[e] for e in (t.subject_id, t.relation_id, t.object_id) if e in position)
        ranked.append((rank, -t.similarity, str(t.id), t.id, sim))
    return [(t_id, sim) for *_, t_id, sim in sorted(ranked)]


def _span(p: Any, subject: str, obj: str) -> SourceSpan:
    start, end = supporting_span(p.chunk_text, subject, obj)
    return SourceSpan(source=p.source, source_type=p.source_type, source_date=p.source_date,
                      document_id=str(p.document_id), chunk_index=p.chunk_index,
                      start=p.chunk_start + start, end=p.chunk_start + end, text=p.chunk_text[start:end])


def search_concepts(request: ConceptRequest, graph: GraphStore, embedder: Embedder) -> ConceptResponse:
    """Concepts near the query (cosine kNN and trigram matches, fused by reciprocal rank), of one
    abstraction level when asked, each with the elements it covers."""
    vector = query_vector(request.query, embedder, graph)
    query = MatchQuery(vector=vector, text=normalise(request.query), terms=query_terms(request.query),
                       limit=max(CANDIDATES, request.limit), threshold=request.threshold, level=request.level)
    ranked = rank_matches(graph.match("concept", query))[: request.limit]
    members = graph.concept_members([c.id for c in ranked], request.members)
    concepts = []
    for c in ranked:
        entry = members.get(c.id)
        concepts.append(ConceptHit(
            id=str(c.id), name=c.name, level=c.level, score=round(reciprocal_rank(c.vector_rank, c.lexical_rank), 6),
            similarity=round(c.similarity, 4), vector_rank=c.vector_rank, lexical_rank=c.lexical_rank,
            element_count=entry.count if entry else 0,
            elements=[ConceptElementRef(id=str(m.id), kind=m.kind, name=m.name, confidence=round(m.confidence, 4))
                      for m in (entry.members if entry else [])],
        ))
    return ConceptResponse(query=request.query, level=request.level, concepts=concepts)


def neighbors(request: NeighborsRequest, graph: GraphStore) -> NeighborsResponse:
    """The triples within `hops` of a node, breadth first, exact up to `limit`."""
    found = graph.neighbourhood(request.node, request.hops, request.limit,
                                [t.value for t in request.types] if request.types else None, request.kind)

    def ref(n: Any) -> NodeRef:
        return NodeRef(id=str(n.id), kind=n.kind, name=n.name, hops=n.hops)

    return NeighborsResponse(
        node=request.node, centres=[ref(c) for c in found.centres], nodes=[ref(n) for n in found.nodes],
        truncated=found.truncated,
        triples=[NeighborTriple(id=str(t.id), type=t.type, subject_id=str(t.subject_id), subject=t.subject,
                                predicate=t.predicate, object_id=str(t.object_id), object=t.object,
                                confidence=round(t.confidence, 4), hop=t.hop) for t in found.triples],
    )
