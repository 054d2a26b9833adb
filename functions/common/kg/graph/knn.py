"""Nearest neighbours in memory, for a deduplication pass over the whole graph.

Probing pgvector's HNSW index once per row costs a few milliseconds a row on a busy index (the
per-row lateral kNN runs one backend per core), so a pass over 100,000 triples spent about two
minutes in the probes alone (BENCHMARKS.md §6). A whole-graph pass reads every vector anyway: here
it reads them once by binary COPY into one float32 matrix, and finds each row's nearest neighbours
in batch with faiss, exactly (one blocked matrix product) on a small graph, or through an inverted
file index (IVF-Flat, inner product on unit vectors) above `EXACT_MAX_ROWS`. The pairs found are
only candidates: the store checks each one again in SQL with the same rules as its per-row probe
(same type, cosine by pgvector, the parts), so the threshold is applied by the same arithmetic.

faiss is imported only here, and only by a whole-graph pass: the per-document pass (the Lambda's)
never needs it. `available()` tells whether it is installed (the `local` extra).
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import psycopg

# Up to this many rows an exact search (faiss IndexFlatIP: blocked matrix products) costs little more
# than training and searching an IVF index, and it finds every neighbour (BENCHMARKS.md,
# "Deduplication in memory").
EXACT_MAX_ROWS = 10_000
# IVF cells: CELLS_PER_SQRT * sqrt(rows); each query scans NPROBE of them. A near-duplicate at cosine
# >= 0.85 almost always lies in one of its partner's few nearest cells; recall and time were measured
# on the planted graphs of bench/dedup_scale.py (BENCHMARKS.md, "Deduplication in memory").
CELLS_PER_SQRT = 4.0
NPROBE = 12
# k-means on a sample of this many rows per cell, for this many iterations: the cells only have to
# partition the space, not be the best clustering, and training is quadratic in the cell count.
TRAIN_ROWS_PER_CELL = 16
TRAIN_ITERATIONS = 6
# Queries are searched in slices of this many rows, so the result arrays stay small.
QUERY_BATCH = 16_384
# float32 inner products differ from pgvector's cosine in the last bits: keep candidates a little
# below the threshold; the store's SQL check decides.
SLACK = 1e-4

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_TRAILER = b"\xff\xff"


def available() -> bool:
    return importlib.util.find_spec("faiss") is not None


def read_vectors(conn: psycopg.Connection, query: str, dimensions: int) -> tuple[np.ndarray, np.ndarray]:
    """The ids (16-byte values) and unit-length vectors of `query` (SELECT <uuid>, <vector> ...),
    read by one binary COPY and decoded with numpy, without a Python object per row."""
    row = np.dtype([("fields", ">i2"), ("id_len", ">i4"), ("id", "V16"), ("vector_len", ">i4"), ("dim", ">i2"),
                    ("unused", ">i2"), ("vector", ">f4", (dimensions,))])
    ids: list[np.ndarray] = []
    vectors: list[np.ndarray] = []
    buffer = bytearray()
    header_done = False

    def decode(final: bool) -> None:
        nonlocal header_done
        if not header_done:
            if len(buffer) < 19:
                return
            if bytes(buffer[:11]) != _SIGNATURE or int.from_bytes(buffer[15:19], "big") != 0:
                raise RuntimeError("unexpected binary COPY header from PostgreSQL")
            del buffer[:19]
            header_done = True
        count = len(buffer) // row.itemsize
        if count:
            rows = np.frombuffer(buffer, row, count=count)
            if not ((rows["fields"] == 2).all() and (rows["id_len"] == 16).all()
                    and (rows["vector_len"] == 4 + 4 * dimensions).all() and (rows["dim"] == dimensions).all()):
                raise RuntimeError(f"unexpected row layout in the binary COPY of {dimensions}-dim vectors")
            ids.append(rows["id"].copy())
            vectors.append(rows["vector"].astype(np.float32))
            del rows  # the buffer cannot shrink while numpy holds a view of it
            del buffer[: count * row.itemsize]
        if final and bytes(buffer) != _TRAILER:
            raise RuntimeError("unexpected end of the binary COPY from PostgreSQL")

    with conn.cursor() as cur, cur.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy:
        for data in copy:
            buffer += data
            if len(buffer) >= 1 << 23:
                decode(final=False)
        decode(final=True)
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, dimensions), np.float32)
    vectors.clear()  # the pieces: the matrix is a copy, so they need not live as long as it
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)  # a zero vector has no cosine: it pairs with nothing
    return (np.concatenate(ids) if ids else np.zeros(0, "V16")), matrix


def pairs_payload(ids: np.ndarray, a: np.ndarray, b: np.ndarray) -> bytes:
    """A binary COPY of the rows (ids[a[i]], ids[b[i]]) into a (uuid, uuid) table."""
    row = np.dtype([("fields", ">i2"), ("a_len", ">i4"), ("a", "V16"), ("b_len", ">i4"), ("b", "V16")])
    rows = np.empty(len(a), row)
    rows["fields"], rows["a_len"], rows["b_len"] = 2, 16, 16
    rows["a"], rows["b"] = ids[a], ids[b]
    return _SIGNATURE + bytes(8) + rows.tobytes() + _TRAILER


def neighbour_rows(vectors: np.ndarray, neighbours: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(query row, neighbour row) for each row's `neighbours` nearest other rows (by inner product on
    unit vectors) whose similarity is at least `threshold` (less SLACK)."""
    import faiss  # only a whole-graph pass needs it (the `local` extra)

    n, dims = vectors.shape
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if n <= EXACT_MAX_ROWS:
        index = faiss.IndexFlatIP(dims)
    else:
        cells = max(1, int(CELLS_PER_SQRT * math.sqrt(n)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dims), dims, cells, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = TRAIN_ITERATIONS
        index.cp.max_points_per_centroid = TRAIN_ROWS_PER_CELL
        index.cp.min_points_per_centroid = 5  # faiss would warn on stderr below 39 rows per cell
        index.cp.spherical = True  # cells around unit centroids, as cosine wants
        index.cp.seed = 1234  # the same graph gives the same cells, hence the same pairs
        index.train(vectors)
        index.nprobe = min(NPROBE, cells)
    index.add(vectors)
    k = min(n, neighbours + 1)  # the row itself comes back too (as in the per-row probe's LIMIT)
    queries, found = [], []
    for start in range(0, n, QUERY_BATCH):
        similarity, rows = index.search(vectors[start: start + QUERY_BATCH], k)
        own = np.arange(start, start + len(rows))[:, None]
        keep = (rows >= 0) & (rows != own) & (similarity >= threshold - SLACK)
        queries.append(np.broadcast_to(own, rows.shape)[keep])
        found.append(rows[keep])
    return np.concatenate(queries), np.concatenate(found)
