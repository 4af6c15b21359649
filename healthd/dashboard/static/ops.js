// Operator side of the dashboard: the token, component controls and the runs view.
// The token lives in this tab's sessionStorage only and travels as "Authorization: Bearer"
// on /api/control and /api/runs; healthd forwards it (runs) or checks it (controls, ADMIN)
// and never stores it. Uses el/pill/$/ago from dashboard.js; all text via textContent.
"use strict";

const TOKEN_KEY = "vigil.token";
const RUN_STATES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"];
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let runsOn = false;
let runsTimer = null;
let openRun = "";

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = "Bearer " + token;
  const resp = await fetch(path, { ...options, headers, cache: "no-store" });
  const body = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
  if (!resp.ok) throw new Error(`${resp.status} ${body.code || ""}: ${body.error || resp.statusText}`);
  return body;
}

function say(id, text, bad) {
  const node = $(id);
  node.textContent = text;
  node.className = "sub msg-line" + (bad ? " bad" : "");
}

// --- token ------------------------------------------------------------------------
function setToken(value) {
  token = value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  $("token-state").textContent = token ? "token set (this tab only)" : "no token";
  document.body.classList.toggle("has-token", Boolean(token));
  if (runsOn) loadRuns();
}

// --- component controls -------------------------------------------------------------
const CONTROLS = [
  ["heal", "Heal"],
  ["restart", "Restart"],
  ["stop", "Stop"],
  ["start", "Start"],
  ["maintenance_on", "Maintenance on"],
  ["maintenance_off", "Maintenance off"],
];

function shown(c, action) {
  // restart/stop/start act on supervised processes (ControlComponent); a stopped one can only start
  const supervised = Boolean(c.pid || (c.replicas && c.replicas.length));
  const stopped = c.heal_state === "STOPPED";
  if (action === "restart" || action === "stop") return supervised && !stopped;
  if (action === "start") return supervised && stopped;
  if (action === "maintenance_on") return !c.maintenance;
  if (action === "maintenance_off") return c.maintenance;
  return true;
}

function componentControls(c) {
  const box = el("div", "controls");
  for (const [action, label] of CONTROLS) {
    if (!shown(c, action)) continue;
    const button = el("button", "ctl", label);
    button.type = "button";
    button.dataset.action = action;
    button.addEventListener("click", () => control(c.name, action));
    box.append(button);
  }
  return box;
}

async function control(component, action) {
  if (!token) return say("control-msg", "enter an ADMIN token first", true);
  try {
    const r = await api("/api/control", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ component, action, reason: "dashboard" }),
    });
    say("control-msg", `${action} ${component}: ${r.message}`, false);
  } catch (err) {
    say("control-msg", `${action} ${component}: ${err.message}`, true);
  }
}

// --- runs view ------------------------------------------------------------------------
function showRunsView(on) {
  $("runs-section").hidden = !on;
  if (on === runsOn) return;
  runsOn = on;
  clearInterval(runsTimer);
  if (on) {
    loadRuns();
    runsTimer = setInterval(loadRuns, 5000);
  }
}

function chart(series) {
  // Bars: runs finished per minute (failed part in red); the line: failure rate (0-100 %).
  const w = 600, h = 90, pad = 4;
  const root = svg("svg", { class: "runs-chart", viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none" });
  const top = Math.max(1, ...series.map((b) => Math.max(b.finished, b.started)));
  const bw = w / series.length;
  series.forEach((b, i) => {
    const x = i * bw + 1;
    const okH = ((b.finished - b.failed) / top) * (h - pad);
    const badH = (b.failed / top) * (h - pad);
    root.append(svg("rect", { class: "ok", x, y: h - okH, width: bw - 2, height: okH }));
    root.append(svg("rect", { class: "bad", x, y: h - okH - badH, width: bw - 2, height: badH }));
  });
  const line = series
    .map((b, i) => `${(i * bw + bw / 2).toFixed(1)},${(h - pad - b.failure_rate * (h - 2 * pad)).toFixed(1)}`)
    .join(" ");
  root.append(svg("polyline", { class: "rate", points: line }));
  return root;
}

function statePill(s) {
  return pill(s, s === "SUCCEEDED" ? "ok" : s === "FAILED" || s === "TIMED_OUT" ? "critical" : "pending");
}

function renderRuns(data) {
  const counts = $("run-counts");
  counts.replaceChildren(
    ...RUN_STATES.map((s) => {
      const chip = el("span", "count-chip");
      chip.dataset.state = s;
      chip.append(statePill(s));
      chip.append(el("b", "", data.counts[s] || 0));
      return chip;
    })
  );
  const recent = data.series.slice(-5);
  const finished = recent.reduce((n, b) => n + b.finished, 0);
  const failed = recent.reduce((n, b) => n + b.failed, 0);
  $("run-rates").textContent =
    `last 5 min: ${(finished / 5).toFixed(1)} runs/min, failure rate ` +
    `${finished ? Math.round((100 * failed) / finished) : 0}% · ${data.window} newest runs read`;
  $("run-chart").replaceChildren(chart(data.series));
  const rows = data.runs.map((r) => {
    const row = el("tr", "run-row");
    row.dataset.runId = r.run_id;
    row.dataset.state = r.state;
    const when = new Date(r.created_at * 1000).toLocaleTimeString();
    const dur = r.duration_s === null ? "—" : `${r.duration_s.toFixed(2)} s`;
    const cells = [r.run_id.slice(0, 12), r.workflow, null, String(r.attempts), dur, when];
    cells.forEach((text, i) => {
      const td = el("td", "", text);
      if (i === 2) td.append(statePill(r.state));
      row.append(td);
    });
    row.title = r.error || r.run_id;
    row.addEventListener("click", () => loadRun(r.run_id));
    return row;
  });
  $("runs").replaceChildren(...(rows.length ? rows : [el("tr", "", "")]));
  if (!rows.length) $("runs").firstChild.append(el("td", "empty", "No runs yet."));
}

async function loadRuns() {
  if (!token) return say("runs-msg", "enter a token to see runs (read as that principal)", true);
  try {
    renderRuns(await api("/api/runs"));
    say("runs-msg", "", false);
    if (openRun) loadRun(openRun);
  } catch (err) {
    say("runs-msg", "runs: " + err.message, true);
  }
}

async function loadRun(runId) {
  openRun = runId;
  const box = $("run-detail");
  try {
    const r = await api("/api/runs/" + encodeURIComponent(runId));
    box.hidden = false;
    box.dataset.runId = r.run_id;
    const head = el("div", "item-head");
    head.append(el("span", "what", `${r.workflow} · ${r.run_id}`), statePill(r.state));
    const parts = [head];
    const sub = `attempts ${r.attempts}` + (r.principal ? ` · started by ${r.principal}` : "");
    parts.push(el("div", "sub", sub));
    if (r.error) parts.push(el("div", "sub last-error", r.error));
    if (r.trace_link && /^https?:\/\//.test(r.trace_link)) {
      const a = el("a", "trace-link", "trace " + r.trace_id);
      a.href = r.trace_link;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      parts.push(a);
    }
    const steps = el("table", "steps");
    for (const s of r.run.steps || []) {
      const row = el("tr", "step");
      const status = s.error ? "failed" : s.completed ? "done" : "running";
      const took = s.duration ? s.duration : "";
      for (const text of [s.name, status, `×${s.executions || 1}`, took, s.error ? s.error.message || "" : ""]) {
        row.append(el("td", "", text));
      }
      steps.append(row);
    }
    parts.push(steps);
    const history = el("table", "history");
    for (const h of r.history || []) {
      const row = el("tr", "history-event");
      row.dataset.type = h.type;
      const took = h.duration_s === null ? "" : `${(h.duration_s * 1000).toFixed(1)} ms`;
      const what = h.step ? `${h.type.toLowerCase()} ${h.step}` : h.type.toLowerCase();
      for (const text of [new Date(h.at * 1000).toLocaleTimeString(), what, h.attempt ? `#${h.attempt}` : "", took, h.error]) {
        row.append(el("td", "", text));
      }
      history.append(row);
    }
    parts.push(el("div", "label", "history"), history);
    box.replaceChildren(...parts);
  } catch (err) {
    say("runs-msg", `run ${runId}: ${err.message}`, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken($("token").value);
    $("token").value = "";
  });
  $("token-clear").addEventListener("click", () => setToken(""));
  setToken(token);
});
