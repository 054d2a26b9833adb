"""The web view in a real browser: Playwright driving Debian's Chromium (never `playwright install`:
its download is out of reach), against `kg serve`'s server (kg.serve.LocalApiServer) on 127.0.0.1
with the offline engine and a fresh database of the session's embedded PostgreSQL per test.

Without playwright, Chromium or the page's vendored library these tests skip, loudly (the reason,
and a red section at the end of the run); with KG_REQUIRE_GRAPH_TESTS=1 (CI, .ci/run) they fail."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kg.settings import Settings

# The integration layer's session models (MiniLM, the heuristic conceptualizer), shared.
from tests.integration.conftest import conceptualizer, embedder  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"  # .ci/run lists them at the end of its log
BROWSER_SKIP = "browser tests need playwright and Chromium"
VIEWPORT = {"width": 1280, "height": 800}
_skipped: list[str] = []


def chromium_path() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)


def _why_not() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return "Chromium is not installed (apt-get install -y chromium)"
    from kg.web import HERE

    if not (HERE / "vendor" / "cytoscape.min.js").exists():
        return "the web view's graph library is not installed (bash scripts/install.sh)"
    return None


# Module scope, not session: Playwright's sync API keeps an event loop running on the main thread
# until it stops, and any later test that calls asyncio.run (the MCP client test) would then fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    why = _why_not()
    if why is not None:
        if os.environ.get("KG_REQUIRE_GRAPH_TESTS") == "1":
            pytest.fail(f"KG_REQUIRE_GRAPH_TESTS=1, and the browser tests cannot run: {why}")
        _skipped.append(why)
        pytest.skip(f"{BROWSER_SKIP}: {why}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _skipped:
        terminalreporter.section("browser tests skipped", sep="!", red=True, bold=True)
        terminalreporter.write_line(f"the web view was NOT tested in a browser: {_skipped[0]}", red=True, bold=True)


# -- the server ------------------------------------------------------------------------------------


@dataclass
class Served:
    url: str
    backend: Any  # kg.serve.LocalBackend

    def get(self, path: str) -> Any:
        import json
        import urllib.request

        with urllib.request.urlopen(self.url + path, timeout=60) as answer:
            return json.loads(answer.read())

    def post(self, path: str, body: Any) -> Any:
        import json
        import urllib.request

        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())


@pytest.fixture
def served(database_url: str, tmp_path: Path, embedder, conceptualizer) -> Iterator[Served]:  # noqa: F811
    """`kg serve` as the command builds it (LocalBackend behind LocalApiServer), on a free port of
    127.0.0.1, the offline extractor, a fresh database."""
    from kg.engine.local import open_local_ports
    from kg.serve import LocalApiServer, LocalBackend

    settings = Settings(database_url=database_url, data_dir=tmp_path / "kg", llm_provider="offline",
                        embedding_provider="offline")
    backend = LocalBackend(settings, open_local_ports(settings, embedder=embedder, conceptualizer=conceptualizer))
    try:
        with LocalApiServer(backend, "127.0.0.1", 0) as server:
            yield Served(server.url, backend)
    finally:
        backend.close()


# -- the page --------------------------------------------------------------------------------------


@dataclass
class Page:
    """A browser page, and what its console said that was wrong."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str, **options: Any) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), **options)
        return path


@pytest.fixture
def page(browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    opened = Page(context.new_page())
    opened.page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    opened.page.on("pageerror", lambda e: opened.errors.append(f"uncaught: {e}"))
    opened.page.set_default_timeout(30_000)
    yield opened
    context.close()
