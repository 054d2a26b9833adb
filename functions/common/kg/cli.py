"""The `kg` command: the edge of the local engine, and of a deployed stack (`--engine aws`, kg.engine.aws).
Exit codes: 0 SUCCEEDED or PARTIAL, 1 FAILED or the database out of reach, 2 bad usage or input. Every
error is one line on stderr (`kg: error: ...`); `--debug` (or KG_DEBUG=1) adds its traceback."""

from __future__ import annotations

import json
import logging
import signal
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from kg.documents import decode_document, parse_source_date, read_document_bytes
from kg.errors import InvalidInput, KgError, NotFound
from kg.models import DocumentInput, IngestReport, JobRecord, JobStatus, LlmUsage, Stage
from kg.settings import Settings

if TYPE_CHECKING:
    from kg.engine.aws import DeployedStack

app = typer.Typer(
    help="Turn documents into a knowledge graph in PostgreSQL + pgvector.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The graph database: its schema, and the embedded PostgreSQL (used when KG_DATABASE_URL "
                          "is not set).", no_args_is_help=True)
app.add_typer(db_app, name="db")

# No console markup: what is printed (sources, triples, error messages such as "[Errno 2] ...") is the
# data's, and rich would take a bracketed word for a style and drop it.
out = Console(markup=False)
err = Console(stderr=True, markup=False)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

EngineOption = Annotated[str | None, typer.Option(
    "--engine", help="local (this machine), or aws: the deployed stack KG_STACK_NAME (default KG_ENGINE, local).")]


class _Options:
    debug = False  # --debug: errors keep their traceback


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", envvar="KG_DEBUG", show_envvar=False,
                                        help="Print the traceback of an error (also KG_DEBUG=1).")] = False,
) -> None:
    _Options.debug = debug
    if debug:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    else:
        # Warnings on the way to an error (psycopg_pool's reconnection attempts, a job's lease not
        # renewed while the database is away) would come before the one line that says it; what a
        # run leaves unfinished is in its report. Errors a server logs (kg serve) still show.
        logging.disable(logging.WARNING)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        raise InvalidInput(f"setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def _stack(settings: Settings) -> DeployedStack:
    """The deployed stack `--engine aws` drives, found before anything is written."""
    try:
        from kg.engine.aws import DeployedStack
    except ImportError as e:
        raise InvalidInput(f"--engine aws needs the aws extra (pip install 'kg-pipeline[aws]'): {e}") from None
    return DeployedStack.connect(settings)


def _print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def _read_documents(
    paths: list[Path], source: str | None, source_type: str, source_date: str | None, max_bytes: int
) -> list[DocumentInput]:
    """Every document is read and validated before anything is written."""
    if source is not None and len(paths) > 1:
        raise InvalidInput("--source names one document: give a single PATH with it")
    date = parse_source_date(source_date)
    documents = []
    for path in paths:
        data = read_document_bytes(path, max_bytes)  # bounded: /dev/zero or a FIFO cannot make it read forever
        name = source if source is not None else str(path.resolve())
        documents.append(decode_document(data, name, max_bytes, source_type, date))
    return documents


class RichObserver:
    """Progress bars per stage on stderr, shown only on a terminal."""

    _LABELS = {Stage.PLAN: "plan", Stage.EXTRACT: "extract", Stage.STORE: "merge and store"}

    def __init__(self, progress: Progress, source: str):
        self.progress = progress
        self.source = source
        self.tasks: dict[Stage, TaskID] = {}

    def stage_started(self, stage: Stage, total: int) -> None:
        label = f"{Path(self.source).name}: {self._LABELS.get(stage, stage.value.lower())}"
        self.tasks[stage] = self.progress.add_task(label, total=total)

    def advanced(self, stage: Stage, amount: int = 1) -> None:
        self.progress.advance(self.tasks[stage], amount)


class RichJobObserver:
    """A deployed stack's jobs: one bar per job on stderr, its progress as the ledger says, shown
    only on a terminal."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def job_updated(self, record: JobRecord) -> None:
        label = f"{Path(record.source).name}: {RichObserver._LABELS.get(record.stage, record.stage.value.lower())}"
        if record.stage is Stage.EXTRACT and record.chunks_total:
            label += f" {record.chunks_done}/{record.chunks_total} chunks"
        if record.job_id not in self.tasks:
            self.tasks[record.job_id] = self.progress.add_task(label, total=100)
        self.progress.update(self.tasks[record.job_id], description=label, completed=record.progress)


def _report_table(report: IngestReport) -> Table:
    table = Table(title=f"{report.source}", show_header=False, title_justify="left")
    table.add_row("job", report.job_id)
    table.add_row("status", report.status.value)
    table.add_row("chunks", f"{report.chunks} ({report.chunks_failed} failed, {report.chunks_partial} partial)")
    for name, count in report.triples.items():
        table.add_row(f"triples {name.lower()}", str(count))
    table.add_row("entities / events", f"{report.entities} / {report.events}")
    table.add_row("embeddings", f"{report.embeddings.computed} computed, {report.embeddings.reused} reused")
    if report.concepts:
        table.add_row("concepts", f"{report.concepts.concepts_new} new, {report.concepts.edges_new} edges "
                                  f"for {report.concepts.elements} elements")
    if report.dedup:
        table.add_row("duplicates removed", f"{report.duplicates_removed} triples, "
                                            f"{report.dedup.entities_merged} entities merged")
    table.add_row("seconds", f"{report.duration_s:.2f}")
    if report.error:
        table.add_row("error", report.error)
    return table


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Text files (UTF-8) to ingest.", show_default=False)],
    source: Annotated[str | None, typer.Option(help="The document's source name (default: its absolute path).")] = None,
    source_type: Annotated[str, typer.Option(help="What kind of source it is.")] = "text",
    source_date: Annotated[str | None, typer.Option(help="ISO-8601 date of the source.")] = None,
    max_concurrency: Annotated[int | None, typer.Option(min=1, max=256, help="Chunks extracted at once (default 4).")] = None,
    concepts: Annotated[bool | None, typer.Option("--concepts/--no-concepts", help="Generate concepts (default on).")] = None,
    dedup: Annotated[bool | None, typer.Option("--dedup/--no-dedup", help="Merge near-duplicates (default off).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per document on stdout.")] = False,
    engine: EngineOption = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="--engine aws: follow the jobs to their end "
                                                                 "(default), or only start them.")] = True,
    rerun: Annotated[bool, typer.Option("--rerun", help="--engine aws: run a document again that the stack has "
                                                        "run with the same options (else its job is reported).")] = False,
    resume_interrupted: Annotated[bool, typer.Option("--resume", help="Continue a document's INTERRUPTED job "
                                                     "(its latest, if the file is unchanged) instead of starting "
                                                     "a new one.")] = False,
    llm_batch: Annotated[bool | None, typer.Option("--llm-batch/--no-llm-batch", help=(
        "Send the LLM requests through the OpenAI Batch API: half the price, answered within 24 h; the job "
        "is WAITING meanwhile (default KG_LLM_BATCH, off)."))] = None,
) -> None:
    r"""Ingest documents: chunk, extract the four triple types, embed, store, conceptualize, \[deduplicate]."""
    from kg.engine.local import (
        ingest as run_ingest,
        interrupted_job,
        open_local_ports,
        resume as run_resume,
        same_document,
    )

    settings = _settings(engine=engine, max_concurrency=max_concurrency, concepts=concepts, dedup=dedup,
                         llm_batch=llm_batch)
    if settings.llm_batch and settings.engine == "local":  # a stack's provider is its own (a no-op offline)
        from kg.llm.batch import check_batch_settings

        check_batch_settings(settings)
    if settings.engine == "aws" and max_concurrency is not None:
        raise InvalidInput("--max-concurrency is the local engine's; a stack's is kg:mapMaxConcurrency (cdk.json)")
    if settings.engine == "local" and not wait:
        raise InvalidInput("--no-wait is for --engine aws: the local engine runs the job in this process")
    if settings.engine == "local" and rerun:
        raise InvalidInput("--rerun is for --engine aws: the local engine runs every document it is given")
    if settings.engine == "aws" and resume_interrupted:
        raise InvalidInput("--resume is the local engine's: a stack's jobs are ended by Step Functions")
    documents = _read_documents(paths, source, source_type, source_date, settings.max_document_bytes)
    if settings.engine == "aws":
        _ingest_on_stack(_stack(settings), documents, as_json, wait, rerun)
        return
    ports = open_local_ports(settings)
    failed = False
    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, disable=not err.is_terminal, transient=as_json,
        ) as progress:
            err.print(f"extractor: {ports.extractor.name}   embeddings: {ports.embedder.model} "
                      f"({ports.embedder.dimensions} dimensions)", highlight=False, markup=False, soft_wrap=True)
            _stop_on_sigterm()
            for document in documents:
                observer = RichObserver(progress, document.source)
                interrupted = interrupted_job(ports, document.source)
                if interrupted and resume_interrupted and same_document(ports, interrupted.job_id, document):
                    report = run_resume(interrupted.job_id, ports, settings, observer)
                else:
                    if interrupted:  # left as it is: still resumable
                        hint = ("the file has changed since;" if resume_interrupted
                                else f"kg resume {interrupted.job_id} (or kg ingest --resume) continues it;")
                        err.print(f"kg: {document.source}: job {interrupted.job_id} was interrupted; {hint} "
                                  "starting a new job", highlight=False, markup=False, soft_wrap=True)
                    report = run_ingest(document, ports, settings, observer)
                failed |= report.status is JobStatus.FAILED
                if as_json:
                    _print_json(report.model_dump(mode="json"))
                else:
                    out.print(_report_table(report))
    finally:
        ports.close()
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _ingest_on_stack(stack: DeployedStack, documents: list[DocumentInput], as_json: bool, wait: bool,
                     rerun: bool) -> None:
    err.print(f"stack: {stack.name}   state machine: {stack.outputs.state_machine_arn}",
              highlight=False, markup=False, soft_wrap=True)
    submitted = [stack.submit(document, rerun=rerun) for document in documents]
    for job in submitted:
        if not job.started:
            err.print(f"{job.source}: submitted before as job {job.job_id} ({job.status.value}); "
                      "--rerun runs it again", highlight=False, markup=False, soft_wrap=True)
    if not wait:
        for job in submitted:
            if as_json:
                _print_json({"job_id": job.job_id, "source": job.source, "status": job.status.value,
                             "started": job.started, "execution_arn": job.execution_arn})
            elif job.started:
                out.print(f"started {job.job_id} for {job.source}: kg status --engine aws {job.job_id}",
                          highlight=False, markup=False, soft_wrap=True)
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  console=err, disable=not err.is_terminal, transient=as_json) as progress:
        reports = stack.follow(submitted, RichJobObserver(progress))
    for report in reports:
        if as_json:
            _print_json(report.model_dump(mode="json"))
        else:
            out.print(_report_table(report))
    if any(report.status is JobStatus.FAILED for report in reports):
        raise typer.Exit(EXIT_FAILED)


def _stop_on_sigterm() -> None:
    """SIGTERM stops the command as Ctrl-C does: the job it runs ends INTERRUPTED at once, resumable."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


@app.command()
def resume(
    job_id: Annotated[str, typer.Argument(help="An INTERRUPTED job's id (kg jobs lists them).", show_default=False)],
    max_concurrency: Annotated[int | None, typer.Option(min=1, max=256, help="Chunks extracted at once (default 4).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The job's report as one JSON object on stdout.")] = False,
) -> None:
    """Continue an interrupted job to its end: the chunks it extracted are not extracted again."""
    from kg.engine.local import open_local_ports, resume as run_resume

    settings = _settings(max_concurrency=max_concurrency)
    if settings.engine != "local":
        raise InvalidInput("kg resume continues the local engine's jobs; a stack's jobs are ended by Step Functions "
                           "(kg ingest --engine aws --rerun runs a document again)")
    ports = open_local_ports(settings)
    try:
        record = ports.ledger.get(job_id, with_chunks=False)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, disable=not err.is_terminal, transient=as_json,
        ) as progress:
            _stop_on_sigterm()
            report = run_resume(record.job_id, ports, settings, RichObserver(progress, record.source))
    finally:
        ports.close()
    if as_json:
        _print_json(report.model_dump(mode="json"))
    else:
        out.print(_report_table(report))
    if report.status is JobStatus.FAILED:
        raise typer.Exit(EXIT_FAILED)


def _open_ledger_and_graph(settings: Settings):
    """The graph and the ledger, in the store's own embedding space: a command that only reads (or
    deletes) embeds nothing, so it builds no embedder and is not refused because the settings would
    embed otherwise (OPENAI_API_KEY set over a store built offline)."""
    from kg.db import open_database
    from kg.graph.postgres import PostgresGraphStore
    from kg.ledger.postgres import PostgresLedger

    if settings.engine != "local":
        raise InvalidInput(f"this command works on the local engine only, and KG_ENGINE is {settings.engine}")
    # Like `kg ingest`, every command migrates on first use: `kg stats` on a new database says 0.
    db = open_database(settings, migrate=True)
    return db, PostgresLedger(db), PostgresGraphStore(db)


def _compact(value: object) -> str:
    """A nested count as one line: "total 532, ENTITY_ENTITY 211, …"."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_compact(v)}" if not isinstance(v, dict) else f"{k} ({_compact(v)})"
                         for k, v in value.items())
    return str(value)


def _usage_line(usage: LlmUsage) -> str:
    """Calls (those kg's own cache answered), tokens in + out (those in the provider's prompt cache), cost."""
    return (f"{usage.calls} calls ({usage.cached} cached), {usage.input_tokens}+{usage.output_tokens} tokens "
            f"({usage.cached_input_tokens} input tokens from the prompt cache), ${usage.cost_usd:.4f}")


def _job_table(job: JobRecord, execution: dict[str, str] | None = None) -> Table:
    table = Table(title=f"job {job.job_id}", show_header=False, title_justify="left")
    table.add_row("source", job.source)
    table.add_row("status", job.status.value)
    table.add_row("stage", job.stage.value)
    table.add_row("progress", f"{job.progress}%")
    table.add_row("chunks", f"{job.chunks_done}/{job.chunks_total} done, {job.chunks_failed} failed")
    for key, value in sorted(job.counts.items()):
        table.add_row(key, _compact(value))
    if job.llm.calls or job.llm.cached:
        table.add_row("llm", _usage_line(job.llm))
        if len(job.llm_by_stage) > 1:  # one stage: the total says it all
            for stage, usage in job.llm_by_stage.items():
                table.add_row(f"llm {stage.lower()}", _usage_line(usage))
    if job.error:
        table.add_row("error", job.error)
    if job.batch_id:
        table.add_row("batch", job.batch_id + (" (the provider is working on it)" if job.status is JobStatus.WAITING
                                               else ""))
    if job.status is JobStatus.INTERRUPTED:
        table.add_row("resume", f"kg resume {job.job_id}")
    elif job.lease_owner and job.lease_until:
        table.add_row("held by", f"{job.lease_owner} until {job.lease_until.isoformat(timespec='seconds')}")
    for chunk in job.chunks:
        if chunk.error:
            table.add_row(f"chunk {chunk.index}", f"{chunk.status.value}: {chunk.error}")
    table.add_row("updated", job.updated_at.isoformat(timespec="seconds"))
    if execution:
        table.add_row("execution", execution["status"])
        table.add_row("console", Text(execution["console_url"], overflow="fold"))
    return table


@app.command()
def status(
    job_id: Annotated[str, typer.Argument(help="The job id that `kg ingest` printed.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    engine: EngineOption = None,
) -> None:
    """A job's status, stage, progress, counts and errors (on AWS also its execution)."""
    settings = _settings(engine=engine)
    execution = None
    if settings.engine == "aws":
        job, execution = _stack(settings).status(job_id)
    else:
        db, ledger, _ = _open_ledger_and_graph(settings)
        with db:
            job = ledger.get(job_id)
    if as_json:
        payload = job.model_dump(mode="json")
        if settings.engine == "aws":
            payload["execution"] = execution
        _print_json(payload)
    else:
        out.print(_job_table(job, execution))


@app.command()
def jobs(
    limit: Annotated[int, typer.Option(min=1, help="How many of the latest jobs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    engine: EngineOption = None,
) -> None:
    """The latest jobs."""
    settings = _settings(engine=engine)
    if settings.engine == "aws":
        records = _stack(settings).jobs(limit)
    else:
        db, ledger, _ = _open_ledger_and_graph(settings)
        with db:
            records = ledger.list_jobs(limit)
    if as_json:
        _print_json([r.model_dump(mode="json", exclude={"chunks"}) for r in records])
        return
    table = Table("job", "status", "progress", "chunks", "source", "updated")
    for r in records:
        table.add_row(r.job_id, r.status.value, f"{r.progress}%", f"{r.chunks_done}/{r.chunks_total}",
                      r.source, r.updated_at.isoformat(timespec="seconds"))
    out.print(table)


@app.command()
def stats(as_json: Annotated[bool, typer.Option("--json")] = False, engine: EngineOption = None) -> None:
    """Totals of the graph: triples by type, entities, documents, vectors (on AWS through the stack's API)."""
    settings = _settings(engine=engine)
    if settings.engine == "aws":
        graph_stats = _stack(settings).stats()
    else:
        db, _, graph = _open_ledger_and_graph(settings)
        with db:
            graph_stats = graph.stats()
    if as_json:
        _print_json(graph_stats.model_dump(mode="json"))
        return
    table = Table(show_header=False)
    for key, value in graph_stats.model_dump().items():
        if isinstance(value, dict):  # one row per triple type, per concept level
            for name, count in value.items():
                table.add_row(f"{key.removesuffix('_by_type').removesuffix('_by_level')} {name.lower()}", str(count))
        else:
            table.add_row(key, "" if value is None else str(value))
    out.print(table)


@app.command()
def delete(
    source: Annotated[str, typer.Argument(help="The document's source (as `kg ingest` stored it: by default its absolute path).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Remove a document's contribution: its provenance, and every fact no other document supports."""
    settings = _settings()
    db, _, graph = _open_ledger_and_graph(settings)
    with db:
        try:
            summary = graph.delete_document(source)
        except NotFound:
            # `kg delete notes.txt` after `kg ingest notes.txt`: the stored source is the absolute path.
            resolved = Path(source).resolve()
            if not resolved.exists() or str(resolved) == source:
                raise
            summary = graph.delete_document(str(resolved))
    if as_json:
        _print_json(summary.model_dump(mode="json"))
        return
    out.print(f"deleted {summary.source}: {summary.triples} triples, {summary.nodes} nodes, "
              f"{summary.relations} relations, {summary.concepts} concepts, {summary.provenance} provenance rows",
              highlight=False, markup=False, soft_wrap=True)


@app.command()
def export(
    export_format: Annotated[str, typer.Option("--format", help="graphml or jsonl.")] = "graphml",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write (default: stdout).")] = None,
) -> None:
    """Export the graph as GraphML (nodes and triple edges) or JSON Lines (one triple per line)."""
    from kg.export import write_graphml, write_jsonl

    if export_format not in ("graphml", "jsonl"):
        raise InvalidInput(f"--format {export_format!r}: use graphml or jsonl")
    if output is not None and output.is_dir():
        raise InvalidInput(f"{output}: is a directory")
    if output is not None and not output.parent.is_dir():
        raise InvalidInput(f"{output}: cannot be written (there is no folder {output.parent})")
    db, _, graph = _open_ledger_and_graph(_settings())
    with db:
        try:
            target = output.open("w", encoding="utf-8") if output else sys.stdout
        except OSError as e:
            raise InvalidInput(f"{output}: cannot be written ({e.strerror or e})") from None
        try:
            if export_format == "graphml":
                nodes, edges = write_graphml(graph.iter_nodes(), graph.iter_triples(), target)
                written = f"{nodes} nodes, {edges} edges"
            else:
                written = f"{write_jsonl(graph.iter_triples(), target)} triples"
        finally:
            if output:
                target.close()
    if output:
        err.print(f"wrote {written} to {output}", highlight=False, markup=False, soft_wrap=True)


@db_app.command("migrate")
def db_migrate(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Apply the schema migrations the graph database lacks (nothing when it is current)."""
    from kg.db import apply_migrations, database_url, latest_schema_version
    from kg.providers import default_embedder

    settings = _settings()
    embedder = default_embedder(settings)  # the embedding space a new store is made for
    applied = apply_migrations(database_url(settings), embedder.model, embedder.dimensions)
    version = latest_schema_version()
    if as_json:
        _print_json({"applied": applied, "schema_version": version})
    elif applied:
        out.print(f"applied {', '.join(applied)}: schema version {version}", highlight=False, soft_wrap=True)
    else:
        out.print(f"schema version {version}: up to date, nothing applied", highlight=False)


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (it stays up for the next commands)."""
    from kg.db import database_url

    settings = _settings()
    if settings.database_url:
        raise InvalidInput("KG_DATABASE_URL is set: the embedded server is not used")
    database_url(settings)
    out.print(f"running: {settings.embedded_pgdata}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    from kg.db import stop_embedded

    out.print("stopped" if stop_embedded(_settings()) else "not running")


@db_app.command("status")
def db_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Which graph database is in use (the embedded server, or KG_DATABASE_URL), whether it answers,
    and its schema version. Does not start the embedded server; passwords are hidden."""
    from kg.db import database_status

    state = database_status(_settings())
    if as_json:
        _print_json(state)
        return
    if state["database"] == "embedded":
        out.print(f"database: embedded PostgreSQL in {state['pgdata']}, "
                  f"{'running' if state['running'] else 'stopped'}", soft_wrap=True)
    else:
        out.print("database: KG_DATABASE_URL", highlight=False)
    if state["url"]:
        out.print(f"url: {state['url']}", highlight=False, soft_wrap=True)
    out.print("reachable: yes" if state["reachable"] else f"reachable: no ({state['error']})",
              highlight=False, soft_wrap=True)
    version, latest = state["schema_version"], state["latest_schema_version"]
    if state["reachable"]:
        if version is None:
            schema = "none yet: `kg db migrate` (or the first ingest) makes it"
        elif version < latest:
            schema = f"version {version}, this kg needs {latest}: run `kg db migrate`"
        else:
            schema = f"version {version}" + (", current" if version == latest else f", newer than this kg's {latest}")
        out.print(f"schema: {schema}", highlight=False, soft_wrap=True)


@db_app.command("url")
def db_url() -> None:
    """The connection URL of the graph database (starts the embedded server if needed)."""
    from kg.db import database_url

    print(database_url(_settings()))


# -- querying the graph (kg.search): the same functions and payloads as the MCP tools and the API ----


def _open_search(settings: Settings, *, embeds: bool = True):
    """The graph, and (`embeds`) the embedder queries are embedded with: the one of the model the
    store was built with (kg_meta), whatever the settings' provider, so that a query and the stored
    vectors are of one space. An OpenAI-built store without OPENAI_API_KEY is InvalidInput."""
    from kg.db import open_database
    from kg.graph.postgres import PostgresGraphStore
    from kg.providers import store_embedder

    if settings.engine != "local":
        raise InvalidInput(f"this command works on the local engine only, and KG_ENGINE is {settings.engine}")
    db = open_database(settings, migrate=True)
    try:
        embedder = store_embedder(settings, db.embedding_model, db.dimensions) if embeds else None
    except BaseException:
        db.close()
        raise
    return db, PostgresGraphStore(db), embedder


def _sources(sources: list[str] | None) -> list[str] | None:
    """`--source notes.txt` names what `kg ingest notes.txt` stored: its absolute path."""
    if not sources:
        return None
    named = []
    for source in sources:
        named.append(source)
        resolved = str(Path(source).resolve())
        if resolved != source and Path(source).exists():
            named.append(resolved)
    return named


def _weights(text: str | None) -> dict[str, str] | None:
    """--weights "entity=0.5,semantic=0.5": the lists not named keep their default weight."""
    if text is None:
        return None
    weights = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--weights {text!r}: give list=weight pairs, e.g. entity=0.3,semantic=0.5")
        weights[name.strip()] = value.strip()
    return weights


_SHORT_TYPES = {"ENTITY_ENTITY": "EE", "ENTITY_EVENT": "EV", "EVENT_EVENT": "VV", "EMOTIONAL_CONTEXT": "EMO"}


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("search")
def search_graph(
    query: Annotated[str, typer.Argument(help="What to look for, in words (at most 2,000 characters).")],
    limit: Annotated[int, typer.Option(help="How many triples, 1 to 100.")] = 10,
    threshold: Annotated[float, typer.Option(help="The least cosine similarity of the query and what matched, "
                                                  "0 (none) to 1.")] = 0.3,
    triple_types: Annotated[list[str] | None, typer.Option("--type", help="Only triples of this type (repeatable): "
                            "ENTITY_ENTITY, ENTITY_EVENT, EVENT_EVENT, EMOTIONAL_CONTEXT.")] = None,
    sources: Annotated[list[str] | None, typer.Option("--source", help="Only triples from this document "
                       "(repeatable; its source, or the path it was ingested from).")] = None,
    source_types: Annotated[list[str] | None, typer.Option("--source-type", help="Only triples from documents of "
                            "this source type (repeatable).")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="Only triples from documents dated on or after "
                                                                "this (ISO-8601).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Only triples from documents dated on or before this "
                                                            "(a date alone: its whole day).")] = None,
    lists: Annotated[list[str] | None, typer.Option("--list", help="Search only this list (repeatable): entity, "
                     "relationship, semantic, concept.")] = None,
    weights: Annotated[str | None, typer.Option(help="Fusion weights, e.g. entity=0.3,relationship=0.2,"
                                                      "semantic=0.3,concept=0.2 (the defaults).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fusion search: triples ranked by entity, relationship, statement and concept matches, with their sources."""
    from kg.search import SearchRequest, parse_request, search as run_search

    request = parse_request(
        SearchRequest, query=query, limit=limit, threshold=threshold, sources=_sources(sources),
        types=[t.upper() for t in triple_types] if triple_types else None, source_types=source_types or None,
        date_from=date_from, date_to=date_to, search_types=lists or None, weights=_weights(weights))
    db, graph, embedder = _open_search(_settings())
    with db:
        response = run_search(request, graph, embedder)
    if as_json:
        _print_json(response.model_dump(mode="json"))
        return
    if not response.hits:
        out.print("no triples match", highlight=False)
        return
    table = Table("#", "score", "subject", "predicate", "object", "type", "conf.",
                  title=f"{query} ({response.took_ms:.0f} ms)", title_justify="left")
    for n, hit in enumerate(response.hits, start=1):
        table.add_row(str(n), f"{hit.score:.4f}", hit.subject, hit.predicate, hit.object, _SHORT_TYPES[hit.type],
                      f"{hit.confidence:.2f}")
    out.print(table)
    for n, hit in enumerate(response.hits, start=1):  # where each is said: the first supporting sentence
        if hit.sources:
            first = hit.sources[0]
            out.print(f"{n:>3}. {Path(first.source).name} #{first.chunk_index} [{first.start}:{first.end}] "
                      f"{_clip(first.text, 200)}", highlight=False, markup=False, soft_wrap=True)


@app.command("concepts")
def search_concepts_command(
    query: Annotated[str, typer.Argument(help="The idea to look for (at most 2,000 characters).")],
    level: Annotated[str | None, typer.Option(help="Only concepts of this abstraction level: high, medium "
                                                    "or low.")] = None,
    limit: Annotated[int, typer.Option(help="How many concepts, 1 to 100.")] = 10,
    members: Annotated[int, typer.Option(help="Elements listed per concept, 1 to 100.")] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Concepts near a query, with the entities, events and relations each covers."""
    from kg.search import ConceptRequest, parse_request, search_concepts

    request = parse_request(ConceptRequest, query=query, level=level.lower() if level else None, limit=limit,
                            members=members)
    db, graph, embedder = _open_search(_settings())
    with db:
        response = search_concepts(request, graph, embedder)
    if as_json:
        _print_json(response.model_dump(mode="json"))
        return
    if not response.concepts:
        out.print("no concepts match", highlight=False)
        return
    table = Table("concept", "level", "similarity", "elements", title=query, title_justify="left")
    for concept in response.concepts:
        names = ", ".join(e.name for e in concept.elements[:8])
        more = concept.element_count - min(8, len(concept.elements))
        table.add_row(concept.name, concept.level, f"{concept.similarity:.3f}",
                      names + (f" (+{more} more)" if more > 0 else ""))
    out.print(table)


@app.command("neighbors")
def neighbors_command(
    node: Annotated[str, typer.Argument(help="A node's name (as `kg search` shows it), or its id.")],
    hops: Annotated[int, typer.Option(help="How far from the node, 1 to 3 triples.")] = 1,
    limit: Annotated[int, typer.Option(help="At most this many triples, 1 to 500.")] = 50,
    triple_types: Annotated[list[str] | None, typer.Option("--type", help="Only triples of this type "
                                                                           "(repeatable).")] = None,
    kind: Annotated[str | None, typer.Option(help="Of the nodes with that name, only this kind: entity, event "
                                                   "or emotion.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A node's neighbourhood: every triple within --hops of it, nearest hops first."""
    from kg.search import NeighborsRequest, neighbors, parse_request

    request = parse_request(NeighborsRequest, node=node, hops=hops, limit=limit, kind=kind,
                            types=[t.upper() for t in triple_types] if triple_types else None)
    db, graph, _ = _open_search(_settings(), embeds=False)
    with db:
        response = neighbors(request, graph)
    if as_json:
        _print_json(response.model_dump(mode="json"))
        return
    centres = ", ".join(f"{c.name} ({c.kind})" for c in response.centres)
    table = Table("hop", "subject", "predicate", "object", "type", "conf.", title_justify="left",
                  title=f"{centres}: {len(response.triples)} triples and {len(response.nodes) - len(response.centres)} "
                        f"nodes within {hops} hop{'s' if hops > 1 else ''}")
    for t in response.triples:
        table.add_row(str(t.hop), t.subject, t.predicate, t.object, _SHORT_TYPES[t.type], f"{t.confidence:.2f}")
    out.print(table)
    if response.truncated:
        err.print(f"(cut at --limit {limit}: there are more)", highlight=False)


# -- serving the graph: the HTTP API (kg.serve) and an MCP server (kg.mcp_server) ------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="The address to listen on (no authentication: keep it local)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The port (0: any free one)")] = 8000,
) -> None:
    """The REST API of the stack (jobs, search, stats, deletes) on this machine and the local engine;
    its OpenAPI document at /openapi.json."""
    try:
        from kg.serve import LocalApiServer, LocalBackend
    except ImportError as e:
        raise InvalidInput(f"kg serve needs the aws extra (the API's resolver): pip install 'kg-pipeline[aws]' ({e})"
                           ) from None
    settings = _settings()
    if settings.engine != "local":
        raise InvalidInput(f"kg serve runs the local engine, and KG_ENGINE is {settings.engine}: the stack's API is "
                           "its ApiUrl output")
    backend = LocalBackend(settings)
    try:
        server = LocalApiServer(backend, host, port)
    except OSError as e:
        backend.close()
        raise InvalidInput(f"cannot listen on {host}:{port} ({e.strerror})") from None
    err.print(f"kg serve: {server.url} (web view: {server.url}/, OpenAPI document: {server.url}/openapi.json); "
              "Ctrl-C stops", highlight=False)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped as by Ctrl-C: queued jobs end FAILED
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        backend.close()


@app.command("mcp")
def mcp_command() -> None:
    """An MCP server on stdio (tools process_knowledge, get_pipeline_status, search_knowledge_graph,
    search_concepts, get_knowledge_graph_stats), on the engine KG_ENGINE."""
    try:
        from kg.mcp_server import serve_stdio
    except ImportError as e:
        raise InvalidInput(f"kg mcp needs the local and aws extras: pip install 'kg-pipeline[local,aws]' ({e})"
                           ) from None
    serve_stdio(_settings())


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _database_gone(error: BaseException) -> bool:
    """A psycopg error that means the database cannot be used now (it stopped, dropped the
    connection, refused new ones, or the pool waited in vain), rather than a bug of ours."""
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(error, psycopg.OperationalError)  # psycopg_pool.PoolTimeout and AdminShutdown too


def _fail(message: str, code: int) -> None:
    if _Options.debug:
        traceback.print_exc()
    print(f"kg: error: {message}", file=sys.stderr)
    sys.exit(code)


def main() -> None:
    try:
        app()
    except (InvalidInput, NotFound) as e:
        _fail(_first_line(e), EXIT_BAD_INPUT)
    except KgError as e:
        _fail(_first_line(e), EXIT_FAILED)
    except KeyboardInterrupt:
        err.print("kg: interrupted")
        sys.exit(130)
    except Exception as e:  # nothing else may end the command with a traceback (--debug shows it)
        if _database_gone(e):
            _fail(f"the graph database is out of reach: {_first_line(e)}", EXIT_FAILED)
        else:
            _fail(f"{type(e).__name__}: {_first_line(e)} (--debug shows where)", EXIT_FAILED)


if __name__ == "__main__":
    main()
