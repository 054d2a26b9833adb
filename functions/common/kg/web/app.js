// The web view of `kg serve`: documents, jobs and the graph, over the same-origin REST API (kg/api.py).
// Plain module, no build step; the graph is drawn with Cytoscape.js (vendor/, installed from npm).
// Every value from the API is put in the page as text (textContent), never as HTML.

const TRIPLE_TYPES = ["ENTITY_ENTITY", "ENTITY_EVENT", "EVENT_EVENT", "EMOTIONAL_CONTEXT"];
const FINISHED = new Set(["SUCCEEDED", "PARTIAL", "FAILED"]);
const COLOURS = { entity: "#2f6fb3", event: "#c46a12", emotion: "#a23c8f", concept: "#2e8b57" };
const TYPE_COLOURS = { ENTITY_ENTITY: "#5b7fa6", ENTITY_EVENT: "#b07a3b", EVENT_EVENT: "#8a6d3b", EMOTIONAL_CONTEXT: "#9c5b91" };
const CONTEXT_CHARS = 320; // of the chunk shown either side of a supporting span
const NEIGHBOURHOOD_LIMIT = 150;

// -- the API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status; // the HTTP status the API answered; 0 when it did not answer
  }
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, {
      ...options,
      headers: { Accept: "application/json", ...(options.body ? { "Content-Type": "application/json" } : {}) },
    });
  } catch (e) {
    throw new ApiError(`The API did not answer (${e.message}): is kg serve still running?`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new ApiError(body && body.error ? body.error : `the API answered ${response.status} ${response.statusText}`,
      response.status);
  }
  return body;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== undefined && v !== null && v !== "") search.append(name, String(v));
    }
  }
  return search.toString();
}

// -- small helpers ------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const $ = (selector) => document.querySelector(selector);
const number = (n) => (typeof n === "number" ? n.toLocaleString("en") : String(n ?? "–"));
const when = (iso) => (iso ? new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" }) : "–");
const day = (iso) => (iso ? iso.slice(0, 10) : "–");
const statusBadge = (status) => h("span", { class: `badge status-${String(status).toLowerCase()}` }, status);
const tripleText = (t) => `${t.subject} — ${t.predicate} → ${t.object}`;
const plural = (n, word) => `${number(n)} ${word}${n === 1 ? "" : "s"}`;

function show(message, kind = "error") {
  const box = $("#messages");
  const item = h("div", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", {}, message),
    h("button", { type: "button", class: "dismiss", "aria-label": "Dismiss this message", onclick: () => item.remove() }, "×"));
  box.append(item);
  while (box.children.length > 4) box.firstElementChild.remove();
  return item;
}

function clearMessages() {
  $("#messages").replaceChildren();
}

// Runs an action; its error becomes a message on the page, never a blank page.
async function guarded(action) {
  try {
    return await action();
  } catch (e) {
    show(e instanceof ApiError ? e.message : `Something went wrong in the page: ${e.message}`);
    if (!(e instanceof ApiError)) console.warn(e);
    return undefined;
  }
}

// -- routing: #/documents, #/jobs, #/jobs/<id>, #/graph, #/overview ----------------------------

let refreshTimer = null;
let routeToken = 0;

function schedule(refresh, ms) {
  clearTimeout(refreshTimer);
  const token = routeToken;
  refreshTimer = setTimeout(async () => {
    if (token === routeToken) await refresh();
  }, ms);
}

async function route() {
  clearTimeout(refreshTimer);
  routeToken += 1;
  const [, view = "documents", id] = location.hash.match(/^#\/([a-z]+)(?:\/(.+))?$/) || [];
  const name = view === "jobs" && id ? "job" : view;
  const known = ["documents", "jobs", "job", "graph", "overview"];
  const current = known.includes(name) ? name : "documents";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${current}`;
  for (const link of document.querySelectorAll("nav a")) {
    const active = link.dataset.view === (current === "job" ? "jobs" : current);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (current === "documents") await refreshDocuments();
  else if (current === "jobs") await refreshJobs();
  else if (current === "job") await refreshJob(decodeURIComponent(id));
  else if (current === "graph") graph.resize();
  else if (current === "overview") await refreshOverview();
}

// -- documents ----------------------------------------------------------------------------------

async function refreshDocuments() {
  const token = routeToken;
  const result = await guarded(async () => {
    const [documents, jobs] = await Promise.all([api("/documents?limit=500"), api("/jobs?limit=100")]);
    if (token !== routeToken) return null;
    renderDocuments(documents.documents, jobs.jobs);
    return jobs.jobs;
  });
  if (token !== routeToken) return;
  const active = (result || []).some((job) => !FINISHED.has(job.status));
  schedule(refreshDocuments, result === undefined ? 10000 : active ? 1000 : 5000);
}

function renderDocuments(documents, jobs) {
  const latest = new Map();
  for (const job of jobs) if (!latest.has(job.source)) latest.set(job.source, job); // newest first
  const rows = documents.map((d) => {
    const job = latest.get(d.source);
    const jobCell = job
      ? h("span", {}, statusBadge(job.status), " ", h("a", { href: `#/jobs/${encodeURIComponent(job.job_id)}` }, when(job.created_at)))
      : h("a", { href: `#/jobs/${encodeURIComponent(d.job_id)}` }, d.job_id.slice(0, 8));
    return h("tr", {},
      h("th", { scope: "row", class: "source" }, d.source),
      h("td", {}, d.source_type), h("td", {}, day(d.source_date)),
      h("td", { class: "num" }, number(d.chunks)), h("td", { class: "num" }, number(d.triples)),
      h("td", {}, jobCell),
      h("td", {}, h("button", { type: "button", class: "danger small", "aria-label": `Delete ${d.source}`,
        onclick: () => confirmDelete(d) }, "Delete")));
  });
  // A document being ingested is not stored yet: its job stands in for it.
  const stored = new Set(documents.map((d) => d.source));
  const pending = [...latest.values()].filter((job) => !stored.has(job.source) && !FINISHED.has(job.status));
  const pendingRows = pending.map((job) => h("tr", { class: "pending" },
    h("th", { scope: "row", class: "source" }, job.source),
    h("td", { colspan: 4 }, h("progress", { max: 100, value: job.progress, "aria-label": `${job.source}: ${job.progress}%` }),
      ` ${job.stage.toLowerCase()} ${job.progress}%`),
    h("td", {}, statusBadge(job.status), " ", h("a", { href: `#/jobs/${encodeURIComponent(job.job_id)}` }, "follow")),
    h("td", {})));
  $("#documents-table tbody").replaceChildren(...pendingRows, ...rows);
  $("#documents-empty").hidden = rows.length + pendingRows.length > 0;
}

async function confirmDelete(d) {
  const dialog = $("#confirm-dialog");
  $("#confirm-title").textContent = `Delete ${d.source}?`;
  $("#confirm-text").textContent =
    `This removes ${d.source} from the graph: its ${plural(d.chunks, "chunk")} and its support for ` +
    `${plural(d.triples, "triple")}. Every triple, entity, event, relation and concept that no other document ` +
    "supports is removed with it. Its jobs stay in the ledger. This cannot be undone.";
  dialog.returnValue = "";
  dialog.showModal();
  const answer = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
  if (answer !== "confirm") return;
  await guarded(async () => {
    const removed = await api(`/documents/${encodeURIComponent(d.source)}`, { method: "DELETE" });
    show(`Deleted ${removed.source}: ${number(removed.triples)} triples, ${number(removed.nodes)} nodes, ` +
      `${number(removed.relations)} relations, ${number(removed.concepts)} concepts and ${number(removed.chunks)} chunks removed.`, "info");
    graph.clear("The graph changed: search again, or open a node.");
  });
  await refreshDocuments();
}

// -- upload -------------------------------------------------------------------------------------

// A document must be UTF-8 text, as the API checks (kg/documents.py); a binary file is refused here
// with the same reason, before it is sent.
function decodeText(name, bytes) {
  if (bytes.length === 0) throw new ApiError(`${name}: the file is empty`);
  if (bytes.includes(0)) throw new ApiError(`${name} is not a text document (it contains NUL bytes): upload UTF-8 text`);
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError(`${name} is not a text document (it is not valid UTF-8): upload UTF-8 text`);
  }
}

async function upload(file) {
  if (!file) return;
  clearMessages();
  const working = show(`Reading ${file.name}…`, "info");
  await guarded(async () => {
    try {
      const text = decodeText(file.name, new Uint8Array(await file.arrayBuffer()));
      if (!text.trim()) throw new ApiError(`${file.name}: the document is empty`);
      const accepted = await api("/jobs", { method: "POST", body: JSON.stringify({ source: file.name, text }) });
      show(accepted.started ? `Started a job for ${file.name}.`
        : `${file.name} was submitted before: this is its job (${accepted.status}).`, "info");
      location.hash = `#/jobs/${encodeURIComponent(accepted.job_id)}`;
    } finally {
      working.remove();
    }
  });
}

function setUpUpload() {
  const zone = $("#drop-zone");
  const input = $("#file-input");
  input.addEventListener("change", async () => {
    const [file] = input.files;
    input.value = "";
    await upload(file);
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = [...(e.dataTransfer?.files || [])];
    if (files.length > 1) show("Drop one file at a time: the first one is ingested.", "info");
    await upload(files[0]);
  });
  // A file dropped outside the zone would make the browser leave the page for it.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}

// -- jobs ---------------------------------------------------------------------------------------

async function refreshJobs() {
  const token = routeToken;
  const jobs = await guarded(() => api("/jobs?limit=100"));
  if (token !== routeToken) return;
  if (jobs) {
    $("#jobs-table tbody").replaceChildren(...jobs.jobs.map((job) => h("tr", {},
      h("th", { scope: "row", class: "source" }, job.source),
      h("td", {}, statusBadge(job.status)),
      h("td", {}, job.stage),
      h("td", {}, h("progress", { max: 100, value: job.progress, "aria-label": `${job.source}: ${job.progress}%` }), ` ${job.progress}%`),
      h("td", {}, when(job.created_at)),
      h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(job.job_id)}`, "aria-label": `Job of ${job.source}` }, job.job_id.slice(0, 8))))));
    $("#jobs-empty").hidden = jobs.jobs.length > 0;
  }
  const active = jobs && jobs.jobs.some((job) => !FINISHED.has(job.status));
  schedule(refreshJobs, !jobs ? 10000 : active ? 1000 : 5000);
}

const STAGES = ["PLAN", "EXTRACT", "STORE", "CONCEPTS", "DEDUP", "FINALIZE"];

async function refreshJob(jobId) {
  const token = routeToken;
  let answered = true;
  const job = await guarded(() => api(`/jobs/${encodeURIComponent(jobId)}`).catch((e) => {
    answered = e.status > 0;
    throw e;
  }));
  if (token !== routeToken) return;
  if (job) renderJob(job);
  else $("#job-body").replaceChildren(h("p", { class: "empty" }, "This job could not be read."));
  // Followed until it ends; an unknown job is not asked for again, an API out of reach is.
  if (job ? !FINISHED.has(job.status) : !answered) schedule(() => refreshJob(jobId), job ? 1000 : 10000);
}

function flatten(value, prefix = "") {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => {
      const name = /^[a-z_]+$/.test(k) ? k.replaceAll("_", " ") : k; // a triple type keeps its name
      return flatten(v, prefix ? `${prefix} › ${name}` : name);
    });
  }
  return [[prefix, value]];
}

function usageRow(name, u) {
  return h("tr", {}, h("th", { scope: "row" }, name), h("td", { class: "num" }, number(u.calls)),
    h("td", { class: "num" }, number(u.cached)), h("td", { class: "num" }, number(u.input_tokens)),
    h("td", { class: "num" }, number(u.cached_input_tokens ?? 0)),
    h("td", { class: "num" }, number(u.output_tokens)), h("td", { class: "num" }, `$${u.cost_usd.toFixed(4)}`));
}

function renderJob(job) {
  $("#job-title").textContent = `Job of ${job.source}`;
  const reached = STAGES.indexOf(job.stage);
  const stages = h("ol", { class: "stages", "aria-label": "Stages" }, STAGES.map((stage, i) => {
    const state = FINISHED.has(job.status) && job.status !== "FAILED" ? "done"
      : i < reached ? "done" : i === reached ? (job.status === "FAILED" ? "failed" : "current") : "todo";
    return h("li", { class: state, "aria-current": state === "current" ? "step" : null }, stage.toLowerCase());
  }));
  const summary = h("dl", { class: "facts" },
    h("dt", {}, "Status"), h("dd", { id: "job-status" }, statusBadge(job.status)),
    h("dt", {}, "Stage"), h("dd", {}, job.stage),
    h("dt", {}, "Progress"), h("dd", {}, h("progress", { max: 100, value: job.progress, "aria-label": "Progress" }), ` ${job.progress}%`),
    h("dt", {}, "Chunks"), h("dd", {}, `${number(job.chunks_done)} of ${number(job.chunks_total)} done, ${number(job.chunks_failed)} failed`),
    h("dt", {}, "Job id"), h("dd", { class: "mono" }, job.job_id),
    h("dt", {}, "Document"), h("dd", { class: "mono" }, job.document_id || "–"),
    h("dt", {}, "Created"), h("dd", {}, when(job.created_at)),
    h("dt", {}, "Updated"), h("dd", {}, when(job.updated_at)),
    job.execution ? [h("dt", {}, "Execution"), h("dd", {},
      h("a", { href: job.execution.console_url, target: "_blank", rel: "noopener" }, "Step Functions console"),
      ` (${job.execution.status || "status unknown"})`)] : null);
  const error = job.error ? h("p", { class: "message error", role: "note" }, `Error: ${job.error}`) : null;
  const counts = flatten(job.counts);
  const countsTable = counts.length
    ? h("table", { class: "compact" }, h("caption", {}, "Counts"),
      h("tbody", {}, counts.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", { class: "num" }, number(v))))))
    : h("p", { class: "empty" }, "No counts yet.");
  const usage = h("table", { class: "compact" }, h("caption", {}, "LLM calls, tokens and cost"),
    h("thead", {}, h("tr", {}, h("th", {}, h("span", { class: "visually-hidden" }, "Stage")), h("th", { class: "num" }, "Calls"),
      h("th", { class: "num", title: "replies served from kg's own cache, no call made" }, "Cached replies"),
      h("th", { class: "num" }, "Input tokens"),
      h("th", { class: "num", title: "input tokens the provider served from its prompt cache, at the cached rate" },
        "of which cached"),
      h("th", { class: "num" }, "Output tokens"),
      h("th", { class: "num" }, "Cost (USD)"))),
    h("tbody", {}, usageRow("Total", job.llm), Object.entries(job.llm_by_stage).map(([stage, u]) => usageRow(stage.toLowerCase(), u))));
  const chunks = job.chunks || [];
  const ledger = h("div", { class: "table-wrap" }, h("table", { id: "chunk-ledger" },
    h("caption", {}, `Chunks (${number(chunks.length)} recorded of ${number(job.chunks_total)})`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "num" }, "#"), h("th", { scope: "col" }, "Status"),
      h("th", { scope: "col", class: "num" }, "Attempts"), h("th", { scope: "col", class: "num" }, "Triples"),
      h("th", { scope: "col" }, "Error"))),
    h("tbody", {}, chunks.map((c) => h("tr", {}, h("td", { class: "num" }, c.index), h("td", {}, statusBadge(c.status)),
      h("td", { class: "num" }, number(c.attempts)), h("td", { class: "num" }, number(c.triples)),
      h("td", { class: "error-text" }, c.error || ""))))));
  $("#job-body").replaceChildren(stages, summary, error || "", h("div", { class: "two" }, countsTable, usage), ledger);
}

// -- overview -----------------------------------------------------------------------------------

async function refreshOverview() {
  const data = await guarded(() => api("/overview?top=10"));
  if (!data) return;
  const s = data.stats;
  const cards = [["Documents", s.documents], ["Chunks", s.chunks], ["Triples", s.triples], ["Entities", s.entities],
    ["Events", s.events], ["Emotions", s.emotions], ["Relations", s.relations], ["Concepts", s.concepts],
    ["Vectors", s.vectors], ["Merges", s.merges]];
  const levels = Object.entries(data.top_concepts).map(([level, concepts]) => h("div", { class: "card" },
    h("h4", {}, `${level} (${number(s.concepts_by_level[level] ?? concepts.length)})`),
    concepts.length ? h("ol", {}, concepts.map((c) => h("li", {}, c.name, h("span", { class: "muted" }, ` ${number(c.elements)}`))))
      : h("p", { class: "empty" }, "none")));
  $("#overview-body").replaceChildren(
    h("ul", { class: "totals", id: "totals" }, cards.map(([name, n]) => h("li", {}, h("span", { class: "total" }, number(n)), h("span", {}, name)))),
    h("p", { class: "muted" }, `Last updated ${when(s.last_updated)}`),
    h("div", { class: "two" },
      h("table", { class: "compact" }, h("caption", {}, "Triples by type"),
        h("tbody", {}, Object.entries(s.triples_by_type).map(([t, n]) =>
          h("tr", {}, h("th", { scope: "row" }, h("span", { class: "swatch", style: `background:${TYPE_COLOURS[t]}` }), t),
            h("td", { class: "num" }, number(n)))))),
      h("div", {}, h("h3", {}, "Top concepts per level"), h("p", { class: "muted" }, "By the elements each covers"),
        h("div", { class: "levels" }, levels))));
}

// -- the graph explorer -------------------------------------------------------------------------

const graph = {
  cy: null,
  centre: null, // what the neighbourhood was asked for: a node id or a name
  concepts: [], // the concept nodes drawn for the selected node

  init() {
    if (typeof window.cytoscape !== "function") {
      show("The graph-drawing library is not installed: run scripts/install.sh (it installs Cytoscape.js from npm).");
      return;
    }
    this.cy = window.cytoscape({
      container: $("#cy"),
      minZoom: 0.1,
      maxZoom: 4,
      style: [
        { selector: "node", style: {
          label: "data(name)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 3,
          "text-wrap": "ellipsis", "text-max-width": 140, width: 18, height: 18, color: "#1b1f24",
          "text-background-color": "#ffffff", "text-background-opacity": 0.75, "text-background-padding": 1,
          "background-color": COLOURS.entity } },
        ...Object.entries(COLOURS).map(([kind, colour]) => ({ selector: `node[kind = "${kind}"]`, style: { "background-color": colour } })),
        { selector: 'node[kind = "event"]', style: { shape: "round-rectangle" } },
        { selector: 'node[kind = "emotion"]', style: { shape: "diamond" } },
        { selector: 'node[kind = "concept"]', style: { shape: "hexagon", "font-style": "italic" } },
        { selector: "node[?centre]", style: { width: 28, height: 28, "border-width": 3, "border-color": "#111", "font-weight": "bold" } },
        { selector: "edge", style: {
          label: "data(predicate)", "font-size": 9, "curve-style": "bezier", "target-arrow-shape": "triangle",
          width: 1.5, "line-color": "data(colour)", "target-arrow-color": "data(colour)", "text-rotation": "autorotate",
          "text-background-color": "#ffffff", "text-background-opacity": 0.85, "text-background-padding": 1, color: "#333" } },
        { selector: 'edge[type = "CONCEPT"]', style: { "line-style": "dashed", "target-arrow-shape": "vee" } },
        { selector: ":selected", style: { "border-width": 4, "border-color": "#f2b600", "line-color": "#f2b600",
          "target-arrow-color": "#f2b600", width: 3 } },
      ],
    });
    this.cy.on("tap", "node", (e) => {
      const data = e.target.data();
      if (data.kind === "concept") showConcept(data);
      else showNode(data.id);
    });
    this.cy.on("tap", "edge", (e) => {
      if (e.target.data("type") !== "CONCEPT") showTriple(e.target.id());
    });
    // Keyboard: the drawing pans and zooms from the keys too.
    $("#cy").addEventListener("keydown", (e) => {
      const step = 60;
      const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      if (moves[e.key]) this.cy.panBy({ x: moves[e.key][0], y: moves[e.key][1] });
      else if (e.key === "+" || e.key === "=") this.zoom(1.25);
      else if (e.key === "-") this.zoom(0.8);
      else if (e.key === "0") this.cy.fit(undefined, 30);
      else return;
      e.preventDefault();
    });
  },

  zoom(factor) {
    if (!this.cy) return;
    const box = $("#cy").getBoundingClientRect();
    this.cy.zoom({ level: this.cy.zoom() * factor, renderedPosition: { x: box.width / 2, y: box.height / 2 } });
  },

  // Cytoscape keeps where its container is on the page: anything that moves it (search results, a
  // message above it) must tell it, or clicks land beside what they aim at.
  invalidate() {
    if (this.cy) this.cy.resize();
  },

  resize() {
    if (!this.cy) return;
    this.cy.resize();
    if (this.cy.elements().nonempty()) this.cy.fit(undefined, 30);
  },

  clear(caption) {
    this.centre = null;
    if (this.cy) this.cy.elements().remove();
    $("#node-list").replaceChildren();
    $("#edge-list").replaceChildren();
    $("#graph-caption").textContent = caption;
    $("#details").replaceChildren(h("p", { class: "hint" }, caption));
  },

  types() {
    return [...document.querySelectorAll('input[name="type"]:checked')].map((box) => box.value);
  },

  async open(node) {
    this.centre = node;
    const types = this.types();
    if (types.length === 0) {
      this.clear("Choose at least one triple type to draw.");
      this.centre = node;
      return;
    }
    const hops = $("#hops").value;
    const found = await guarded(() => api(`/neighbors?${query({ node, hops, limit: NEIGHBOURHOOD_LIMIT,
      types: types.length === TRIPLE_TYPES.length ? [] : types })}`));
    if (!found) return;
    this.draw(found);
  },

  draw(found) {
    const centres = new Set(found.centres.map((c) => c.id));
    const names = found.centres.map((c) => c.name).join(", ");
    $("#graph-caption").textContent = `${names}: ${number(found.nodes.length)} nodes and ${number(found.triples.length)} facts within ` +
      `${$("#hops").value} hop${$("#hops").value === "1" ? "" : "s"}${found.truncated ? ` (the first ${NEIGHBOURHOOD_LIMIT})` : ""}.`;
    $("#node-list").replaceChildren(...found.nodes.map((n) => h("li", {},
      h("button", { type: "button", class: "link", onclick: () => { this.select(n.id); showNode(n.id); } }, n.name),
      h("span", { class: "muted" }, ` ${n.kind}${centres.has(n.id) ? ", centre" : `, ${n.hops} hop${n.hops === 1 ? "" : "s"}`}`))));
    $("#edge-list").replaceChildren(...found.triples.map((t) => h("li", {},
      h("button", { type: "button", class: "link", onclick: () => { this.select(t.id); showTriple(t.id); } }, tripleText(t)),
      h("span", { class: "muted" }, ` ${t.type}`))));
    if (!this.cy) return;
    this.invalidate();
    this.concepts = [];
    this.cy.elements().remove();
    this.cy.add([
      ...found.nodes.map((n) => ({ group: "nodes", data: { id: n.id, name: n.name, kind: n.kind, hops: n.hops,
        centre: centres.has(n.id) } })),
      ...found.triples.map((t) => ({ group: "edges", data: { id: t.id, source: t.subject_id, target: t.object_id,
        predicate: t.predicate, type: t.type, colour: TYPE_COLOURS[t.type] } })),
    ]);
    this.layout();
  },

  layout() {
    // Rings by distance: the centres in the middle, each hop further out. Deterministic and
    // synchronous (no animation): what is drawn is where it stays.
    this.cy.layout({ name: "concentric", animate: false, concentric: (n) => 10 - (n.data("hops") ?? 0),
      levelWidth: () => 1, minNodeSpacing: 40, spacingFactor: 1.1, padding: 30 }).run();
    this.cy.fit(undefined, 30);
  },

  select(id) {
    if (!this.cy) return;
    this.cy.elements().unselect();
    const element = this.cy.getElementById(id);
    if (element.nonempty()) element.select();
  },

  // The selected node's concepts, drawn beside it (dashed edges), replacing the last node's.
  showConcepts(node) {
    if (!this.cy) return;
    for (const id of this.concepts) this.cy.getElementById(id).remove();
    this.concepts = [];
    const at = this.cy.getElementById(node.id);
    if (at.empty()) return;
    const added = [];
    node.concepts.forEach((c, i) => {
      const id = `concept:${node.id}:${c.level}:${c.name}`;
      const angle = (2 * Math.PI * i) / Math.max(1, node.concepts.length);
      added.push({ group: "nodes", data: { id, name: `${c.name} (${c.level})`, kind: "concept", level: c.level, concept: c.name },
        position: { x: at.position("x") + 90 * Math.cos(angle), y: at.position("y") + 90 * Math.sin(angle) } });
      added.push({ group: "edges", data: { id: `${id}:edge`, source: node.id, target: id, predicate: "is a", type: "CONCEPT",
        colour: COLOURS.concept } });
      this.concepts.push(id, `${id}:edge`);
    });
    this.cy.add(added);
  },
};

function detailsPanel(...children) {
  $("#details").replaceChildren(...children);
}

async function showNode(id) {
  graph.select(id);
  const node = await guarded(() => api(`/nodes/${encodeURIComponent(id)}?limit=100`));
  if (!node) return;
  graph.showConcepts(node);
  detailsPanel(
    h("h3", {}, node.name), h("p", {}, h("span", { class: `badge kind-${node.kind}` }, node.kind)),
    h("button", { type: "button", onclick: () => { $("#node-input").value = node.name; graph.open(node.id); } }, "Open its neighbourhood"),
    h("h4", {}, "Aliases"),
    node.aliases.length ? h("ul", {}, node.aliases.map((a) => h("li", {}, a))) : h("p", { class: "muted" }, "none"),
    h("h4", {}, "Concepts"),
    node.concepts.length ? h("ul", { class: "concepts" }, node.concepts.map((c) => h("li", {}, c.name, h("span", { class: "muted" }, ` ${c.level}`))))
      : h("p", { class: "muted" }, "none"),
    h("h4", {}, `Facts (${number(node.triples.length)}${node.truncated ? "+" : ""})`),
    h("ul", { class: "facts-list" }, node.triples.map((t) => h("li", {},
      h("button", { type: "button", class: "link", onclick: () => { graph.select(t.id); showTriple(t.id); } }, tripleText(t)),
      h("span", { class: "muted" }, ` ${Math.round(t.confidence * 100)}%`)))));
}

function showConcept(data) {
  graph.select(data.id);
  detailsPanel(h("h3", {}, data.concept), h("p", {}, h("span", { class: "badge kind-concept" }, `concept, ${data.level} level`)),
    h("p", { class: "muted" }, "The Overview lists the concepts that cover the most elements."));
}

// The chunk around a supporting span, the span marked.
function spanInContext(source) {
  const text = source.chunk_text;
  const start = Math.max(0, source.start - source.chunk_start);
  const end = Math.min(text.length, source.end - source.chunk_start);
  const from = Math.max(0, start - CONTEXT_CHARS);
  const to = Math.min(text.length, end + CONTEXT_CHARS);
  return h("blockquote", { class: "context" },
    from > 0 ? "…" : "", text.slice(from, start), h("mark", {}, text.slice(start, end)), text.slice(end, to), to < text.length ? "…" : "");
}

async function showTriple(id) {
  graph.select(id);
  const t = await guarded(() => api(`/triples/${encodeURIComponent(id)}`));
  if (!t) return;
  detailsPanel(
    h("h3", { class: "triple" }, t.subject, h("span", { class: "predicate" }, ` — ${t.predicate} → `), t.object),
    h("dl", { class: "facts" },
      h("dt", {}, "Type"), h("dd", {}, t.type),
      h("dt", {}, "Confidence"), h("dd", {}, h("meter", { min: 0, max: 1, value: t.confidence, "aria-label": "Confidence" }),
        ` ${t.confidence.toFixed(2)}`),
      h("dt", {}, "Sources"), h("dd", {}, `${number(t.source_count)} chunk${t.source_count === 1 ? "" : "s"}`)),
    h("ol", { class: "sources" }, t.sources.map((s) => h("li", {},
      h("p", {}, h("strong", {}, s.source), h("span", { class: "muted" },
        ` ${s.source_type}${s.source_date ? `, ${day(s.source_date)}` : ""}, chunk ${s.chunk_index}, characters ${number(s.start)}–${number(s.end)}`)),
      spanInContext(s)))),
    t.source_count > t.sources.length ? h("p", { class: "muted" }, `and ${number(t.source_count - t.sources.length)} more`) : "");
}

async function runSearch(text) {
  const box = $("#search-results");
  const found = await guarded(() => api(`/search?${query({ query: text, limit: 10 })}`));
  if (!found) return;
  if (found.hits.length === 0) {
    box.replaceChildren(h("p", { class: "empty", id: "no-hits" }, `Nothing in the graph matches “${found.query}”.`));
    return;
  }
  box.replaceChildren(h("h3", {}, `Results for “${found.query}”`), h("ol", { class: "hits" }, found.hits.map((hit) => h("li", {},
    h("button", { type: "button", class: "link hit", onclick: async () => {
      $("#node-input").value = hit.subject;
      await graph.open(hit.subject);
      graph.select(hit.id);
      await showTriple(hit.id);
    } }, tripleText(hit)),
    h("span", { class: "muted" }, ` ${hit.type}, confidence ${hit.confidence.toFixed(2)}, score ${hit.score.toFixed(4)}`)))));
}

function setUpGraph() {
  graph.init();
  $("#search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("#search-input").value.trim();
    if (text) runSearch(text);
  });
  $("#node-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("#node-input").value.trim();
    if (name) graph.open(name);
  });
  const reopen = () => { if (graph.centre) graph.open(graph.centre); };
  $("#hops").addEventListener("change", reopen);
  for (const box of document.querySelectorAll('input[name="type"]')) box.addEventListener("change", reopen);
  $("#zoom-in").addEventListener("click", () => graph.zoom(1.25));
  $("#zoom-out").addEventListener("click", () => graph.zoom(0.8));
  $("#zoom-fit").addEventListener("click", () => graph.cy && graph.cy.fit(undefined, 30));
  window.addEventListener("resize", () => graph.resize());
  new ResizeObserver(() => graph.invalidate()).observe(document.body);
}

// -- start --------------------------------------------------------------------------------------

setUpUpload();
setUpGraph();
window.kg = { graph }; // the drawing's Cytoscape instance (kg.graph.cy), for the console and the browser tests
window.addEventListener("hashchange", () => { route(); $("#main").focus({ preventScroll: true }); });
route();
