"""Clustering candidate pairs into merges (pure): union-find, then one canonical row per cluster."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import TypeVar

from kg.graph import SimilarPair

K = TypeVar("K")


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[uuid.UUID, uuid.UUID] = {}

    def find(self, item: uuid.UUID) -> uuid.UUID:
        root = self.parent.setdefault(item, item)
        while root != self.parent[root]:
            root = self.parent[root]
        while item != root:  # path compression keeps later finds O(1)
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: uuid.UUID, b: uuid.UUID) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)

    def clusters(self) -> list[list[uuid.UUID]]:
        groups: dict[uuid.UUID, list[uuid.UUID]] = {}
        for item in self.parent:
            groups.setdefault(self.find(item), []).append(item)
        return [sorted(members) for members in groups.values() if len(members) > 1]


def plan_merges(
    pairs: Iterable[SimilarPair], rank: Callable[[uuid.UUID], K]
) -> list[tuple[uuid.UUID, uuid.UUID, float]]:
    """(kept, merged, similarity) for the members of each cluster of `pairs` that are themselves
    a candidate pair with the cluster's canonical member.

    Union-find alone links chains (A~B, B~C) whose ends may say different things; merging only the
    members close to the canonical one keeps a cluster from drifting. The canonical member is the
    one with the smallest `rank` key."""
    found = UnionFind()
    similarity: dict[tuple[uuid.UUID, uuid.UUID], float] = {}
    for pair in pairs:
        found.union(pair.a, pair.b)
        similarity[(pair.a, pair.b)] = similarity[(pair.b, pair.a)] = pair.similarity
    merges = []
    for members in found.clusters():
        kept = min(members, key=lambda m: (rank(m), m))
        merges.extend(
            (kept, member, round(similarity[(kept, member)], 6))
            for member in members
            if member != kept and (kept, member) in similarity
        )
    return merges
