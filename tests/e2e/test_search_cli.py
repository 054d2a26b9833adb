"""`kg search`, `kg concepts` and `kg neighbors` as a user runs them: JSON payloads, tables, exit 2 on bad input."""

from __future__ import annotations

import pytest

NOTE = ("Marie Curie discovered radium in Paris. Marie Curie married Pierre Curie in 1895. "
        "Pierre Curie taught physics at the Sorbonne. The Sorbonne is a university in Paris.\n")


@pytest.fixture
def ingested(kg, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text(NOTE, encoding="utf-8")
    done = kg("ingest", str(note), "--source-type", "note", "--source-date", "2024-05-01", "--json")
    assert done.code == 0, done.stderr
    return note


def test_search_concepts_and_neighbors_answer_in_json_and_in_tables(kg, ingested):
    found = kg("search", "Who discovered radium?", "--limit", "3", "--json")
    assert found.code == 0, found.stderr
    response = found.json()
    assert set(response) == {"query", "hits", "embedding_model", "took_ms"}
    assert response["query"] == "Who discovered radium?" and 1 <= len(response["hits"]) <= 3
    top = response["hits"][0]
    assert set(top) == {"id", "subject", "predicate", "object", "type", "score", "ranks", "similarity", "confidence",
                        "sources", "source_count"}
    assert set(top["ranks"]) == {"entity", "relationship", "semantic", "concept"}
    assert "radium" in (top["subject"] + top["object"]).lower()
    source = top["sources"][0]
    assert (source["source"], source["source_type"], source["chunk_index"]) == (str(ingested), "note", 0)
    assert NOTE[source["start"]:source["end"]] == source["text"] and "radium" in source["text"]

    # --source takes the path as it was given to `kg ingest`; other filters narrow to nothing.
    assert kg("search", "radium", "--source", "note.txt", "--json").json()["hits"]
    assert kg("search", "radium", "--source-type", "report", "--json").json()["hits"] == []
    assert kg("search", "radium", "--from", "2024-06-01", "--json").json()["hits"] == []
    typed = kg("search", "radium", "--type", "entity_entity", "--json").json()["hits"]
    assert typed and {h["type"] for h in typed} == {"ENTITY_ENTITY"}

    table = kg("search", "Who discovered radium?", "--limit", "3")
    assert table.code == 0 and "radium" in table.stdout and "note.txt #0" in table.stdout

    concepts = kg("concepts", "person", "--json")
    assert concepts.code == 0, concepts.stderr
    payload = concepts.json()
    assert set(payload) == {"query", "level", "concepts"} and payload["concepts"]
    assert set(payload["concepts"][0]) == {"id", "name", "level", "score", "similarity", "vector_rank",
                                           "lexical_rank", "element_count", "elements"}
    high = kg("concepts", "person", "--level", "high", "--json").json()["concepts"]
    assert high and {c["level"] for c in high} == {"high"}
    assert kg("concepts", "person").code == 0

    near = kg("neighbors", "Pierre Curie", "--hops", "2", "--json")
    assert near.code == 0, near.stderr
    hood = near.json()
    assert set(hood) == {"node", "centres", "nodes", "triples", "truncated"}
    assert [c["name"] for c in hood["centres"]] == ["Pierre Curie"]
    assert {t["hop"] for t in hood["triples"]} <= {1, 2} and any(t["hop"] == 1 for t in hood["triples"])
    assert kg("neighbors", "Pierre Curie").code == 0


@pytest.mark.parametrize(("args", "message"), [
    (["search", ""], "the query is empty"),
    (["search", "x" * 2001], "at most 2,000"),
    (["search", "radium", "--limit", "0"], "limit"),
    (["search", "radium", "--limit", "101"], "limit"),
    (["search", "radium", "--threshold", "2"], "threshold"),
    (["search", "radium", "--type", "FRIENDSHIP"], "types"),
    (["search", "radium", "--from", "yesterday"], "date_from"),
    (["search", "radium", "--weights", "entity"], "--weights"),
    (["search", "radium", "--list", "everything"], "search_types"),
    (["concepts", "person", "--level", "middling"], "level"),
    (["neighbors", "Pierre Curie", "--hops", "4"], "hops"),
    (["neighbors", "Nobody At All"], "no node named"),
])
def test_bad_input_exits_2_with_one_clear_line(kg, args, message):
    done = kg(*args)
    assert done.code == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("kg: error:") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""
