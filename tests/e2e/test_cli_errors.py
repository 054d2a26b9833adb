"""`kg` fails cleanly: one line on stderr (`kg: error: ...`), exit 2 for bad input or settings, exit 1
for a database out of reach or anything unexpected, never a traceback unless `--debug`. The reading
commands use the store's own embedding model, whatever the settings would embed with. Help texts
keep their bracketed words."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.support.cli import Run, kg_env, start_kg
from tests.support.fake_openai import Received, Reply
from tests.support.http import http_json, wait_until_serving

NOTE = ("Marie Curie discovered radium in Paris with Pierre Curie. "
        "Pierre Curie taught physics at the Sorbonne in Paris.\n")
REFUSING_OPENAI = {"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}  # nothing listens on 9


def one_error_line(run: Run) -> str:
    """The one line a failed command printed; anything more (a traceback, a second line) fails.
    `kg ingest` first says which extractor and embeddings it uses: that line is not the error's."""
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.strip().splitlines() if not line.startswith("extractor: ")]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("kg: error: "), run.stderr
    return lines[0]


def graph_tables_exist(database_url: str) -> bool:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT to_regclass('public.jobs') IS NOT NULL").fetchone()[0]


@pytest.fixture
def kg_process(database_url: str, tmp_path: Path):
    """`kg` started in the background, with the environment of the `kg` fixture."""
    env = kg_env(database_url, tmp_path / "kg-data")

    def start(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        return start_kg({**env, **(extra_env or {})}, *args, cwd=tmp_path, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)

    return start


# -- documents that never end ------------------------------------------------------------------


def test_ingest_of_dev_zero_reads_no_further_than_the_limit(kg, database_url):
    run = kg("ingest", "/dev/zero", timeout=120)  # the default limit, 10 MB: reading it all would never end
    assert run.code == 2
    assert "over the limit" in one_error_line(run)
    assert run.stdout == "" and not graph_tables_exist(database_url)


def _feed(fifo: Path, data: bytes | None) -> threading.Thread:
    """A writer on the FIFO: `data` then the end, or (None) zeros until the reader goes away."""
    def write() -> None:
        try:
            with fifo.open("wb") as pipe:  # blocks until `kg` opens it
                if data is not None:
                    pipe.write(data)
                    return
                block = b"\0" * 65536
                while True:
                    pipe.write(block)
        except BrokenPipeError:
            pass  # the reader stopped reading: what is expected of it

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


def test_a_fifo_without_end_is_refused_at_the_limit(kg, tmp_path, database_url):
    fifo = tmp_path / "endless"
    os.mkfifo(fifo)
    writer = _feed(fifo, None)
    run = kg("ingest", str(fifo), extra_env={"KG_MAX_DOCUMENT_BYTES": "100000"}, timeout=120)
    assert run.code == 2
    assert "more than 100,000 bytes, over the limit" in one_error_line(run)
    writer.join(30)
    assert not writer.is_alive()  # kg closed the pipe: the writer got its broken pipe
    assert not graph_tables_exist(database_url)


def test_a_fifo_carrying_a_document_is_ingested(kg, tmp_path):
    fifo = tmp_path / "note"
    os.mkfifo(fifo)
    _feed(fifo, NOTE.encode())
    run = kg("ingest", str(fifo), "--no-concepts", "--json")
    assert run.code == 0, run.stderr
    (report,) = run.json_lines()
    assert report["status"] == "SUCCEEDED" and report["triples"]["total"] > 0


# -- the database out of reach, and the unexpected ---------------------------------------------


@pytest.mark.parametrize("url, code", [
    ("not a url", 2),  # a bad setting
    ("postgresql://nobody@/kg?host=/nonexistent-kg-folder&connect_timeout=2", 1),  # a database out of reach
], ids=["malformed", "unreachable"])
def test_a_bad_database_url_is_one_line(kg, url, code):
    run = kg("stats", extra_env={"KG_DATABASE_URL": url})
    assert run.code == code
    one_error_line(run)
    assert run.stdout == ""


@pytest.mark.parametrize("switch", ["--debug", "KG_DEBUG"])
def test_debug_shows_the_traceback_then_the_line(kg, switch):
    env = {"KG_DATABASE_URL": "postgresql://nobody@/kg?host=/nonexistent-kg-folder&connect_timeout=2"}
    args = ["stats"]
    if switch == "--debug":
        args.insert(0, "--debug")
    else:
        env["KG_DEBUG"] = "1"
    run = kg(*args, extra_env=env)
    assert run.code == 1
    assert "Traceback (most recent call last)" in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("kg: error: ")


def test_an_unexpected_error_is_one_line_and_exit_1(kg, tmp_path):
    (tmp_path / "note.txt").write_text(NOTE)
    assert kg("ingest", str(tmp_path / "note.txt"), "--no-concepts").code == 0
    run = kg("export", "--format", "jsonl", "-o", "/dev/full")  # every write fails: no space left on device
    assert run.code == 1
    assert "No space left on device" in one_error_line(run)


def test_an_export_to_a_folder_that_does_not_exist_is_bad_input(kg, tmp_path):
    run = kg("export", "-o", str(tmp_path / "no-such-folder" / "graph.graphml"))
    assert run.code == 2
    assert "cannot be written" in one_error_line(run)


def test_a_database_lost_in_the_middle_of_an_ingest_is_one_line_and_exit_1(
        kg_process, tmp_path, database_url, pg_server, fake_openai):
    """The first LLM request is held while the database stops taking connections and drops the
    command's own; then the ingest goes on, and meets the database gone."""
    held, release = threading.Event(), threading.Event()

    def hold(request: Received) -> Reply:
        held.set()
        release.wait(120)
        return Reply()

    fake_openai.on(lambda r: r.path.endswith("/chat/completions"), hold, times=1)
    (tmp_path / "note.txt").write_text(NOTE)
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.url, "KG_EMBEDDING_DIMENSIONS": "64",
           "KG_LLM_MAX_RETRIES": "0"}
    process = kg_process("ingest", str(tmp_path / "note.txt"), "--no-concepts", extra_env=env)
    try:
        assert held.wait(120), "the ingest never reached the LLM"
        name = conninfo_to_dict(database_url)["dbname"]
        with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    finally:
        release.set()
    stdout, stderr = process.communicate(timeout=300)
    run = Run(process.returncode, stdout, stderr)
    assert run.code == 1
    one_error_line(run)


# -- reading commands read the store's model, not the settings' -------------------------------


def test_reading_commands_on_an_offline_store_ignore_an_openai_key(kg, tmp_path):
    (tmp_path / "note.txt").write_text(NOTE)
    ingested = kg("ingest", str(tmp_path / "note.txt"), "--no-concepts", "--json")
    assert ingested.code == 0, ingested.stderr
    (report,) = ingested.json_lines()
    offline_search = kg("search", "who discovered radium", "--json")
    assert offline_search.code == 0 and offline_search.json()["hits"]

    for args in (["stats", "--json"], ["jobs", "--json"], ["status", report["job_id"], "--json"],
                 ["export", "--format", "jsonl"], ["concepts", "radium", "--json"],
                 ["neighbors", "Marie Curie", "--json"]):
        run = kg(*args, extra_env=REFUSING_OPENAI)
        assert run.code == 0, (args, run.stderr)
    assert kg("stats", "--json", extra_env=REFUSING_OPENAI).json()["triples"] == report["triples"]["total"]
    exported = kg("export", "--format", "jsonl", extra_env=REFUSING_OPENAI).stdout.splitlines()
    assert len(exported) == report["triples"]["total"]

    # The query is embedded with the store's MiniLM, not with OpenAI (which nothing answers here).
    searched = kg("search", "who discovered radium", "--json", extra_env=REFUSING_OPENAI)
    assert searched.code == 0, searched.stderr
    assert searched.json()["embedding_model"] == offline_search.json()["embedding_model"]
    assert [h["id"] for h in searched.json()["hits"]] == [h["id"] for h in offline_search.json()["hits"]]

    deleted = kg("delete", str(tmp_path / "note.txt"), "--json", extra_env=REFUSING_OPENAI)
    assert deleted.code == 0, deleted.stderr
    assert kg("stats", "--json").json()["triples"] == 0


def test_an_openai_store_without_a_key_still_reads_and_its_search_says_why_not(kg, tmp_path, fake_openai):
    (tmp_path / "note.txt").write_text(NOTE)
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai.url, "KG_EMBEDDING_DIMENSIONS": "64"}
    assert kg("ingest", str(tmp_path / "note.txt"), "--no-concepts", extra_env=env).code == 0
    with_key = kg("search", "Curie", "--json", extra_env=env)
    assert with_key.code == 0, with_key.stderr

    stats = kg("stats", "--json")  # no key, offline settings
    assert stats.code == 0 and stats.json()["triples"] > 0
    assert kg("jobs", "--json").code == 0
    assert kg("export").code == 0
    run = kg("search", "Curie")
    assert run.code == 2
    line = one_error_line(run)
    assert "OPENAI_API_KEY" in line and "text-embedding-3-small" in line


def test_kg_serve_on_an_offline_store_reads_and_searches_with_an_openai_key_set(kg, kg_process, tmp_path):
    from tests.support.moto_server import free_port

    (tmp_path / "note.txt").write_text(NOTE)
    assert kg("ingest", str(tmp_path / "note.txt"), "--no-concepts").code == 0
    port = free_port()
    server = kg_process("serve", "--port", str(port), extra_env=REFUSING_OPENAI)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, server)
        status, stats = http_json(url + "/stats")
        assert status == 200 and stats["triples"] > 0
        status, found = http_json(url + "/search?query=who+discovered+radium")
        assert status == 200, found
        assert found["embedding_model"].startswith("all-MiniLM") and found["hits"]
        # Ingesting is another matter: the settings would embed with OpenAI, which this store cannot take.
        status, refused = http_json(url + "/jobs", "POST", {"source": "more.txt", "text": NOTE})
        assert status == 503 and "384 dimensions" in refused["error"]
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=300)  # a guard: a loaded machine took over 60 s once


# -- help texts --------------------------------------------------------------------------------


def _commands():
    """(the command's words, its own help texts) for `kg` and every subcommand."""
    import click
    import typer.main

    from kg.cli import app

    def walk(command: click.Command, words: list[str]):
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        yield words, [t for t in texts if t]
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*words, name])

    return list(walk(typer.main.get_command(app), []))


def _plain(text: str) -> str:
    """Help as a reader sees it: one line, no box, single spaces; `\\[` is how markup escapes `[`."""
    text = text.replace("\\[", "[")
    return " ".join(text.replace("│", " ").split())


def test_help_texts_keep_their_bracketed_words(kg):
    commands = _commands()
    bracketed = [b for _, texts in commands for t in texts for b in re.findall(r"\[[^\]]*\]", _plain(t))]
    assert bracketed, "no help text has a bracketed word: this test checks nothing"
    for words, texts in commands:
        run = kg(*words, "--help", extra_env={"COLUMNS": "250"})
        assert run.code == 0, run.stderr
        shown = _plain(run.stdout)
        for text in texts:
            assert _plain(text) in shown, (words, text)
        if words == []:  # `kg --help` lists each command with its help
            for sub_words, sub_texts in commands:
                if len(sub_words) == 1 and sub_texts:
                    assert _plain(sub_texts[0]) in shown, sub_words


def test_printed_data_keeps_its_bracketed_words(kg, tmp_path):
    """What the tables show is the data's: a source named "[draft] notes" is not a style to drop."""
    (tmp_path / "note.txt").write_text(NOTE)
    wide = {"COLUMNS": "250"}
    ingested = kg("ingest", str(tmp_path / "note.txt"), "--source", "[draft] notes", "--no-concepts", extra_env=wide)
    assert ingested.code == 0, ingested.stderr
    assert "[draft] notes" in ingested.stdout
    assert "[draft] notes" in kg("jobs", extra_env=wide).stdout

