// The docsort page: classify a text, correct or rate the answer, see recent traffic. Every
// string from the model or the user reaches the page through textContent, never as HTML.
// The API key lives in this page's memory only: it is sent as a Bearer header and kept
// nowhere (not in storage, not in the URL); a reload asks for it again.
"use strict";

const MAX_TEXT_CHARS = 100000; // the service's limit for one text
const MAX_TEXT_FILE_BYTES = 4 * 1024 * 1024; // a text file is read here, then classified: the body limit
const MAX_UPLOAD_BYTES = 20 * 1024 * 1024; // other files go to /v1/extract first: its limit
const TEXT_FILE = /\.(txt|text|md|csv)$/i;
const TOP_K = 5;

const state = { key: "", model: null, modelReady: null, prediction: null };
const $ = (id) => document.getElementById(id);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.key) headers.Authorization = "Bearer " + state.key;
  const raw = body instanceof Blob; // a file: sent as it is
  if (body !== undefined) headers["Content-Type"] = raw ? "application/octet-stream" : "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined || raw ? body : JSON.stringify(body),
      credentials: "omit", cache: "no-store",
    });
  } catch (err) {
    throw new Error("the server did not answer: " + err.message);
  }
  let data = null;
  try { data = await response.json(); } catch (err) { data = null; }
  if (!response.ok) {
    let detail = data && typeof data.detail === "string" ? data.detail : response.statusText;
    if (response.status === 401) detail = "this server needs an API key: paste it above (" + detail + ")";
    if (response.status === 403) detail = "the API key was refused: " + detail;
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return { status: response.status, data };
}

function percent(p) {
  return (100 * p).toFixed(1) + " %";
}

// one bar per [name, share, shown]: share in [0, 1]
function fillBars(list, rows) {
  list.replaceChildren();
  for (const [name, share, shown] of rows) {
    const item = element("li");
    item.dataset.name = name;
    item.append(element("span", name, "name"));
    const track = element("div", null, "track");
    const fill = element("div", null, "fill");
    fill.style.width = Math.max(0, Math.min(1, share)) * 100 + "%";
    track.append(fill);
    item.append(track, element("span", shown, "value"));
    list.append(item);
  }
}

// ---- the model -------------------------------------------------------------------------

async function loadModel() {
  try {
    const { data } = await api("GET", "/v1/models");
    const model = data.models[0];
    state.model = model;
    $("model").textContent = model.name + " · " + model.kind + " · version " + model.version;
    const select = $("correct-label");
    select.replaceChildren();
    select.multiple = Boolean(model.multi_label);
    for (const label of model.labels || []) {
      const option = element("option", label);
      option.value = label;
      select.append(option);
    }
    $("correct-form").hidden = !model.labels;
    showError("");
  } catch (err) {
    $("model").textContent = "model not loaded";
    showError(err.message);
  }
}

// ---- classify --------------------------------------------------------------------------

async function readFile() {
  const file = $("file").files[0];
  if (!file) return;
  const plain = TEXT_FILE.test(file.name) || file.type === "text/plain";
  const limit = plain ? MAX_TEXT_FILE_BYTES : MAX_UPLOAD_BYTES;
  if (file.size > limit) {
    showError(file.name + " is larger than " + limit / 1024 / 1024 + " MiB");
    return;
  }
  if (plain) {
    $("text").value = await file.text();
    $("file-note").textContent = "";
    showError("");
    return;
  }
  // PDF, Word, ...: the server extracts the text (as docsort ingest does) and stores nothing
  $("file-note").textContent = "reading " + file.name + " …";
  try {
    const { data } = await api("POST", "/v1/extract?name=" + encodeURIComponent(file.name), file);
    $("text").value = data.text;
    $("file-note").textContent = file.name + ": " + data.type + ", " + data.pages
      + (data.pages === 1 ? " page" : " pages");
    showError("");
  } catch (err) {
    $("file-note").textContent = "";
    showError(err.message);
  }
}

function showPrediction(prediction) {
  state.prediction = prediction;
  const label = prediction.labels ? prediction.labels.join(", ") : prediction.label;
  $("label").textContent = label !== undefined && label !== null ? label
    : "score " + Number(prediction.score).toFixed(4);
  $("confidence").textContent = typeof prediction.confidence === "number"
    ? "confidence " + percent(prediction.confidence) : "";
  const stage = $("stage");
  stage.textContent = prediction.stage ? "answered by stage " + prediction.stage : "";
  stage.hidden = !prediction.stage;
  const top = Object.entries(prediction.probabilities || {}).sort((a, b) => b[1] - a[1]);
  fillBars($("bars"), top.map(([name, p]) => [name, p, percent(p)]));
  $("prediction-id").textContent = prediction.id;
  const select = $("correct-label");
  const predicted = new Set(prediction.labels || [prediction.label]);
  for (const option of select.options) option.selected = predicted.has(option.value);
  $("feedback-status").textContent = "";
  $("result").hidden = false;
}

async function classify() {
  const text = $("text").value;
  if (!text.trim()) { showError("paste a text or choose a file first"); return; }
  if (text.length > MAX_TEXT_CHARS) {
    showError("the text has " + text.length + " characters; the limit is " + MAX_TEXT_CHARS);
    return;
  }
  $("run-classify").disabled = true;
  try {
    const { data } = await api("POST", "/v1/classify", { text, top_k: TOP_K });
    showPrediction(data.predictions[0]);
    showError("");
  } catch (err) {
    showError(err.message);
  } finally {
    $("run-classify").disabled = false;
  }
}

// ---- feedback --------------------------------------------------------------------------

async function sendFeedback(what, description) {
  const prediction = state.prediction;
  if (!prediction) return;
  // the same feedback sent twice (a double click, a retry) is stored once
  const key = prediction.id + ":" + JSON.stringify(what);
  const status = $("feedback-status");
  status.textContent = "sending…";
  try {
    const answer = await api("POST", "/v1/feedback",
      { prediction_id: prediction.id, idempotency_key: key.slice(0, 200), ...what });
    status.textContent = (answer.data.replayed ? "already stored: " : "stored: ")
      + description + " (feedback " + answer.data.id + ")";
  } catch (err) {
    status.textContent = "not stored: " + err.message;
  }
}

function sendCorrection(event) {
  event.preventDefault();
  const chosen = Array.from($("correct-label").selectedOptions, (option) => option.value);
  if (!chosen.length) { $("feedback-status").textContent = "pick the right label first"; return; }
  const what = state.model && state.model.multi_label ? { labels: chosen } : { label: chosen[0] };
  sendFeedback(what, "correct label " + chosen.join(", "));
}

function sendRating(event) {
  const rating = Number(event.target.dataset.rating);
  if (rating) sendFeedback({ rating }, "rating " + rating);
}

// ---- traffic ---------------------------------------------------------------------------

function accuracyText(value) {
  return value === null || value === undefined ? "–" : percent(value);
}

async function loadTraffic() {
  try {
    const { data } = await api("GET", "/v1/traffic?days=" + encodeURIComponent($("days").value));
    const totals = $("totals");
    totals.replaceChildren();
    const requests = Object.entries(data.requests).map(([route, n]) => route + " " + n).join(", ");
    for (const [name, value] of [
      ["predictions", data.predictions],
      ["feedback", data.feedback],
      ["corrected", data.corrected],
      ["accuracy on corrected", accuracyText(data.accuracy)],
      ["requests since start", requests || "none"],
    ]) {
      const shown = element("dd", value);
      shown.dataset.name = name;
      totals.append(element("dt", name), shown);
    }
    const staged = Object.values(data.stages).reduce((a, b) => a + b, 0);
    fillBars($("stage-bars"), Object.entries(data.stages).sort((a, b) => b[1] - a[1])
      .map(([stage, n]) => [stage, staged ? n / staged : 0, n + " (" + percent(n / staged) + ")"]));
    const rated = Object.values(data.ratings).reduce((a, b) => a + b, 0);
    fillBars($("rating-bars"), Object.entries(data.ratings)
      .map(([rating, n]) => [rating, rated ? n / rated : 0, String(n)]));
    const body = $("series").tBodies[0];
    body.replaceChildren();
    for (const bucket of data.series.slice().reverse()) {
      const row = element("tr");
      for (const cell of [bucket.start.replace("T", " "), bucket.predictions, bucket.feedback,
        bucket.corrected, accuracyText(bucket.accuracy)]) row.append(element("td", cell));
      body.append(row);
    }
    await loadDrift();
    showError("");
  } catch (err) {
    showError(err.message);
  }
}

function number(value, digits) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

async function loadDrift() {
  const box = $("drift");
  box.replaceChildren();
  let data;
  try {
    ({ data } = await api("GET", "/v1/drift"));
  } catch (err) {
    box.append(element("dt", "drift"), element("dd", err.message));
    return;
  }
  const collecting = data.reference.source.startsWith("collecting");
  let verdict = data.drifted ? "yes: a signal is past its threshold" : "no";
  if (data.drifted === null && collecting) {
    verdict = "not yet: collecting the reference, " + data.reference.rows + " of "
      + data.window + " predictions";
  } else if (data.drifted === null) {
    verdict = "not yet: " + data.rows + " of " + data.min_rows + " predictions in the window";
  }
  const rows = [
    ["drifted", verdict],
    ["reference", data.reference.source],
    ["window", data.rows + " of the last " + data.window + " predictions"],
  ];
  if (data.confidence) {
    rows.push(["confidence PSI", number(data.confidence.psi, 3)]);
    rows.push(["confidence KS p", Number(data.confidence.ks_pvalue).toPrecision(2)]);
    rows.push(["mean confidence", number(data.confidence.mean, 3) + " (reference "
      + number(data.confidence.reference_mean, 3) + ")"]);
  }
  if (data.labels) rows.push(["label PSI", number(data.labels.psi, 3)]);
  if (data.stages) rows.push(["stage PSI", number(data.stages.psi, 3)]);
  if (data.review) {
    rows.push(["escalated", percent(data.review.share) + " (budget "
      + (data.review.budget === null ? "–" : percent(data.review.budget)) + ")"]);
  }
  for (const [name, value] of rows) {
    const shown = element("dd", value);
    shown.dataset.name = name;
    box.append(element("dt", name), shown);
  }
}

// ---- review queue ----------------------------------------------------------------------

function labelChoice(suggested) {
  const select = element("select");
  select.multiple = Boolean(state.model && state.model.multi_label);
  const chosen = new Set(Array.isArray(suggested) ? suggested : [suggested]);
  for (const label of (state.model && state.model.labels) || []) {
    const option = element("option", label);
    option.value = label;
    option.selected = chosen.has(label);
    select.append(option);
  }
  return select;
}

function reviewEntry(item) {
  const entry = element("li");
  entry.dataset.prediction = item.prediction_id;
  const text = item.text === null
    ? "(the text was not stored: the server logs texts with --log-text full)" : item.text;
  entry.append(element("p", text, "review-text"));
  const suggested = item.labels || item.label;
  const about = "suggested " + (Array.isArray(suggested) ? suggested.join(", ") : suggested)
    + (typeof item.confidence === "number" ? " · confidence " + percent(item.confidence) : "")
    + (item.stage ? " · stage " + item.stage : "") + " · " + item.created.replace("T", " ");
  entry.append(element("p", about, "muted small"));
  const form = element("form", null, "row");
  const select = labelChoice(suggested);
  const save = element("button", "Save label");
  save.type = "submit";
  const status = element("span", "", "muted");
  form.append(select, save, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = Array.from(select.selectedOptions, (option) => option.value);
    if (!chosen.length) { status.textContent = "pick the right label first"; return; }
    const what = state.model && state.model.multi_label ? { labels: chosen } : { label: chosen[0] };
    save.disabled = true;
    try {
      await api("POST", "/v1/feedback", { prediction_id: item.prediction_id,
        idempotency_key: (item.prediction_id + ":" + JSON.stringify(what)).slice(0, 200), ...what });
      entry.remove();
      $("review-count").textContent = $("review-items").children.length + " waiting";
    } catch (err) {
      status.textContent = "not stored: " + err.message;
      save.disabled = false;
    }
  });
  entry.append(form);
  return entry;
}

async function loadReview() {
  await state.modelReady;  // the label choices come from the model: a race left them empty
  try {
    const { data } = await api("GET", "/v1/review?limit=50");
    const list = $("review-items");
    list.replaceChildren(...data.items.map(reviewEntry));
    $("review-count").textContent = data.items.length + " waiting";
    showError("");
  } catch (err) {
    showError(err.message);
  }
}

// ---- views -----------------------------------------------------------------------------

const VIEWS = ["classify", "review", "traffic"];

function showView() {
  const shown = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "classify";
  for (const view of VIEWS) {
    $(view + "-view").hidden = view !== shown;
    $("tab-" + view).classList.toggle("current", view === shown);
  }
  if (shown === "traffic") loadTraffic();
  if (shown === "review") loadReview();
}

function useKey(event) {
  event.preventDefault();
  state.key = $("key").value.trim();
  state.modelReady = loadModel();
  state.modelReady.then(() => {
    if (location.hash === "#traffic") loadTraffic();
    if (location.hash === "#review") loadReview();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", useKey);
  $("file").addEventListener("change", readFile);
  $("run-classify").addEventListener("click", classify);
  $("correct-form").addEventListener("submit", sendCorrection);
  for (const button of $("rating").querySelectorAll("button")) {
    button.addEventListener("click", sendRating);
  }
  $("refresh").addEventListener("click", loadTraffic);
  $("refresh-review").addEventListener("click", loadReview);
  $("days").addEventListener("change", loadTraffic);
  window.addEventListener("hashchange", showView);
  state.modelReady = loadModel();
  showView();
});
