"""`kg` end to end: the example document becomes a graph; bad input is refused with exit 2 and writes nothing."""

from __future__ import annotations

import psycopg
import pytest

from tests.e2e.conftest import EXAMPLE

TYPES = ("ENTITY_ENTITY", "ENTITY_EVENT", "EVENT_EVENT", "EMOTIONAL_CONTEXT")


def graph_tables_exist(database_url: str) -> bool:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT to_regclass('public.jobs') IS NOT NULL").fetchone()[0]


@pytest.mark.slow
def test_ingest_the_example_builds_all_four_types_and_reingest_changes_nothing(kg):
    first = kg("ingest", str(EXAMPLE), "--source-date", "2024-05-01", "--json")
    assert first.code == 0, first.stderr
    (report,) = first.json_lines()
    assert report["status"] == "SUCCEEDED"
    assert report["chunks"] >= 2 and report["chunks_failed"] == 0
    assert all(report["triples"][t] > 0 for t in TYPES)
    assert report["triples"]["total"] == sum(report["triples"][t] for t in TYPES)
    assert report["embeddings"]["computed"] > 0
    assert report["source"] == str(EXAMPLE)

    stats = kg("stats", "--json").json()
    assert stats["triples"] == report["triples"]["total"]
    assert stats["triples_by_type"] == {t: report["triples"][t] for t in TYPES}
    assert stats["documents"] == 1 and stats["entities"] > 0 and stats["vectors"] > stats["triples"]
    assert stats["last_updated"]

    status = kg("status", report["job_id"], "--json").json()
    assert (status["status"], status["progress"], status["stage"]) == ("SUCCEEDED", 100, "FINALIZE")
    assert status["chunks_done"] == report["chunks"]
    assert status["counts"]["triples"]["total"] == report["triples"]["total"]

    again = kg("ingest", str(EXAMPLE), "--source-date", "2024-05-01", "--json")
    (second,) = again.json_lines()
    assert second["embeddings"] == {"computed": 0, "reused": report["embeddings"]["computed"]}
    assert second["triples"] == report["triples"]
    assert kg("stats", "--json").json()["triples"] == stats["triples"]

    jobs = kg("jobs", "--json").json()
    assert [j["job_id"] for j in jobs] == [second["job_id"], report["job_id"]]


def test_status_of_an_unknown_job_is_bad_input(kg):
    run = kg("status", "00000000-0000-0000-0000-000000000000")
    assert run.code == 2
    assert "no job" in run.stderr and "Traceback" not in run.stderr


def bad_inputs(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("  \n\t\n  ")
    (tmp_path / "latin1.txt").write_bytes("Crème brûlée in Paris".encode("latin-1"))  # no NUL: the UTF-8 check
    (tmp_path / "utf16.txt").write_bytes("Marie Skłodowska".encode("utf-16"))  # ASCII in UTF-16 is half NULs
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "big.txt").write_text("Marie Curie discovered radium. " * 40)
    (tmp_path / "good.txt").write_text("Marie Curie discovered radium.")
    (tmp_path / "folder").mkdir()
    return {
        "missing path": (["ingest", str(tmp_path / "nope.txt")], "no such file", {}),
        "directory": (["ingest", str(tmp_path / "folder")], "is a directory", {}),
        "empty file": (["ingest", str(tmp_path / "empty.txt")], "empty", {}),
        "whitespace-only file": (["ingest", str(tmp_path / "blank.txt")], "empty", {}),
        "not UTF-8": (["ingest", str(tmp_path / "latin1.txt")], "not UTF-8 text (invalid byte at offset 2)", {}),
        "UTF-16": (["ingest", str(tmp_path / "utf16.txt")], "not text (it contains NUL bytes)", {}),
        "binary": (["ingest", str(tmp_path / "binary.bin")], "not text (it contains NUL bytes)", {}),
        "over the size limit": (["ingest", str(tmp_path / "big.txt")], "over the limit", {"KG_MAX_DOCUMENT_BYTES": "1000"}),
        "invalid source date": (["ingest", str(tmp_path / "good.txt"), "--source-date", "yesterday"], "ISO-8601", {}),
        "one bad file among good ones": (["ingest", str(tmp_path / "good.txt"), str(tmp_path / "empty.txt")], "empty", {}),
        "bad concurrency": (["ingest", str(tmp_path / "good.txt"), "--max-concurrency", "0"], "max-concurrency", {}),
    }


@pytest.mark.parametrize("case", [
    "missing path", "directory", "empty file", "whitespace-only file", "not UTF-8", "UTF-16", "binary",
    "over the size limit", "invalid source date", "one bad file among good ones", "bad concurrency",
])
def test_bad_input_exits_2_with_one_clear_line_and_writes_nothing(kg, tmp_path, database_url, case):
    args, message, env = bad_inputs(tmp_path)[case]
    run = kg(*args, extra_env=env)
    assert run.code == 2, (run.stdout, run.stderr)
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    assert not graph_tables_exist(database_url)
    assert not (tmp_path / "kg-data").exists()


def test_an_unreachable_database_is_a_clear_error(kg, tmp_path):
    (tmp_path / "good.txt").write_text("Marie Curie discovered radium in Paris.")
    run = kg("ingest", str(tmp_path / "good.txt"),
             extra_env={"KG_DATABASE_URL": f"postgresql://nobody@/kg?host={tmp_path}&connect_timeout=2"})
    assert run.code == 1
    assert run.stderr.startswith("kg: error: cannot reach the graph database")
    assert "Traceback" not in run.stderr
