"""`kg serve`: the stack's REST API on this machine, over the local engine.

The same resolver answers (kg.api): each HTTP request becomes the Lambda proxy event API Gateway
would send, and the resolver's answer goes back as HTTP, so that the routes, payloads and errors of
`kg serve` and of the deployed API cannot drift apart. Its OpenAPI document is at /openapi.json.
The web view (kg.web) is at `/`.
`POST /jobs` runs the job in a background thread and answers 202 at once; the job id is derived from
the submission as on AWS (kg.aws.jobs.job_key), so the same submission again is the same job.

There is no authentication: it binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aws_lambda_powertools.event_handler.openapi.models import Server

from kg import api, web
from kg.api import ExecutionView, JobSubmission, Submitted
from kg.aws.jobs import (
    MAX_ATTEMPTS,
    content_of,
    default_options,
    job_key,
    latest_attempt,
)
from kg.db import Database, open_database
from kg.documents import decode_document
from kg.embeddings import Embedder
from kg.engine.local import LocalPorts, ingest, new_lease, open_local_ports, prepare
from kg.errors import InvalidInput, ProviderUnavailable
from kg.graph import GraphStore
from kg.graph.postgres import PostgresGraphStore
from kg.ledger import Ledger
from kg.ledger.postgres import PostgresLedger
from kg.llm.batch import check_batch_settings
from kg.models import DocumentInput, JobRecord, JobStatus
from kg.providers import store_embedder
from kg.settings import Settings
from kg.stages import fail_job
from kg.stages.contract import FailRequest, JobOptions

log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
STOPPED = "the server stopped before the job ran; submit it again"


class LocalBackend:
    """kg.api.ApiBackend on the local engine: jobs run one after another in a background thread
    (each extracts its chunks with KG_MAX_CONCURRENCY threads), recorded in the PostgreSQL ledger.

    The reading routes (jobs, stats, search, deletes) use the store as it was built: its own
    embedding model (kg_meta), the queries embedded with it. Only a submission opens the ingest
    ports the settings choose (extractor, embedder), at the first one; a store built for other
    vectors refuses them then (StoreMismatch: 503), and the reading routes go on."""

    def __init__(self, settings: Settings, ports: LocalPorts | None = None):
        self.settings = settings
        self._ports = ports
        self._opening = threading.Lock()
        self._db: Database | None = None
        if ports is None:
            self._db = open_database(settings, migrate=True)  # the store's own embedding space
            self._graph: GraphStore = PostgresGraphStore(self._db)
            self._ledger: Ledger = PostgresLedger(self._db)
        else:
            self._graph, self._ledger = ports.graph, ports.ledger
        self._embedder: Embedder | None = ports.embedder if ports else None
        self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job")
        self._submitting = threading.Lock()  # one submission at a time: the same one twice is one job
        self._queued: dict[str, tuple[Future[None], str]] = {}
        # The jobs waiting in this server are held under one lease, renewed while it lives: if the
        # process dies they read INTERRUPTED once it lapses, and `kg resume` runs them (their text and
        # spec are stored at submission).
        self._lease = new_lease(settings)
        self._stopping = threading.Event()
        self._renewer = threading.Thread(target=self._renew_leases, name="job-leases", daemon=True)
        self._renewer.start()

    @property
    def ports(self) -> LocalPorts:
        """The ingest ports, opened at the first submission."""
        with self._opening:
            if self._ports is None:
                self._ports = open_local_ports(self.settings)
            return self._ports

    def submit(self, submission: JobSubmission) -> Submitted:
        if submission.text is None:
            raise InvalidInput("text_key names an object of the stack's bucket: send the document itself as `text` "
                               "to the local engine")
        data = submission.text.encode()
        document = decode_document(data, submission.source, self.settings.max_document_bytes,
                                   submission.source_type, submission.source_date)
        options = default_options(self.settings).model_copy(update=submission.options.model_dump(exclude_none=True))
        if options.llm_batch:
            check_batch_settings(self.settings)
        key = job_key(submission.source, content_of(data), submission.source_type, submission.source_date, options)
        with self._submitting:
            attempt, latest = latest_attempt(key, self.ports.ledger)
            if latest is not None and not (submission.rerun and latest.status.finished):
                return Submitted(job_id=latest.job_id, source=latest.source, status=latest.status, started=False)
            if attempt >= MAX_ATTEMPTS:
                raise InvalidInput(f"{key.source}: this document has run {MAX_ATTEMPTS} times; "
                                   "change its source name to run it again")
            job_id = key.job_id(attempt + 1)
            prepare(document, self.ports, self.settings, job_id=job_id, options=options)
            self.ports.ledger.create_job(job_id, document.source, lease=self._lease)  # QUEUED: readable at once
            future = self._jobs.submit(self._run, document, job_id, options)
            self._queued[job_id] = (future, document.source)
            future.add_done_callback(lambda _: self._queued.pop(job_id, None))
        return Submitted(job_id=job_id, source=document.source, status=JobStatus.QUEUED, started=True)

    def get_job(self, job_id: str) -> JobRecord:
        return self._ledger.get(job_id, with_chunks=True)

    def list_jobs(self, limit: int) -> list[JobRecord]:
        return self._ledger.list_jobs(limit)

    def execution(self, job_id: str) -> ExecutionView | None:
        return None  # the local engine runs jobs in this process: there is no execution to show

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def graph(self) -> GraphStore:
        return self._graph

    @property
    def embedder(self) -> Embedder:
        """The queries' embedder: the store's own model, made at the first query."""
        with self._opening:
            if self._embedder is None:
                try:
                    self._embedder = store_embedder(self.settings, *self._graph.embedding_space())
                except InvalidInput as e:  # an OpenAI-built store and no key: the server's settings, not the request
                    raise ProviderUnavailable(str(e)) from None
            return self._embedder

    def wait(self, timeout: float | None = None) -> None:
        """Until the jobs submitted so far have ended (tests)."""
        for future, _ in list(self._queued.values()):
            future.result(timeout)

    def close(self) -> None:
        """Jobs not started yet end FAILED (they would otherwise stay QUEUED forever); the one running finishes."""
        for job_id, (future, source) in list(self._queued.items()):
            if future.cancel():
                fail_job(FailRequest(job_id=job_id, error=STOPPED, source=source), self.ports.ledger, self.ports.blobs)
        self._jobs.shutdown(wait=True)
        self._stopping.set()
        self._renewer.join(timeout=1)
        if self._ports is not None:
            self._ports.close()
        if self._db is not None:
            self._db.close()

    def _run(self, document: DocumentInput, job_id: str, options: JobOptions) -> None:
        try:
            ingest(document, self.ports, self.settings, job_id=job_id, options=options, lease=self._lease)
        except InvalidInput as e:  # plan refused it: the job was opened QUEUED, so it ends FAILED with the reason
            fail_job(FailRequest(job_id=job_id, error=str(e), source=document.source), self.ports.ledger,
                     self.ports.blobs)
        except Exception:  # ingest ends the job itself; what is left is a bug, for the log
            log.exception("job %s", job_id)

    def _renew_leases(self) -> None:
        while not self._stopping.wait(self._lease.seconds / 3):
            for job_id in list(self._queued):
                try:
                    self._ledger.renew_lease(job_id, self._lease)
                except Exception as e:  # the database is away: the next tick tries again
                    log.info("job %s: lease not renewed: %s", job_id, e)


def local_openapi_document(url: str) -> str:
    return api.openapi_document(servers=[Server(url=url, description="kg serve")],
                                description=api.API_DESCRIPTION_LOCAL)


def proxy_event(method: str, target: str, headers: list[tuple[str, str]], body: str | None) -> dict[str, Any]:
    """The REST API's Lambda proxy event for one HTTP request, as API Gateway builds it: the path as
    sent (still URL-encoded: the resolver decodes what its routes match), the query decoded, each
    header and parameter also with all its values."""
    parts = urlsplit(target)
    path = "/" + parts.path.lstrip("/")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_query.setdefault(name, []).append(value)
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    return {
        "resource": path, "path": path, "httpMethod": method,
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None, "stageVariables": None,
        "requestContext": {"resourcePath": path, "httpMethod": method, "stage": "local", "path": path,
                           "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "127.0.0.1"}},
        "body": body, "isBase64Encoded": False,
    }


class LocalApiServer:
    """`with LocalApiServer(backend, host, port) as server:` serves `server.url` in a thread;
    `serve_forever()` serves in the caller's."""

    def __init__(self, backend: LocalBackend, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
        self.backend = backend
        self._resolving = threading.Lock()  # the resolver answers one request at a time (kg.api.handle)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server._answer(self)

            do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                log.info("%s %s", self.address_string(), format % args)

        self._http = ThreadingHTTPServer((host, port), Handler)
        self._http.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.openapi = local_openapi_document(self.url).encode()

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        self._http.serve_forever()

    def close(self) -> None:
        self._http.shutdown() if self._thread else None
        self._http.server_close()

    def __enter__(self) -> LocalApiServer:
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _answer(self, http: BaseHTTPRequestHandler) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        data = http.rfile.read(length) if length > 0 else b""
        if urlsplit(http.path).path == "/openapi.json" and http.command in ("GET", "HEAD"):
            return self._send(http, HTTPStatus.OK, {"Content-Type": "application/json"}, self.openapi)
        page = web.asset(urlsplit(http.path).path) if http.command in ("GET", "HEAD") else None
        if page is not None:  # the web view (kg.web): `/` and its files, same origin as the API
            return self._send(http, HTTPStatus(page.status), {"Content-Type": page.content_type, **web.HEADERS},
                              page.body)
        try:
            body = data.decode() if data else None
        except UnicodeDecodeError:
            return self._send(http, HTTPStatus.BAD_REQUEST, {"Content-Type": "application/json"},
                              json.dumps({"error": "the body is not UTF-8: send JSON"}).encode())
        event = proxy_event(http.command, http.path, list(http.headers.items()), body)
        try:
            with self._resolving:
                answer = api.handle(event, None, self.backend)
        except Exception:  # a bug of ours: the caller gets a 500, the log the traceback
            log.exception("%s %s", http.command, http.path)
            answer = {"statusCode": 500, "body": json.dumps({"error": "the API failed to answer; see its log"})}
        headers = dict(answer.get("headers") or {})
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        self._send(http, HTTPStatus(answer["statusCode"]), headers, (answer.get("body") or "").encode())

    @staticmethod
    def _send(http: BaseHTTPRequestHandler, status: HTTPStatus, headers: dict[str, str], payload: bytes) -> None:
        http.send_response(status.value)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            http.send_header(name, value)
        http.send_header("Content-Length", str(len(payload)))
        http.end_headers()
        if http.command != "HEAD":
            http.wfile.write(payload)
