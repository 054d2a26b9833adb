"""The web view at `/` of `kg serve`, driven in Chromium as a user drives it: a document uploaded
through the page (file picker, or dropped) becomes a job the page follows to SUCCEEDED; the graph
is searched, a neighbourhood drawn, an edge clicked to the text that supports it; a document is
deleted and the graph is empty; a binary file is refused with a clear message. The console has no
errors in any of them, and each saves a screenshot under artifacts/screenshots/."""

from __future__ import annotations

import re
import urllib.parse

from tests.browser.conftest import Page, Served

SOURCE = "curie-notes.txt"
TEXT = (
    "Marie Curie worked in Paris with Pierre Curie. Pierre Curie taught physics at the Sorbonne. "
    "Marie Curie discovered polonium in 1898 with Pierre Curie. Marie Curie received the Nobel Prize in 1911. "
    "Pierre Curie admired Marie Curie.\n"
)
JOB_WAIT_MS = 180_000  # the first job of a session loads spaCy and the embedding model


def wait_for_status(page: Page, status: str) -> None:
    """The job page, refreshing itself, reaches `status` (a bound on waiting, not a timed assertion)."""
    page.page.locator("#job-status").get_by_text(status, exact=True).wait_for(timeout=JOB_WAIT_MS)


def ingest(served: Served, source: str = SOURCE, text: str = TEXT) -> str:
    """The document through POST /jobs, as the page sends it, its job run to its end."""
    accepted = served.post("/jobs", {"source": source, "text": text})
    served.backend.wait(timeout=JOB_WAIT_MS / 1000)
    job = served.get(f"/jobs/{accepted['job_id']}")
    assert job["status"] == "SUCCEEDED", job
    return accepted["job_id"]


def drop_file(page: Page, selector: str, name: str, text: str) -> None:
    """Drag-and-drop of a file onto `selector`, with the browser's own DataTransfer and File."""
    transfer = page.page.evaluate_handle(
        "([name, text]) => { const dt = new DataTransfer();"
        " dt.items.add(new File([text], name, { type: 'text/plain' })); return dt; }", [name, text])
    page.page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    page.page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_a_document_uploaded_with_the_file_picker_becomes_a_job_that_reaches_succeeded(page, served, tmp_path):
    document = tmp_path / SOURCE
    document.write_text(TEXT)
    page.page.goto(served.url + "/")
    page.page.get_by_text("No documents yet").wait_for()
    page.page.set_input_files("#file-input", str(document))

    page.page.wait_for_url(re.compile(r"#/jobs/[0-9a-f-]{36}$"))
    wait_for_status(page, "SUCCEEDED")
    job_id = urllib.parse.unquote(page.page.url.rsplit("/", 1)[1])
    job = served.get(f"/jobs/{job_id}")
    assert job["source"] == SOURCE and job["status"] == "SUCCEEDED" and job["counts"]["triples"]["total"] > 0
    # The page shows the job the API holds: its chunk ledger, its triples, its LLM usage (none offline).
    assert page.page.locator("#chunk-ledger tbody tr").count() == job["chunks_total"] >= 1
    first = page.page.locator("#chunk-ledger tbody tr").first.locator("td")
    assert job["chunks"][0]["attempts"] == 1
    assert [first.nth(i).inner_text() for i in (0, 2, 3)] == ["0", "1", str(job["chunks"][0]["triples"])]
    body = page.page.locator("#job-body").inner_text()
    assert f"{job['chunks_done']} of {job['chunks_total']} done" in body
    assert re.search(rf"triples › total\s+{job['counts']['triples']['total']}", body), body
    assert "LLM calls, tokens and cost" in body
    page.screenshot("upload-job-succeeded", full_page=True)

    page.page.get_by_role("link", name="Documents").click()
    row = page.page.locator("#documents-table tbody tr", has_text=SOURCE)
    row.wait_for()
    [stored] = served.get("/documents")["documents"]
    assert row.locator("td.num").nth(1).inner_text() == str(stored["triples"]) and stored["triples"] > 0
    assert "SUCCEEDED" in row.inner_text()
    page.page.get_by_role("link", name="Jobs", exact=True).click()
    page.page.locator("#jobs-table tbody tr", has_text=SOURCE).get_by_text("SUCCEEDED").wait_for()
    page.screenshot("documents-list")
    assert page.errors == []


def test_search_opens_a_neighbourhood_and_an_edge_shows_its_supporting_text(page, served):
    ingest(served)
    page.page.goto(served.url + "/#/graph")
    # Keyboard only: type the query, submit, then Tab to the first result and press Enter.
    page.page.focus("#search-input")
    page.page.keyboard.type("Pierre Curie")
    page.page.keyboard.press("Enter")
    page.page.locator(".hits li").first.wait_for()
    for _ in range(10):
        if page.page.evaluate("document.activeElement.classList.contains('hit')"):
            break
        page.page.keyboard.press("Tab")
    hit = page.page.evaluate("document.activeElement.textContent")
    subject = hit.split(" — ")[0]
    page.page.keyboard.press("Enter")

    caption = page.page.locator("#graph-caption")
    caption.filter(has_text="nodes and").wait_for()
    drawn = page.page.evaluate("kg.graph.cy.nodes().map(n => n.data('name'))")
    neighbourhood = served.get("/neighbors?" + urllib.parse.urlencode({"node": subject, "limit": 150}))
    assert sorted(drawn) == sorted(n["name"] for n in neighbourhood["nodes"]) and subject in drawn
    assert page.page.locator("#details mark").count() >= 1  # the hit's own triple, its span marked

    # Click, on the canvas, an edge other than the hit's: its triple and the text that supports it.
    edge = page.page.evaluate(
        "() => { const cy = kg.graph.cy; const selected = cy.edges(':selected').map(e => e.id());"
        " const e = cy.edges().filter(e => !selected.includes(e.id()))[0];"
        " const p = e.renderedMidpoint(); return { id: e.id(), x: p.x, y: p.y, predicate: e.data('predicate') }; }")
    box = page.page.locator("#cy").bounding_box()
    page.page.mouse.click(box["x"] + edge["x"], box["y"] + edge["y"])
    details = page.page.locator("#details")
    details.locator("h3.triple", has_text=edge["predicate"]).wait_for()
    triple = served.get(f"/triples/{edge['id']}")
    assert triple["subject"] in details.locator("h3.triple").inner_text()
    marks = details.locator("mark")
    assert marks.count() == len(triple["sources"]) >= 1
    assert marks.first.inner_text() == triple["sources"][0]["text"]
    assert f"{triple['confidence']:.2f}" in details.inner_text()
    page.screenshot("graph-edge-sources")

    # A node: its aliases, concepts and facts.
    centre = page.page.evaluate(
        "() => { const n = kg.graph.cy.nodes('[?centre]')[0]; const p = n.renderedPosition();"
        " return { id: n.id(), name: n.data('name'), x: p.x, y: p.y }; }")
    page.page.mouse.click(box["x"] + centre["x"], box["y"] + centre["y"])
    details.locator("h3", has_text=centre["name"]).wait_for()
    node = served.get(f"/nodes/{centre['id']}")
    assert details.get_by_role("heading", name=re.compile(r"^Facts \(")).inner_text().startswith(
        f"Facts ({len(node['triples'])}")
    assert "Concepts" in details.inner_text() and "Aliases" in details.inner_text()

    # Two hops reach at least as far; a type filtered out leaves no edge of that type.
    page.page.select_option("#hops", "2")
    caption.filter(has_text="within 2 hops").wait_for()
    assert page.page.evaluate("kg.graph.cy.nodes().length") >= len(neighbourhood["nodes"])
    page.page.get_by_label("entity–event").uncheck()
    page.page.wait_for_function("() => kg.graph.cy.edges('[type = \"ENTITY_EVENT\"]').length === 0")
    assert page.page.locator("#edge-list li", has_text="ENTITY_EVENT").count() == 0
    page.page.get_by_label("entity–event").check()

    # A narrow window: one column, nothing wider than the window.
    page.page.set_viewport_size({"width": 420, "height": 900})
    assert page.page.evaluate("document.documentElement.scrollWidth") <= 420
    page.screenshot("graph-narrow", full_page=True)
    assert page.errors == []


def test_deleting_a_dropped_document_after_confirming_leaves_the_graph_empty(page, served):
    page.page.goto(served.url + "/")
    page.page.get_by_text("No documents yet").wait_for()
    drop_file(page, "#drop-zone", SOURCE, TEXT)
    page.page.wait_for_url(re.compile(r"#/jobs/"))
    wait_for_status(page, "SUCCEEDED")
    assert served.get("/stats")["triples"] > 0

    page.page.get_by_role("link", name="Documents").click()
    page.page.get_by_role("button", name=f"Delete {SOURCE}").click()
    dialog = page.page.locator("#confirm-dialog")
    assert dialog.is_visible()
    [stored] = served.get("/documents")["documents"]
    warning = dialog.inner_text()
    assert SOURCE in warning and f"{stored['triples']} triples" in warning and "cannot be undone" in warning
    page.screenshot("delete-confirmation")
    page.page.get_by_role("button", name="Delete", exact=True).click()

    page.page.get_by_role("status").filter(has_text=f"Deleted {SOURCE}").wait_for()
    page.page.get_by_text("No documents yet").wait_for()
    stats = served.get("/stats")
    assert (stats["documents"], stats["triples"], stats["entities"]) == (0, 0, 0)

    page.page.get_by_role("link", name="Graph explorer").click()
    page.page.fill("#search-input", "Marie Curie")
    page.page.press("#search-input", "Enter")
    page.page.locator("#no-hits").wait_for()
    assert page.page.evaluate("kg.graph.cy.elements().length") == 0
    page.page.get_by_role("link", name="Overview").click()
    totals = page.page.locator("#totals")
    totals.wait_for()
    assert re.search(r"^0\s+Triples$", totals.locator("li", has_text="Triples").inner_text(), re.M)
    page.screenshot("deleted-overview-empty")
    assert page.errors == []


def test_a_binary_file_is_refused_with_a_clear_message_and_nothing_is_started(page, served, tmp_path):
    for name, data, reason in (("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "NUL bytes"),
                               ("latin1.txt", "Marie Curie, née à Varsovie".encode("latin-1"), "UTF-8")):
        path = tmp_path / name
        path.write_bytes(data)
        page.page.goto(served.url + "/")
        page.page.get_by_text("No documents yet").wait_for()
        page.page.set_input_files("#file-input", str(path))
        alert = page.page.get_by_role("alert").filter(has_text=name)
        alert.wait_for()
        assert "is not a text document" in alert.inner_text() and reason in alert.inner_text()
        assert page.page.url.endswith("/")  # still on the documents, no job to follow
    assert served.get("/jobs")["jobs"] == [] and served.get("/documents")["documents"] == []
    page.screenshot("binary-upload-refused")
    assert page.errors == []


def test_an_error_from_the_api_is_a_message_on_the_page(page, served):
    ingest(served)
    page.page.goto(served.url + "/#/graph")
    page.page.fill("#node-input", "Nobody Atall")
    page.page.press("#node-input", "Enter")
    alert = page.page.get_by_role("alert")
    alert.wait_for()
    assert "no node named 'Nobody Atall'" in alert.inner_text()
    page.page.goto(served.url + "/#/jobs/no-such-job")
    page.page.get_by_role("alert").filter(has_text="no-such-job").wait_for()
    page.screenshot("api-error-message")
    # The browser logs the answers' 404s themselves; nothing else may be an error.
    assert [e for e in page.errors if "status of 404" not in e] == []
