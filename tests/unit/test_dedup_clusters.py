"""Clustering candidate pairs into merges: union-find, canonical choice, no drifting chains."""

from __future__ import annotations

import uuid

from kg.dedup import UnionFind, plan_merges
from kg.graph import SimilarPair

A, B, C, D, E = (uuid.UUID(int=i) for i in range(1, 6))


def test_union_find_groups_connected_items():
    found = UnionFind()
    found.union(A, B)
    found.union(C, B)
    found.union(D, E)
    assert sorted(found.clusters()) == [[A, B, C], [D, E]]


def test_each_cluster_keeps_its_best_ranked_member():
    rank = {A: 2, B: 0, D: 1, E: 3}
    merges = plan_merges([SimilarPair(a=A, b=B, similarity=0.9), SimilarPair(a=D, b=E, similarity=0.95)], rank.get)
    assert sorted(merges) == sorted([(B, A, 0.9), (D, E, 0.95)])


def test_a_chain_merges_only_members_close_to_the_canonical_one():
    # A~B and B~C, but A and C were never found close: with A canonical, C must stay.
    rank = {A: 0, B: 1, C: 2}
    merges = plan_merges([SimilarPair(a=A, b=B, similarity=0.9), SimilarPair(a=B, b=C, similarity=0.9)], rank.get)
    assert merges == [(A, B, 0.9)]
