// Vigil dashboard: renders /api/health state and follows /events (Server-Sent Events).
// All text goes through textContent (never innerHTML): component names, messages and
// alert summaries come from configs and services and must not be able to inject markup.
"use strict";

const LEVELS = ["NORMAL", "DEGRADED", "RESTRICTED", "READ_ONLY", "OFFLINE"];
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function pill(text, cls) {
  return el("span", "pill " + (cls || text), text);
}

function ago(ts) {
  if (!ts) return "never";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 2) return "just now";
  if (s < 60) return Math.round(s) + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  return Math.round(s / 3600) + "h ago";
}

function sparkline(points) {
  const w = 300, h = 44, pad = 3;
  const root = svg("svg", { class: "spark", viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none" });
  if (!points.length) return root;
  const values = points.map((p) => p[1]);
  const top = Math.max(...values, 0.001);
  // A single sample is drawn as a flat line across, so a new component does not look empty.
  const series = points.length === 1 ? [points[0], points[0]] : points;
  const step = w / (series.length - 1);
  const xy = series.map((p, i) => [i * step, h - pad - (p[1] / top) * (h - 2 * pad)]);
  const line = xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  root.append(svg("polygon", { class: "area", points: `0,${h} ${line} ${xy[xy.length - 1][0].toFixed(1)},${h}` }));
  root.append(svg("polyline", { class: "line", points: line }));
  series.forEach((p, i) => {
    if (p[2] !== "SERVING") root.append(svg("circle", { class: "bad", cx: xy[i][0], cy: xy[i][1], r: 2.6 }));
  });
  return root;
}

function renderSystem(sys) {
  const card = $("system-card");
  card.className = "card status-card " + sys.status;
  $("system-status").textContent = sys.shutting_down ? "SHUTTING DOWN" : sys.status;
  $("system-detail").textContent = sys.ready ? "ready for traffic" : "not ready: a critical component is down";
  $("score").textContent = sys.score;
  const ring = $("score-ring");
  ring.style.strokeDashoffset = String(314.16 * (1 - sys.score / 100));
  ring.style.stroke = sys.score >= 90 ? "var(--ok)" : sys.score >= 60 ? "var(--warn)" : "var(--bad)";
  const levels = $("levels");
  levels.replaceChildren(
    ...LEVELS.map((l) => el("span", l === sys.level ? "on " + l : l, l.replace("_", " ")))
  );
  for (const id of ["liveness", "readiness"]) {
    $(id).textContent = sys[id];
    $(id).className = sys[id];
  }
  $("liveness-reason").textContent = sys.liveness_reason || "";
}

function renderComponent(c) {
  const card = el("article", "comp " + c.status);
  card.dataset.component = c.name;
  card.dataset.status = c.status;
  const head = el("div", "comp-head");
  const name = el("div", "comp-name");
  // Break long gRPC names at their dots, not mid-word.
  c.name.split(".").forEach((part, i, all) => {
    name.append(document.createTextNode(part + (i < all.length - 1 ? "." : "")));
    if (i < all.length - 1) name.append(document.createElement("wbr"));
  });
  if (c.critical) name.append(el("span", "tag", "critical"));
  head.append(name, pill(c.status));
  card.append(head);
  if (c.status !== "SERVING" && (c.reason || c.cause)) {
    card.append(el("div", "sub", c.reason.replace("_", " ").toLowerCase() + (c.cause ? ": " + c.cause : "")));
  }
  card.append(sparkline(c.latency));
  const latest = c.latency.length ? c.latency[c.latency.length - 1][1] : null;
  const meta = el("div", "spark-meta");
  // A failing card says why it fails; the last good latency would be stale and misleading.
  const failing = c.status !== "SERVING" && c.last_error;
  meta.append(
    failing
      ? Object.assign(el("span", "last-error", c.last_error), { title: c.last_error })
      : el("span", "latency", latest === null ? "no samples yet" : `latency ${latest.toFixed(1)} ms`),
    el("span", "", "checked " + ago(c.last_check_at))
  );
  card.append(meta);
  const heal = el("div", "heal");
  heal.append(el("span", "", "healing"), pill(c.heal_state));
  heal.append(el("span", "", `${c.heal_attempts} attempt${c.heal_attempts === 1 ? "" : "s"}`));
  if (c.heal_state === "BACKOFF" && c.backoff_left_s) heal.append(el("span", "", `next in ${c.backoff_left_s}s`));
  if (c.pid) heal.append(el("span", "", `pid ${c.pid}`));
  if (c.restarts) heal.append(el("span", "", `${c.restarts} restart${c.restarts === 1 ? "" : "s"}`));
  if (c.maintenance) heal.append(pill("maintenance", "pending"));
  card.append(heal);
  if (c.heal_reason && c.heal_state !== "HEALTHY") card.append(el("div", "sub", c.heal_reason));
  const checks = el("div", "checks");
  for (const k of c.checks) {
    const row = el("div", "check " + k.status);
    row.append(el("span", "k", k.kind), el("span", "msg", k.message || `${k.latency_ms.toFixed(1)} ms`));
    row.title = `${k.kind}: ${k.status} in ${k.latency_ms} ms ${k.message || ""}`;
    checks.append(row);
  }
  card.append(checks);
  card.append(componentControls(c)); // ops.js
  return card;
}

function renderAlerts(alerts) {
  const box = $("alerts");
  const firing = alerts.filter((a) => a.state === "firing").length;
  $("alert-count").textContent = firing ? `${firing} firing` : "";
  if (!alerts.length) return box.replaceChildren(el("div", "empty", "No alerts."));
  box.replaceChildren(
    ...alerts.map((a) => {
      const item = el("div", "item alert " + a.state + (a.caused_by ? " caused" : ""));
      item.dataset.rule = a.rule;
      item.dataset.state = a.state;
      item.dataset.component = a.labels.component || "";
      item.dataset.causedBy = a.caused_by || "";
      const head = el("div", "item-head");
      const what = el("span", "what", a.rule);
      const labels = Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(" ");
      head.append(what, el("span", ""));
      head.lastChild.append(pill(a.severity), document.createTextNode(" "), pill(a.state));
      item.append(head, el("div", "text", a.summary || labels));
      if (a.caused_by) item.append(el("div", "text caused-by", "caused by " + a.caused_by + " (grouped, not paged)"));
      const since = a.state === "resolved" ? "resolved " + ago(a.resolved_at) : "since " + ago(a.since);
      item.append(el("div", "when", since + (a.escalations ? ` · escalated ×${a.escalations}` : "")));
      return item;
    })
  );
}

function renderEvents(events) {
  const box = $("events");
  if (!events.length) return box.replaceChildren(el("div", "empty", "No events yet."));
  box.replaceChildren(
    ...events.slice(0, 40).map((e) => {
      const item = el("div", "item event");
      const head = el("div", "item-head");
      const what = el("span", "what");
      what.append(el("span", "kind", e.kind.replace("_", " ")), document.createTextNode(e.component || "system"));
      head.append(what, el("span", "when", ago(e.at)));
      item.append(head, el("div", "text", e.message));
      return item;
    })
  );
}

let last = null;
function render(state) {
  last = state;
  document.title = `${state.system.status} · ${state.title || "Vigil"} health`;
  renderSystem(state.system);
  const comps = [...state.components].sort(
    (a, b) => (a.status === "SERVING") - (b.status === "SERVING") || a.name.localeCompare(b.name)
  );
  $("components").replaceChildren(...comps.map(renderComponent));
  const down = comps.filter((c) => c.status !== "SERVING").length;
  $("component-count").textContent = down ? `${down} of ${comps.length} down` : `${comps.length}`;
  renderAlerts(state.alerts);
  renderEvents(state.events);
  showRunsView(state.runs_view); // ops.js
  $("updated").textContent = "updated " + new Date(state.generated_at * 1000).toLocaleTimeString();
}

function setLive(on, text) {
  $("live").className = "live " + (on ? "on" : "off");
  $("live-text").textContent = text;
}

function connect() {
  const source = new EventSource("/events");
  source.addEventListener("open", () => setLive(true, "live"));
  source.addEventListener("state", (msg) => {
    setLive(true, "live");
    render(JSON.parse(msg.data));
  });
  source.addEventListener("error", () => setLive(false, "reconnecting…")); // EventSource retries by itself
}

fetch("/api/health")
  .then((r) => r.json())
  .then((s) => { if (!last) render(s); })
  .catch(() => setLive(false, "healthd unreachable"));
connect();
// Relative times ("12s ago") keep moving between pushes.
setInterval(() => { if (last) { renderAlerts(last.alerts); renderEvents(last.events); } }, 5000);
