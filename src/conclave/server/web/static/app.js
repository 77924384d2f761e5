// conclave's page. Plain JavaScript, no build step, no third-party code.
// It uses the public API with the key typed into the page (sessionStorage, Bearer header):
// GET /v1/models, POST /v1/consensus/stream (read with fetch, not EventSource, so that the
// key travels in a header, never in a URL; with `documents` when a collection is typed),
// GET /v1/transcripts[/{id}[/receipt|/verification]].
"use strict";

const KEY_STORAGE = "conclave.apiKey";
const HISTORY_PAGE = 30;

const state = {
  messages: [],        // the conversation so far: [{role, content}]
  runId: null,         // the run shown under "This run"
  controller: null,    // aborts the run in flight
  historyOffset: 0,
  rounds: new Map(),   // round index -> {section, members: Map(name -> card), aggregate}
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// --- the API --------------------------------------------------------------------------------

function headers(extra = {}) {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

async function api(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) {
    const message = await errorMessage(response);
    throw new Error(response.status === 401 ? `${message} (type the server's API key above)` : message);
  }
  return response;
}

// --- errors and status ----------------------------------------------------------------------

function showError(message, failures = []) {
  const box = $("error");
  box.textContent = message;
  for (const failure of failures) {
    box.append("\n", `${failure.model} (round ${failure.round + 1}) failed: ${failure.type}: ${failure.message}`);
  }
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function setStatus(text) {
  $("run-status").textContent = text;
}

// --- presets --------------------------------------------------------------------------------

async function loadPresets() {
  const select = $("preset");
  try {
    const list = await (await api("/v1/models")).json();
    select.replaceChildren();
    for (const card of list.data) {
      const option = el("option", { value: card.id, text: card.id });
      option.dataset.members = (card.members || []).join(", ");
      option.dataset.aggregator = card.aggregator || "";
      option.dataset.strategy = card.strategy || "";
      option.dataset.strategies = (card.strategies || []).join(" ");
      select.append(option);
    }
    describePreset();
  } catch (error) {
    showError(`Could not list the presets: ${error.message}`);
  }
}

function describePreset() {
  const option = $("preset").selectedOptions[0];
  if (!option) return;
  $("preset-info").textContent =
    `members ${option.dataset.members}; aggregator ${option.dataset.aggregator}`;
  // The preset's own strategy first (the plain preset name), then `<preset>:<strategy>`.
  const own = option.dataset.strategy;
  const chosen = $("strategy").value;
  const others = option.dataset.strategies.split(" ").filter((name) => name && name !== own);
  $("strategy").replaceChildren(
    el("option", { value: "", text: own ? `${own} (the preset's)` : "the preset's" }),
    ...others.map((name) => el("option", { value: name, text: name })));
  if (others.includes(chosen)) $("strategy").value = chosen;
}

// The model name the API is asked for: a preset, or `<preset>:<strategy>` for another strategy.
function chosenModel() {
  const preset = $("preset").value || "default";
  const strategy = $("strategy").value;
  return strategy ? `${preset}:${strategy}` : preset;
}

// The document collection to ground the answer in, when one is typed.
function chosenDocuments() {
  const collection = $("documents").value.trim();
  return collection ? { documents: collection } : {};
}

// --- the conversation -----------------------------------------------------------------------

function renderConversation() {
  const box = $("conversation");
  box.replaceChildren();
  for (const message of state.messages) {
    if (message.role === "system") continue;
    const who = message.role === "user" ? "You" : "Consensus";
    box.append(el("div", { class: `turn ${message.role}` },
      el("div", { class: "who", text: who }), el("p", { text: message.content })));
  }
}

function newConversation() {
  state.messages = [];
  renderConversation();
  $("run").hidden = true;
  markCurrent(null);
  clearError();
  $("prompt").focus();
}

// --- one run, shown as it happens ------------------------------------------------------------

function resetRun() {
  state.rounds.clear();
  state.runId = null;
  $("rounds").replaceChildren();
  $("final-answer").textContent = "";
  $("sources").hidden = true;
  $("sources-list").replaceChildren();
  $("run-facts").replaceChildren();
  $("receipt-download").disabled = true;
  $("receipt-status").textContent = "";
  $("receipt-checks").replaceChildren();
  $("run").hidden = false;
}

function roundView(index, members = []) {
  let view = state.rounds.get(index);
  if (view) return view;
  const title = index === 0 ? "Round 1: the panel answers" : `Round ${index + 1}: improvement`;
  const list = el("div", { class: "members" });
  const aggregateText = el("p", { class: "text" });
  const aggregateStatus = el("span", { class: "badge waiting", text: "waiting" });
  const fallbackNotes = el("ul", { class: "fallbacks" });
  const aggregate = el("div", { class: "aggregate" },
    el("header", {}, el("strong", { text: "Aggregate " }), aggregateStatus), fallbackNotes,
    aggregateText);
  const section = el("section", { class: "round", "data-round": String(index + 1),
    "aria-label": `Round ${index + 1}` }, el("h3", { text: title }), list, aggregate);
  $("rounds").append(section);
  view = { section, list, members: new Map(), aggregateText, aggregateStatus, fallbackNotes };
  state.rounds.set(index, view);
  for (const name of members) memberCard(view, name);
  return view;
}

function memberCard(view, name) {
  let card = view.members.get(name);
  if (card) return card;
  const badge = el("span", { class: "badge waiting", text: "waiting" });
  const text = el("p", { class: "text" });
  const meta = el("span", { class: "muted" });
  const node = el("article", { class: "member", "data-member": name, "aria-label": `Member ${name}` },
    el("header", {}, el("span", { class: "name", text: name }), badge), meta, text);
  view.list.append(node);
  card = { node, badge, text, meta };
  view.members.set(name, card);
  return card;
}

function showResponse(card, response) {
  const failed = Boolean(response.error);
  card.node.classList.toggle("failed", failed);
  card.badge.className = `badge ${failed ? "failed" : "answered"}`;
  card.badge.textContent = failed ? "failed" : "answered";
  const tokens = response.usage ? response.usage.completion_tokens : 0;
  card.meta.textContent = `${response.latency_s.toFixed(2)} s, ${tokens} token${tokens === 1 ? "" : "s"}` +
    (response.truncated ? ", truncated" : "");
  card.text.textContent = failed ? `${response.error.type}: ${response.error.message}` : response.text;
}

// Who writes a round's consensus when its aggregator did not.
const FALLBACK_NAMES = {
  fallback_aggregator: "the fallback aggregator",
  fallback_vote: "a vote of the answers",
  previous_round: "the previous round's consensus",
};

function showAggregate(view, response, decidedBy) {
  const failed = Boolean(response.error);
  const fallback = FALLBACK_NAMES[decidedBy];
  view.aggregateStatus.className = `badge ${failed ? "failed" : fallback ? "fallback" : "answered"}`;
  view.aggregateStatus.textContent = failed ? "failed" : fallback ? `done by ${fallback}` : "done";
  view.aggregateText.textContent = failed ? `${response.error.type}: ${response.error.message}` : response.text;
}

// The aggregator (or a fallback) did not write the consensus: say which call, why, and who does.
function showFallback(view, event) {
  const error = event.failed.error;
  const why = !error ? "gave no consensus"
    : error.type === "cooldown" ? "is resting after repeated failures"
    : `failed (${error.type}: ${error.message})`;
  const name = FALLBACK_NAMES[event.fallback] || event.fallback;
  view.fallbackNotes.append(el("li", { text: `${event.failed.model} ${why}; ${name} writes the consensus.` }));
}

// --- a swarm's plan: its steps, what each depends on, and how each is going ------------------

const STEP_BADGES = {
  waiting: ["waiting", "waiting"], working: ["waiting", "working"], done: ["answered", "done"],
  failed: ["failed", "failed"], skipped: ["failed", "skipped"],
};

function planView(roundIndex) {
  const view = roundView(roundIndex);
  if (view.plan) return view.plan;
  const summary = el("span", { class: "muted" });
  const list = el("ol", { class: "plan" });
  const node = el("section", { class: "plan-view", "aria-label": "Plan" },
    el("header", {}, el("strong", { text: "Plan " }), summary), list);
  view.section.insertBefore(node, view.list);
  view.section.querySelector("h3").textContent = `Round ${roundIndex + 1}: the plan and its steps`;
  view.plan = { summary, list, steps: new Map() };
  return view.plan;
}

function planStep(plan, step) {
  let item = plan.steps.get(step.id);
  if (item) return item;
  const badge = el("span", { class: "badge waiting", text: "waiting" });
  const needs = step.depends_on.length ? ` · uses step ${step.depends_on.join(", ")}` : "";
  const meta = el("span", { class: "muted" });
  const text = el("p", { class: "text" });
  const node = el("li", { class: "plan-step", "data-step": String(step.id), "aria-label": `Step ${step.id}` },
    el("header", {}, el("span", { class: "name", text: `Step ${step.id} · ${step.agent}${needs}` }), badge),
    el("p", { class: "instruction", text: step.instruction }), meta, text);
  plan.list.append(node);
  item = { node, badge, meta, text, calls: 0 };
  plan.steps.set(step.id, item);
  return item;
}

function showStepStatus(item, status, text) {
  const [style, label] = STEP_BADGES[status] || STEP_BADGES.waiting;
  item.badge.className = `badge ${style}`;
  item.badge.textContent = label;
  item.node.classList.toggle("failed", status === "failed" || status === "skipped");
  if (text != null) item.text.textContent = text;
}

// The plan from a swarm's report: every step, and the result of those that ended.
function showSwarmReport(roundIndex, report) {
  const plan = planView(roundIndex);
  const record = report.plan;
  const how = { first: "", repaired: ", repaired", fallback: ", the fallback: no valid plan came" };
  const count = record.plan.steps.length;
  plan.summary.textContent = `${count} step${count === 1 ? "" : "s"}${how[record.source] || ""}`;
  for (const step of record.plan.steps) planStep(plan, step);
  for (const result of report.steps) {
    const item = planStep(plan, result.step);
    const seconds = (result.finished_s - result.started_s).toFixed(2);
    item.meta.textContent = `${seconds} s${result.members.length ? ` · ${result.members.join(", ")}` : ""}`;
    showStepStatus(item, result.status, result.status === "done" ? result.output : result.error);
  }
}

function showStepProgress(event) {
  if (event.round == null) return;
  if (event.report && event.report.kind === "swarm") showSwarmReport(event.round, event.report);
  const number = /^step (\d+)$/.exec(event.name);
  const item = number && state.rounds.get(event.round)?.plan?.steps.get(Number(number[1]));
  if (!item) return;
  if (event.status === "started") showStepStatus(item, "working");
  if (event.call) {
    item.calls += 1;
    item.meta.textContent = `${item.calls} call${item.calls === 1 ? "" : "s"}, latest ${event.call.model}`;
  }
}

function fact(name, value) {
  $("run-facts").append(el("div", {}, el("dt", { text: name }), el("dd", { text: value })));
}

// How far the members agreed: the score, who backed the answer, and the confidence in it.
function showAgreement(agreement) {
  if (typeof agreement === "number") { fact("agreement", agreement.toFixed(2)); return; }
  fact("agreement", (agreement.score ?? 0).toFixed(2));
  const supporters = agreement.supporters || [];
  fact("supporters", supporters.length ? supporters.join(", ") : "none");
  if (agreement.confidence != null) fact("confidence", agreement.confidence.toFixed(2));
}

// A grounded answer: each citation marker links to its passage's text, listed under the answer.
function showCitations(transcript) {
  const answer = transcript.answer || "";
  const citations = transcript.citations || [];
  const retrieval = (transcript.prepared || []).map((step) => step.report)
    .find((report) => report && report.kind === "retrieval");
  $("sources-list").replaceChildren();
  $("sources").hidden = !retrieval;
  if (!retrieval) return;
  const box = $("final-answer");
  box.replaceChildren();
  let at = 0;
  for (const citation of [...citations].sort((a, b) => a.answer_start - b.answer_start)) {
    box.append(answer.slice(at, citation.answer_start));
    box.append(el("a", { class: "cite", href: `#source-${citation.marker}`,
      title: citation.title, text: answer.slice(citation.answer_start, citation.answer_end) }));
    at = citation.answer_end;
  }
  box.append(answer.slice(at));
  const cited = new Map(citations.map((citation) => [citation.marker, citation]));
  for (const given of retrieval.passages) {
    const citation = cited.get(given.number);
    if (!citation) continue;
    const passage = given.passage;
    $("sources-list").append(el("li", { id: `source-${given.number}`, value: String(given.number) },
      el("strong", { text: passage.title }),
      el("span", { class: "muted", text: ` ${passage.path}, characters ${passage.start}-${passage.end}` }),
      el("blockquote", { class: "passage", text: passage.text })));
  }
  if (transcript.abstained) {
    $("sources-list").append(el("li", { class: "muted",
      text: `No passage of ${retrieval.collection} holds the answer.` }));
  }
}

function showTranscript(transcript) {
  $("final-answer").textContent = transcript.answer || "(no answer)";
  showCitations(transcript);
  $("run-facts").replaceChildren();
  const usage = transcript.usage || {};
  const calls = transcript.rounds.flatMap((round) => [...round.responses,
    ...(round.aggregate ? [round.aggregate] : []), ...(round.steps || []).flatMap((step) => step.calls)]);
  const failed = calls.filter((call) => call.error).length;
  fact("strategy", (transcript.config && transcript.config.strategy) || "flare");
  fact("stopped", transcript.stop_reason || "?");
  const last = transcript.rounds[transcript.rounds.length - 1];
  if (last) fact("decided by", (FALLBACK_NAMES[last.decided_by] || last.decided_by).replace(/^the /, ""));
  fact("rounds", String(transcript.rounds.length));
  fact("calls", `${calls.length} (${failed} failed)`);
  fact("tokens", String((usage.prompt_tokens || 0) + (usage.completion_tokens || 0)));
  fact("cost", usage.cost_usd == null ? "not reported" : `$${usage.cost_usd.toFixed(6)}`);
  fact("time", `${(transcript.duration_s || 0).toFixed(2)} s`);
  const agreement = transcript.agreement ?? (transcript.summary && transcript.summary.agreement);
  if (agreement != null) showAgreement(agreement);
  state.runId = transcript.id;
  $("receipt-download").disabled = false;
  checkReceipt(transcript.id);
}

const handlers = {
  run_started(event) { state.runId = event.run_id; setStatus(`running on ${event.members.length} members…`); },
  round_started(event) { roundView(event.round, event.members); setStatus(`round ${event.round + 1}…`); },
  member_answered(event) { showResponse(memberCard(roundView(event.round), event.response.model), event.response); },
  member_failed(event) { showResponse(memberCard(roundView(event.round), event.response.model), event.response); },
  aggregate_delta(event) {
    const view = roundView(event.round);
    view.aggregateStatus.textContent = "streaming";
    view.aggregateText.textContent += event.text;
  },
  aggregate_restarted(event) { roundView(event.round).aggregateText.textContent = ""; },
  combiner_fell_back(event) { showFallback(roundView(event.round), event); },
  aggregate_finished(event) { showAggregate(roundView(event.round), event.response, event.decided_by); },
  step_progress(event) {
    showStepProgress(event);
    if (event.status !== "note" && event.message) setStatus(`${event.step} ${event.name}: ${event.message}`);
  },
  round_finished(event) {
    const record = event.record;
    const text = record.revised_answer ?? (record.aggregate && record.aggregate.text);
    if (text != null) $("final-answer").textContent = text;
  },
  done(event) {
    const transcript = event.transcript;
    showTranscript(transcript);
    state.messages = [...transcript.conversation, { role: "assistant", content: transcript.answer }];
    renderConversation();
    setStatus("done");
    loadHistory();
  },
  error(event) {
    showError(event.error ? event.error.message : "the run failed", event.failures || []);
    setStatus("failed");
    if (event.transcript_id) loadHistory();
  },
};

function dispatch(frame) {
  let name = "message";
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith(":")) continue;  // keep-alive comment
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (!data.length || !handlers[name]) return;
  handlers[name](JSON.parse(data.join("\n")));
}

async function ask(event) {
  event.preventDefault();
  const prompt = $("prompt").value.trim();
  if (!prompt) return;
  clearError();
  resetRun();
  const messages = [...state.messages, { role: "user", content: prompt }];
  const controller = new AbortController();
  state.controller = controller;
  $("ask-button").disabled = true;
  $("stop-button").hidden = false;
  setStatus("starting…");
  try {
    const response = await fetch("/v1/consensus/stream", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ model: chosenModel(), messages, ...chosenDocuments() }),
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    state.messages = messages;
    renderConversation();
    $("prompt").value = "";
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (error) {
    if (error.name === "AbortError") setStatus("stopped");
    else { showError(error.message); setStatus("failed"); }
  } finally {
    state.controller = null;
    $("ask-button").disabled = false;
    $("stop-button").hidden = true;
  }
}

// --- receipts -------------------------------------------------------------------------------

async function checkReceipt(runId) {
  const status = $("receipt-status");
  const checks = $("receipt-checks");
  status.textContent = "checking…";
  checks.replaceChildren();
  try {
    const report = await (await api(`/v1/transcripts/${encodeURIComponent(runId)}/verification`)).json();
    if (state.runId !== runId) return;
    status.className = report.verified ? "verified" : "unverified";
    status.textContent = report.verified ? "verified" : "not fully verified";
    for (const check of report.checks) {
      checks.append(el("li", { class: check.status, text: `${check.name}: ${check.status.replace("_", " ")} (${check.detail})` }));
    }
  } catch (error) {
    status.className = "unverified";
    status.textContent = `no receipt: ${error.message}`;
  }
}

async function downloadReceipt() {
  const runId = state.runId;
  if (!runId) return;
  try {
    const blob = await (await api(`/v1/transcripts/${encodeURIComponent(runId)}/receipt`)).blob();
    const link = el("a", { href: URL.createObjectURL(blob), download: `conclave-receipt-${runId}.json` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    showError(`Could not download the receipt: ${error.message}`);
  }
}

// --- history --------------------------------------------------------------------------------

function markCurrent(runId) {
  for (const button of $("history-list").querySelectorAll("button")) {
    button.setAttribute("aria-current", String(button.dataset.run === runId));
  }
}

async function loadHistory(more = false) {
  if (!more) state.historyOffset = 0;
  const params = new URLSearchParams({ limit: String(HISTORY_PAGE), offset: String(state.historyOffset) });
  const words = $("history-q").value.trim();
  if (words) params.set("q", words);
  try {
    const page = await (await api(`/v1/transcripts?${params}`)).json();
    const list = $("history-list");
    if (!more) list.replaceChildren();
    for (const run of page.runs) {
      const when = new Date(run.created_at).toLocaleString();
      const outcome = run.ok ? (run.failed_calls ? `${run.failed_calls} failed call(s)` : "ok") : "failed";
      const turn = run.turn ? `, turn ${run.turn + 1}` : "";
      const button = el("button", { type: "button", "data-run": run.id },
        el("span", { class: "prompt", text: run.prompt || "(no prompt)" }),
        el("span", { class: "meta", text: `${when} · ${run.preset}${turn} · ${run.source} · ${outcome}` }));
      button.addEventListener("click", () => openRun(run.id));
      list.append(el("li", {}, button));
    }
    state.historyOffset = page.offset + page.runs.length;
    $("history-more").hidden = !page.more;
    $("history-status").textContent = page.total ? `${page.total} run(s)` : "No runs kept yet.";
    markCurrent(state.runId);
  } catch (error) {
    $("history-status").textContent = `History unavailable: ${error.message}`;
  }
}

async function openRun(runId) {
  clearError();
  try {
    const transcript = await (await api(`/v1/transcripts/${encodeURIComponent(runId)}`)).json();
    resetRun();
    for (const round of transcript.rounds) {
      const view = roundView(round.index, round.responses.map((response) => response.model));
      for (const response of round.responses) showResponse(memberCard(view, response.model), response);
      if (round.aggregate) showAggregate(view, round.aggregate);
      for (const step of round.steps || []) {
        if (step.report && step.report.kind === "swarm") showSwarmReport(round.index, step.report);
      }
    }
    showTranscript(transcript);
    state.messages = [...transcript.conversation, { role: "assistant", content: transcript.answer }];
    renderConversation();
    markCurrent(runId);
    setStatus("from history: ask again to continue this conversation");
  } catch (error) {
    showError(`Could not open that run: ${error.message}`);
  }
}

// --- start ----------------------------------------------------------------------------------

function useKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  $("api-key").value = "";
  $("api-key").placeholder = key ? "key set for this tab" : "only if the server asks for one";
  clearError();
  loadPresets();
  loadHistory();
}

function start() {
  if (sessionStorage.getItem(KEY_STORAGE)) $("api-key").placeholder = "key set for this tab";
  $("key-form").addEventListener("submit", useKey);
  $("ask-form").addEventListener("submit", ask);
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("ask-form").requestSubmit();
  });
  $("stop-button").addEventListener("click", () => state.controller && state.controller.abort());
  $("preset").addEventListener("change", describePreset);
  $("new-conversation").addEventListener("click", newConversation);
  $("history-search").addEventListener("submit", (event) => { event.preventDefault(); loadHistory(); });
  $("history-q").addEventListener("search", () => loadHistory());
  $("history-more").addEventListener("click", () => loadHistory(true));
  $("receipt-download").addEventListener("click", downloadReceipt);
  loadPresets();
  loadHistory();
}

document.addEventListener("DOMContentLoaded", start);
