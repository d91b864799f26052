// The gate dashboard: one page over the REST API of `snakemake-gate serve`.
// Vanilla ES2020, no build step, no dependencies. Every text from the server is
// put in the page with textContent (never as HTML). See docs/dashboard.md.
"use strict";

const POLL_MS = 4000; // how often the page asks for news
const TOKEN_KEY = "snakemake-gate.token"; // in sessionStorage: this tab only
const RECENT = 20; // decided gates listed
const PREVIEW_BYTES = 1_000_000; // larger JSON/CSV/text artifacts are downloads only
const IMAGE_BYTES = 20_000_000; // larger images are downloads only
const CSV_ROWS = 20;
const HTTP = {
  401: "Token refused",
  403: "Not permitted",
  404: "Not found",
  409: "Conflict",
  413: "Too large",
  422: "Invalid value",
  429: "Too many requests",
};

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  user: null,
  selected: new URLSearchParams(location.search).get("gate"),
  view: null, // the selected gate as last shown
  shown: {}, // signature of each part of the detail as last rendered
  timer: null,
  busy: null, // the refresh in flight
  generation: 0, // bumped by a decision: answers to older requests are stale
  pendingCount: null,
  saidAt: 0, // when the status line last changed
};

// ------------------------------------------------------------------ helpers

/** An element with attributes (properties for on*, booleans as presence) and children. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** A <time> for an ISO 8601 string or epoch seconds. */
function when(value) {
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value ?? "");
  return h("time", { datetime: date.toISOString() }, date.toLocaleString());
}

function bytes(n) {
  if (n === null || n === undefined) return "missing";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function deciders(view) {
  const who = view.approvers ? view.approvers.join(", ") : "anyone with a token";
  const parts = [who];
  if (view.quorum > 1) parts.push(`${view.quorum} must agree`);
  if (view.allow_self_approval === false && view.requested_by) {
    parts.push(`not ${view.requested_by}, who started the run`);
  }
  return parts.join("; ");
}

function values(fields) {
  const entries = Object.entries(fields || {});
  return entries.length ? entries.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ") : "";
}

function say(message) {
  $("status").textContent = message;
  state.saidAt = Date.now();
}

function showError(where, error) {
  $(where).textContent = error ? String(error.message || error) : "";
}

// ------------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(status, detail) {
    const label = status ? `${HTTP[status] || "Error"} (${status}): ` : "";
    super(label + detail);
    this.status = status;
    this.detail = detail;
  }
}

function describe(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI's own validation errors: [{loc, msg}, ...]
    return detail
      .map((d) =>
        [(d.loc || []).filter((p) => p !== "body").join("."), d.msg].filter(Boolean).join(": "),
      )
      .join("; ");
  }
  return JSON.stringify(detail);
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) };
  let response;
  try {
    response = await fetch(path, { ...options, headers, cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, `Cannot reach the gate server (${e.message}); trying again`);
  }
  if (response.ok) return response;
  const text = await response.text().catch(() => "");
  let detail = text.slice(0, 500) || response.statusText || "the request failed";
  try {
    const body = JSON.parse(text);
    if (body && body.detail !== undefined) detail = describe(body.detail);
  } catch {
    // not JSON: keep the text
  }
  const wait = response.headers.get("Retry-After");
  if (response.status === 429 && wait) detail += ` (try again in ${wait} s)`;
  const error = new ApiError(response.status, detail);
  if (response.status === 401) signOut(error);
  throw error;
}

const getJSON = async (path) => (await api(path)).json();
const gatePath = (id) => `api/gates/${encodeURIComponent(id)}`;

// ------------------------------------------------------------------ signing in

async function signIn(token) {
  state.token = token;
  const me = await getJSON("api/me");
  sessionStorage.setItem(TOKEN_KEY, token);
  state.user = me.user;
  $("user").textContent = me.user;
  $("who").hidden = false;
  $("login").hidden = true;
  $("app").hidden = false;
  showError("error", null);
  await refresh();
  schedule();
}

function signOut(reason) {
  clearTimeout(state.timer);
  sessionStorage.removeItem(TOKEN_KEY);
  Object.assign(state, { token: null, user: null, view: null, shown: {}, pendingCount: null });
  $("artifacts").replaceChildren(); // what the token fetched goes with it
  $("who").hidden = true;
  $("app").hidden = true;
  $("login").hidden = false;
  $("token").value = "";
  if (reason) {
    showError("error", reason);
    $("token").setAttribute("aria-invalid", "true");
  } else {
    say("Signed out.");
  }
  $("token").focus();
}

async function onLogin(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) {
    showError("error", "Enter your access token.");
    $("token").setAttribute("aria-invalid", "true");
    $("token").focus();
    return;
  }
  try {
    await signIn(token);
    $("token").removeAttribute("aria-invalid");
    say(`Signed in as ${state.user}.`);
  } catch (e) {
    if (e.status !== 401) signOut(e); // 401 has signed out already
  }
}

// ------------------------------------------------------------------ refreshing

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(async () => {
    if (!document.hidden) await refresh();
    if (state.token) schedule();
  }, POLL_MS);
}

/** Fetch the list and the selected gate; one refresh at a time. */
function refresh() {
  if (!state.token) return Promise.resolve();
  state.busy ??= (async () => {
    try {
      const { gates } = await getJSON("api/gates?status=all");
      renderLists(gates);
      if (state.selected) await loadDetail();
      $("refreshed").textContent = new Date().toLocaleTimeString();
      showError("error", null);
    } catch (e) {
      if (state.token) showError("error", e);
    } finally {
      state.busy = null;
    }
  })();
  return state.busy;
}

// ------------------------------------------------------------------ the lists

function renderLists(gates) {
  const pending = gates.filter((g) => g.status === "pending");
  pending.sort((a, b) => b.waiting_seconds - a.waiting_seconds);
  const recent = gates.filter((g) => g.status !== "pending");
  recent.sort((a, b) => String(b.decision?.at).localeCompare(String(a.decision?.at)));

  const focused = document.activeElement?.dataset?.gate;
  fillList($("pending-list"), pending, "Nothing is waiting.");
  fillList($("recent-list"), recent.slice(0, RECENT), "No decisions yet.");
  if (focused) document.querySelector(`a[data-gate="${CSS.escape(focused)}"]`)?.focus();

  $("pending-count").textContent = `(${pending.length})`;
  const quiet = Date.now() - state.saidAt < POLL_MS; // let the last message be heard
  if (state.pendingCount !== null && pending.length !== state.pendingCount && !quiet) {
    say(`${pending.length} gate${pending.length === 1 ? "" : "s"} waiting for a decision.`);
  }
  state.pendingCount = pending.length;
}

function fillList(list, gates, empty) {
  list.replaceChildren(
    ...gates.map((g) => {
      const where = Object.entries(g.wildcards || {})
        .map(([k, v]) => `${k}=${v}`)
        .join(", ");
      const meta = g.decision
        ? `${g.decision.timeout ? "timed out" : g.decision.choice} by ${g.decision.by.join(", ")}`
        : `waiting ${duration(g.waiting_seconds)} · ${deciders(g)}`;
      return h(
        "li",
        {},
        h(
          "a",
          {
            href: `?gate=${encodeURIComponent(g.id)}`,
            dataset: { gate: g.id },
            "aria-current": g.id === state.selected ? "page" : null,
          },
          h("span", { class: "q" }, g.question),
          h("span", { class: "meta" }, `${g.rule}${where ? ` [${where}]` : ""} · ${meta}`),
        ),
      );
    }),
  );
  if (!gates.length) list.append(h("li", { class: "empty" }, empty));
}

function onListClick(event) {
  const link = event.target.closest("a[data-gate]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  select(link.dataset.gate, true);
}

async function select(id, push) {
  if (push) history.pushState({ gate: id }, "", id ? `?gate=${encodeURIComponent(id)}` : "./");
  state.selected = id;
  state.view = null;
  state.shown = {};
  for (const link of document.querySelectorAll("a[data-gate]")) {
    if (link.dataset.gate === id) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  showError("answer-error", null);
  if (!id) {
    renderEmpty();
    return;
  }
  $("detail-title").textContent = "Loading…";
  $("detail-title").focus();
  try {
    await loadDetail();
  } catch (e) {
    showError("error", e);
  }
}

// ------------------------------------------------------------------ one gate

async function loadDetail() {
  const id = state.selected;
  const generation = state.generation;
  let view;
  try {
    view = await getJSON(gatePath(id));
  } catch (e) {
    if (e.status !== 404 || id !== state.selected) throw e;
    renderEmpty(`Gate ${id} not found`, e.message);
    return;
  }
  if (id === state.selected && generation === state.generation) renderDetail(view);
}

function renderEmpty(title = "No gate selected", text = "Choose a gate from the list.") {
  $("detail-title").textContent = title;
  $("detail-empty").textContent = text;
  $("detail-empty").hidden = false;
  $("detail-body").hidden = true;
}

/** Re-render only the parts that changed, so that nothing the user types is lost. */
function renderDetail(view) {
  state.view = view;
  $("detail-title").textContent = view.question;
  $("detail-empty").hidden = true;
  $("detail-body").hidden = false;
  const parts = {
    facts: [view.status, view.waiting_seconds, view.timeout_at],
    artifacts: view.artifacts.map((a) => [a.url, a.sha256, a.size]),
    answer: [view.status, view.may_decide, view.decision],
    votes: view.votes,
    history: (view.audit || []).map((e) => e.seq ?? e.ts),
  };
  const render = {
    facts: renderFacts,
    artifacts: renderArtifacts,
    answer: renderAnswer,
    votes: renderVotes,
    history: renderHistory,
  };
  for (const [part, value] of Object.entries(parts)) {
    const signature = JSON.stringify(value);
    if (state.shown[part] !== signature) {
      state.shown[part] = signature;
      render[part](view);
    }
  }
}

function renderFacts(view) {
  const where = Object.entries(view.wildcards || {})
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
  const rows = [
    ["Status", h("span", { class: `badge ${view.status}` }, view.status)],
    ["Rule", where ? `${view.rule} [${where}]` : view.rule],
    ["Asked", [when(view.asked_at), view.requested_by ? ` by ${view.requested_by}` : ""]],
    [view.status === "pending" ? "Waiting" : "Waited", duration(view.waiting_seconds)],
    ["Who may decide", deciders(view)],
    view.timeout_at ? ["Deadline", [when(view.timeout_at), ` → ${view.on_timeout}`]] : null,
    ["Gate id", h("code", {}, view.id)],
  ];
  $("facts").replaceChildren(
    ...rows.filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
  );
}

function renderAnswer(view) {
  const outcome = $("outcome");
  const slot = $("form-slot");
  const d = view.decision;
  if (d) {
    slot.replaceChildren();
    outcome.replaceChildren(
      h(
        "p",
        { class: `outcome ${view.status}` },
        d.timeout ? "Timed out: " : "Decided: ",
        h("strong", {}, d.choice),
        values(d.fields) ? ` (${values(d.fields)})` : "",
        ` by ${d.by.join(", ")} at `,
        when(d.at),
      ),
      d.comment ? h("blockquote", {}, d.comment) : null,
    );
    return;
  }
  outcome.replaceChildren();
  if (view.may_decide === false) {
    slot.replaceChildren(h("p", { class: "note" }, whyNot(view)));
    return;
  }
  slot.replaceChildren(decisionForm(view));
}

function whyNot(view) {
  if (view.approvers && !view.approvers.includes(state.user)) {
    const who = view.approvers.join(", ");
    return `Only ${who} may decide this gate; you are signed in as ${state.user}.`;
  }
  if (view.allow_self_approval === false && view.requested_by === state.user) {
    return "You started this run and this gate needs someone else's decision.";
  }
  return `You (${state.user}) cannot decide this gate.`;
}

function decisionForm(view) {
  const controls = view.fields.map((field, i) => fieldControl(field, i));
  const form = h(
    "form",
    { id: "decide", novalidate: true, onsubmit: (e) => e.preventDefault() },
    controls.length
      ? h(
          "fieldset",
          {},
          h("legend", {}, "Values"),
          controls.map((c) => c.row),
        )
      : null,
    h("label", { for: "comment" }, "Comment (optional)"),
    h("textarea", { id: "comment", name: "comment", rows: 3, maxlength: 10000 }),
    h(
      "div",
      { class: "choices", role: "group", "aria-label": "Your answer" },
      view.choices.map((choice) =>
        h(
          "button",
          {
            type: "button",
            class: (view.fail_on || ["reject"]).includes(choice) ? "choice danger" : "choice",
            value: choice,
            onclick: () => decide(form, view, controls, choice),
          },
          choice[0].toUpperCase() + choice.slice(1),
        ),
      ),
    ),
  );
  return form;
}

/** A labelled input for one typed field: {row, read() -> [set, value], input}. */
function fieldControl(field, i) {
  const id = `field-${i}`;
  const hints = [];
  if (field.min !== null && field.max !== null) hints.push(`from ${field.min} to ${field.max}`);
  else if (field.min !== null) hints.push(`at least ${field.min}`);
  else if (field.max !== null) hints.push(`at most ${field.max}`);
  if (field.default !== null && field.default !== undefined)
    hints.push(`default ${JSON.stringify(field.default)}`);
  const hint = hints.length
    ? h("span", { id: `${id}-hint`, class: "hint" }, hints.join("; "))
    : null;
  const common = {
    id,
    name: field.name,
    "aria-required": field.required ? "true" : null,
    "aria-describedby": hint ? `${id}-hint` : null,
  };
  let input;
  let read;
  if (field.choices) {
    const blank = field.default === null || field.default === undefined;
    input = h(
      "select",
      common,
      blank ? h("option", { value: "" }, "— choose —") : null,
      field.choices.map((c, n) =>
        h("option", { value: n, selected: c === field.default }, String(c)),
      ),
    );
    read = () => (input.value === "" ? [false] : [true, field.choices[Number(input.value)]]);
  } else if (field.type === "bool") {
    input = h("input", { ...common, type: "checkbox", checked: field.default === true });
    read = () => [true, input.checked];
  } else if (field.type === "int" || field.type === "float") {
    input = h("input", {
      ...common,
      type: "number",
      inputmode: field.type === "int" ? "numeric" : "decimal",
      step: field.type === "int" ? 1 : "any",
      min: field.min,
      max: field.max,
      value: field.default,
    });
    read = () => {
      if (input.validity.badInput) throw new Error(`field '${field.name}': enter a number`);
      return input.value === "" ? [false] : [true, Number(input.value)];
    };
  } else {
    input = h("input", { ...common, type: "text", value: field.default, autocomplete: "off" });
    read = () => (input.value === "" && field.required ? [false] : [true, input.value]);
  }
  const label = h(
    "label",
    { for: id },
    field.name,
    h("span", { class: "type" }, ` (${field.type})`),
    field.required ? h("span", { class: "req" }, " required") : null,
  );
  const row =
    field.type === "bool" && !field.choices
      ? h("div", { class: "row check" }, input, label, hint)
      : h("div", { class: "row" }, label, input, hint);
  return { row, read, input, name: field.name };
}

async function decide(form, view, controls, choice) {
  showError("answer-error", null);
  const fields = {};
  for (const c of controls) {
    c.input.removeAttribute("aria-invalid");
    try {
      const [set, value] = c.read();
      if (set) fields[c.name] = value;
    } catch (e) {
      return refuse(controls, e);
    }
  }
  const comment = form.elements.comment.value;
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  form.setAttribute("aria-busy", "true");
  say(`Sending ${choice}…`);
  try {
    const response = await api(`${gatePath(view.id)}/decision`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ choice, fields, comment }),
    });
    const updated = await response.json();
    state.generation++;
    renderDetail({ ...updated, audit: updated.audit ?? state.view?.audit });
    say(
      updated.decision
        ? `Decision recorded: ${updated.decision.choice} by ${updated.decision.by.join(", ")}.`
        : `Your vote (${choice}) is recorded; ${view.quorum} matching votes are needed.`,
    );
    await state.busy; // a refresh begun before the decision shows stale news
    await refresh();
  } catch (e) {
    say("");
    refuse(controls, e);
    if (e.status === 409) await refresh();
  } finally {
    buttons.forEach((b) => (b.disabled = false));
    form.removeAttribute("aria-busy");
  }
}

/** Show why a decision was refused; mark and focus the field it names. */
function refuse(controls, error) {
  showError("answer-error", error);
  const named = /field '([^']+)'/.exec(error.message);
  const control = named && controls.find((c) => c.name === named[1]);
  if (control) {
    control.input.setAttribute("aria-invalid", "true");
    control.input.setAttribute("aria-errormessage", "answer-error");
    control.input.focus();
  }
}

function renderVotes(view) {
  $("votes").replaceChildren(
    view.votes.length
      ? h(
          "ul",
          {},
          view.votes.map((v) =>
            h(
              "li",
              {},
              `${v.by}: `,
              h("strong", {}, v.choice),
              values(v.fields) ? ` (${values(v.fields)})` : "",
              " at ",
              when(v.at),
              v.comment ? ` — ${v.comment}` : "",
            ),
          ),
        )
      : h("p", {}, view.quorum > 1 ? `No votes yet; ${view.quorum} must agree.` : "No votes yet."),
  );
}

const AUDIT_SHOWN = new Set(["seq", "ts", "at", "event", "gate", "actor", "prev"]);

function renderHistory(view) {
  const entries = view.audit || [];
  if (!entries.length) {
    $("history").replaceChildren(h("p", {}, "No history recorded."));
    return;
  }
  const details = (e) =>
    Object.entries(e)
      .filter(([k, v]) => !AUDIT_SHOWN.has(k) && v !== "" && v !== null)
      .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join("; ");
  $("history").replaceChildren(
    h(
      "table",
      { class: "history" },
      h("caption", { class: "visually-hidden" }, "Audit history of this gate, oldest first"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["When", "Event", "Who", "Details"].map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h(
        "tbody",
        {},
        entries.map((e) =>
          h(
            "tr",
            { class: `event-${e.event}` },
            h("td", {}, when(e.ts ?? e.at)),
            h("td", {}, e.event),
            h("td", {}, e.actor ?? ""),
            h("td", {}, details(e)),
          ),
        ),
      ),
    ),
  );
}

// ------------------------------------------------------------------ artifacts

function renderArtifacts(view) {
  const box = $("artifacts");
  if (!view.artifacts.length) {
    box.replaceChildren(h("p", {}, "This gate shows no files."));
    return;
  }
  box.replaceChildren(
    ...view.artifacts.map((a) => {
      const body = h("div", { class: "preview" }, "Loading…");
      const figure = h(
        "figure",
        { class: `artifact ${a.kind}` },
        h(
          "figcaption",
          {},
          h("strong", {}, a.name),
          ` · ${a.kind} · ${bytes(a.size)} `,
          a.size === null
            ? null
            : h(
                "button",
                { type: "button", class: "small", onclick: () => download(view.id, a) },
                `Download ${a.name}`,
              ),
        ),
        body,
      );
      preview(a, view.id)
        .then((content) => body.replaceChildren(content))
        .catch((e) =>
          body.replaceChildren(
            h("p", { class: "error-inline" }, `Cannot show ${a.name}: ${e.message}`),
          ),
        );
      return figure;
    }),
  );
}

/** Relative to the page, like every API call: right behind any proxy path prefix,
 *  whatever --public-url says (artifact.url is the absolute form, for others). */
function fetchArtifact(gateId, artifact) {
  return api(`${gatePath(gateId)}/artifacts/${artifact.index}`);
}

async function preview(a, gateId) {
  if (a.size === null) return h("p", {}, "The file is no longer on the server.");
  const limit = a.kind === "image" ? IMAGE_BYTES : PREVIEW_BYTES;
  if (a.kind === "other" || a.size > limit) {
    return h(
      "p",
      {},
      a.kind === "other" ? "No preview for this kind of file." : "Too large to preview.",
    );
  }
  const response = await fetchArtifact(gateId, a);
  if (a.kind === "image") {
    // A data: URL, never a blob: one: a blob: URL has this page's origin, and an SVG
    // opened from it (pasted into the address bar) would run its script next to the
    // token. A data: document has an origin of its own; as an <img>, no script runs.
    const url = await dataUrl(await response.blob());
    if (state.selected !== gateId) return "";
    return h("img", { src: url, alt: `${a.name} (artifact of this gate)` });
  }
  const text = await response.text();
  if (a.kind === "json") {
    let pretty = text;
    try {
      pretty = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // not valid JSON: show as it is
    }
    return scrollable(h("pre", {}, pretty), a.name);
  }
  if (a.kind === "csv")
    return csvTable(text, a.name.toLowerCase().endsWith(".tsv") ? "\t" : ",", a.name);
  return scrollable(h("pre", {}, text), a.name);
}

/** A scrolling region reachable by keyboard. */
function scrollable(content, name) {
  return h("div", { class: "scroll", tabindex: 0, role: "region", "aria-label": name }, content);
}

/** RFC 4180 enough for a preview: quoted fields, doubled quotes, CRLF. */
function parseCsv(text, sep) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell === "") quoted = true;
    else if (c === sep) {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += c;
  }
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

function csvTable(text, sep, name) {
  const [head = [], ...rows] = parseCsv(text, sep);
  const shown = rows.slice(0, CSV_ROWS);
  const caption =
    rows.length > CSV_ROWS ? `${name}: first ${CSV_ROWS} of ${rows.length} rows` : name;
  return scrollable(
    h(
      "table",
      { class: "csv" },
      h("caption", { class: rows.length > CSV_ROWS ? null : "visually-hidden" }, caption),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          head.map((c) => h("th", { scope: "col" }, c)),
        ),
      ),
      h(
        "tbody",
        {},
        shown.map((r) =>
          h(
            "tr",
            {},
            r.map((c) => h("td", {}, c)),
          ),
        ),
      ),
    ),
    name,
  );
}

function dataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function download(gateId, artifact) {
  try {
    const fetched = await (await fetchArtifact(gateId, artifact)).blob();
    // typed as bytes: opened rather than saved, the object URL shows nothing it could run
    const blob = new Blob([fetched], { type: "application/octet-stream" });
    const link = h("a", { href: URL.createObjectURL(blob), download: artifact.name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  } catch (e) {
    showError("error", e);
  }
}

// ------------------------------------------------------------------ start

function start() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", () => signOut(null));
  $("refresh").addEventListener("click", () => refresh().then(() => say("Updated.")));
  $("pending-list").addEventListener("click", onListClick);
  $("recent-list").addEventListener("click", onListClick);
  window.addEventListener("popstate", () =>
    select(new URLSearchParams(location.search).get("gate"), false),
  );
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.token) refresh();
  });
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    signOut(null);
    say("");
    return;
  }
  signIn(token).catch((e) => {
    if (e.status !== 401) signOut(e);
  });
}

start();
