"""`kg` lifecycle end to end: concepts and dedup flags, export, delete."""

from __future__ import annotations

import json

import networkx as nx
import pytest

from tests.e2e.conftest import EXAMPLE

NOTE = ("Marie Curie discovered radium in Paris. Pierre Curie was proud of her work. "
        "Because the laboratory was cold, Marie Curie worked in gloves.\n")


@pytest.mark.slow
def test_export_and_delete_through_the_command_line(kg, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text(NOTE)
    (plain,) = kg("ingest", str(note), "--no-concepts", "--json").json_lines()
    assert plain["concepts"] is None and plain["duplicates_removed"] == 0
    assert kg("stats", "--json").json()["concepts"] == 0

    run = kg("ingest", str(EXAMPLE), "--dedup", "--json")
    assert run.code == 0, run.stderr
    (full,) = run.json_lines()
    assert full["concepts"]["concepts_new"] > 0 and full["concepts"]["elements"] > 0
    assert full["dedup"] is not None and full["duplicates_removed"] == full["dedup"]["triples_merged"]
    stats = kg("stats", "--json").json()
    assert stats["documents"] == 2 and all(stats["concepts_by_level"][level] > 0 for level in ("high", "medium", "low"))

    graphml = tmp_path / "graph.graphml"
    assert kg("export", "--format", "graphml", "-o", str(graphml)).code == 0
    graph = nx.read_graphml(graphml)
    assert graph.number_of_edges() == stats["triples"]
    assert graph.number_of_nodes() == stats["entities"] + stats["events"] + stats["emotions"]
    lines = kg("export", "--format", "jsonl").stdout.splitlines()
    assert len(lines) == stats["triples"] and {"subject", "predicate", "object", "sources"} <= set(json.loads(lines[0]))

    # `kg delete` takes the stored source, or the path it was ingested from.
    deleted = kg("delete", "note.txt", "--json")
    assert deleted.code == 0, deleted.stderr
    assert deleted.json()["source"] == str(note)
    assert kg("delete", str(EXAMPLE)).code == 0
    after = kg("stats", "--json").json()
    assert (after["triples"], after["documents"], after["concepts"], after["vectors"]) == (0, 0, 0, 0)


@pytest.mark.parametrize("args, message", [
    (["delete", "never-ingested.txt"], "no document"),
    (["export", "--format", "csv"], "graphml or jsonl"),
])
def test_lifecycle_bad_input_exits_2(kg, args, message):
    run = kg(*args)
    assert run.code == 2 and message in run.stderr and "Traceback" not in run.stderr
