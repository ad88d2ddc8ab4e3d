// The Vidra dashboard: renders the page model the plugin streams as
// server-sent events (/api/stream) and previews branch diffs (/api/diff).
// Plain DOM, text only through textContent: nothing from the cluster is
// ever parsed as HTML.
"use strict";

const openState = new Map(); // node key → open or closed, kept across updates
let lastPage = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return e;
}

function ago(iso) {
  if (!iso) return "";
  const t = Date.parse(iso);
  if (isNaN(t)) return "";
  let s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return s + "s ago";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m ago";
  const h = Math.floor(m / 60);
  if (h < 48) return h + "h" + (m % 60 ? (m % 60) + "m" : "") + " ago";
  return Math.floor(h / 24) + "d ago";
}

function badge(cls, text, field, title) {
  return el("span", { class: "badge " + cls, "data-field": field, title: title || "" }, text);
}

function stateBadge(state, message) {
  return badge("s-" + state, state, "state", message);
}

function healthBadge(h) {
  if (!h || !h.status) return null;
  const counts = [];
  if (h.current) counts.push(h.current + " current");
  if (h.inProgress) counts.push(h.inProgress + " in progress");
  if (h.failed) counts.push(h.failed + " failed");
  if (h.unknown) counts.push(h.unknown + " unknown");
  return badge("h-" + h.status, "health " + h.status, "health", counts.join(", "));
}

function whenSpan(iso, label) {
  if (!iso) return null;
  return el("span", { class: "when", title: iso, "data-field": "last-change" }, (label || "changed ") + ago(iso));
}

function conditionsTable(conds) {
  if (!conds || conds.length === 0) return null;
  return el("table", { class: "conds" },
    el("thead", {}, el("tr", {}, el("th", {}, "Condition"), el("th", {}, "Status"), el("th", {}, "Reason"), el("th", {}, "Message"), el("th", {}, "Since"))),
    el("tbody", {}, conds.map(c => el("tr", { class: "condition", "data-type": c.type, "data-status": c.status },
      el("td", {}, c.type), el("td", {}, c.status), el("td", {}, c.reason || ""), el("td", {}, c.message || ""),
      el("td", { title: c.lastTransitionTime || "" }, ago(c.lastTransitionTime))))));
}

function eventsTable(events) {
  if (!events || events.length === 0) return null;
  return el("table", { class: "events" },
    el("thead", {}, el("tr", {}, el("th", {}, "Event"), el("th", {}, "Reason"), el("th", {}, "Message"), el("th", {}, "Count"), el("th", {}, "When"))),
    el("tbody", {}, events.map(e => el("tr", { class: "event ev-" + e.type, "data-reason": e.reason },
      el("td", {}, e.type), el("td", {}, e.reason), el("td", {}, e.message), el("td", {}, String(e.count)),
      el("td", { title: e.time }, ago(e.time))))));
}

// node builds one collapsible tree node; key identifies it across updates.
function node(key, cls, attrs, summary, body, children, openByDefault) {
  const details = el("details", {});
  details.open = openState.has(key) ? openState.get(key) : openByDefault;
  details.addEventListener("toggle", () => openState.set(key, details.open));
  details.append(el("summary", {}, summary));
  const b = body.filter(x => x);
  if (b.length) details.append(el("div", { class: "body" }, b));
  if (children && children.length) details.append(el("ul", { class: "children" }, children.map(c => el("li", {}, c))));
  return el("div", Object.assign({ class: "node " + cls, "data-key": key }, attrs), details);
}

function line(text, cls) {
  return text ? el("div", { class: "line " + (cls || "") }, text) : null;
}

function objectNode(parentKey, o) {
  const kind = o.kind + (o.apiVersion.includes("/") ? "." + o.apiVersion.split("/")[0] : "");
  const name = o.namespace ? o.namespace + "/" + o.name : o.name;
  const key = parentKey + "|" + kind + "|" + name + "|" + (o.server || "");
  const summary = [
    el("span", { class: "kind" }, kind), el("span", { class: "name" }, name),
    stateBadge(o.state, o.message),
    o.health ? badge("h-" + o.health, "health " + o.health, "health", o.healthMessage) : null,
    o.message ? el("span", { class: "msg" }, o.message) : null,
    whenSpan(o.lastChange),
  ];
  const body = [
    o.server ? line("cluster: " + o.server) : null,
    o.healthMessage ? line("health: " + o.healthMessage) : null,
    eventsTable(o.events) || line("no recent events", "muted"),
  ];
  return node(key, "object", {
    "data-kind": o.kind, "data-namespace": o.namespace || "", "data-name": o.name,
    "data-state": o.state, "data-health": o.health || "",
  }, summary, body, [], false);
}

function resourceNode(parentKey, r) {
  const key = parentKey + "|vr|" + r.name;
  const count = r.objects.length === 1 ? "1 object" : r.objects.length + " objects";
  const summary = [
    el("span", { class: "kind" }, "VidraResource"), el("span", { class: "name" }, r.name),
    stateBadge(r.state, r.message), healthBadge(r.health),
    el("span", { class: "msg" }, count + (r.artifact ? " · artifact " + r.artifact : "")),
    whenSpan(r.lastChange),
  ];
  const body = [
    r.destination !== "local" ? line("destination: " + r.destination) : null,
    r.state !== "Ready" ? line(r.message) : null,
    r.lastError ? line("last error: " + r.lastError, "error") : null,
    r.lastSyncTime ? line("last sync " + ago(r.lastSyncTime), "muted") : null,
    conditionsTable(r.conditions),
    eventsTable(r.events),
  ];
  return node(key, "resource", {
    "data-kind": "VidraResource", "data-name": r.name, "data-state": r.state,
    "data-health": r.health ? r.health.status : "",
  }, summary, body, r.objects.map(o => objectNode(key, o)), true);
}

function syncNode(s) {
  const key = "sync|" + s.name;
  const diffButton = el("button", { type: "button", class: "diff-btn", title: "Preview what Infrahub's branch would change" }, "Branch diff");
  diffButton.addEventListener("click", ev => { ev.preventDefault(); ev.stopPropagation(); openDiff(s); });
  const summary = [
    el("span", { class: "kind" }, "InfrahubSync"), el("span", { class: "name" }, s.name),
    stateBadge(s.state, s.message), healthBadge(s.health),
    el("span", { class: "msg" }, "branch " + s.branch + (s.targetDate ? " at " + s.targetDate : "")),
    whenSpan(s.lastChange), diffButton,
  ];
  const body = [
    s.message ? line(s.message) : null,
    line("source: " + s.source + " · artifact " + s.artifactName + " · destination " + (s.destination === "local" ? "local cluster" : s.destination), "muted"),
    line(s.lastSyncTime ? "last sync " + ago(s.lastSyncTime) : "never synced", "muted"),
    s.lastError ? line("last error: " + s.lastError, "error") : null,
    conditionsTable(s.conditions),
    eventsTable(s.events),
    s.resources.length === 0 ? line("no VidraResources yet", "muted") : null,
  ];
  return node(key, "sync", {
    "data-kind": "InfrahubSync", "data-name": s.name, "data-state": s.state,
    "data-health": s.health ? s.health.status : "",
  }, summary, body, s.resources.map(r => resourceNode(key, r)), true);
}

function render(page) {
  lastPage = page;
  document.body.dataset.revision = String(page.revision);
  document.getElementById("cluster").textContent = page.cluster || "";
  const n = page.syncs.length;
  const vrs = page.syncs.reduce((a, s) => a + s.resources.length, 0) + page.standaloneResources.length;
  document.getElementById("summary").textContent = n + (n === 1 ? " sync" : " syncs") + ", " + vrs + (vrs === 1 ? " VidraResource" : " VidraResources");
  const problems = document.getElementById("problems");
  problems.replaceChildren(...(page.problems || []).map(p => el("div", { class: "problem" }, p)));
  problems.hidden = !(page.problems && page.problems.length);
  const roots = page.syncs.map(syncNode);
  if (page.standaloneResources.length) {
    roots.push(node("standalone", "standalone", { "data-kind": "Standalone" },
      [el("span", { class: "name" }, "VidraResources without a sync")], [],
      page.standaloneResources.map(r => resourceNode("standalone", r)), true));
  }
  if (roots.length === 0) roots.push(el("div", { class: "empty" }, page.loading ? "Loading…" : "No InfrahubSyncs or VidraResources found."));
  document.getElementById("tree").replaceChildren(...roots);
}

function setConnection(state, text) {
  const c = document.getElementById("connection");
  c.className = "conn conn-" + state;
  c.textContent = text;
  document.body.dataset.connection = state;
}

function connect() {
  const es = new EventSource("api/stream");
  es.addEventListener("open", () => setConnection("live", "live"));
  es.addEventListener("page", ev => { setConnection("live", "live"); render(JSON.parse(ev.data)); });
  es.addEventListener("error", () => setConnection(es.readyState === EventSource.CLOSED ? "lost" : "connecting",
    es.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting"));
}

// The relative times age while nothing changes.
setInterval(() => { if (lastPage) render(lastPage); }, 30000);

let diffSync = null;

function openDiff(s) {
  diffSync = s;
  document.getElementById("diff-sync").textContent = s.name;
  document.getElementById("diff-branch").value = s.branch;
  document.getElementById("diff-at").value = s.targetDate || "";
  document.getElementById("diff-output").replaceChildren();
  document.getElementById("diff-status").textContent = "";
  document.getElementById("diff-panel").hidden = false;
  runDiff();
}

function showDiff(text) {
  const out = document.getElementById("diff-output");
  out.replaceChildren(...text.split("\n").map(l => {
    let cls = "";
    if (l.startsWith("+++") || l.startsWith("---")) cls = "file";
    else if (l.startsWith("+")) cls = "add";
    else if (l.startsWith("-")) cls = "del";
    else if (l.startsWith("@@")) cls = "hunk";
    return cls ? el("span", { class: cls }, l) : document.createTextNode(l + "\n");
  }));
}

async function runDiff() {
  if (!diffSync) return;
  const params = new URLSearchParams({ sync: diffSync.name });
  const branch = document.getElementById("diff-branch").value.trim();
  const at = document.getElementById("diff-at").value.trim();
  if (branch) params.set("branch", branch);
  if (at) params.set("at", at);
  const status = document.getElementById("diff-status");
  const panel = document.getElementById("diff-panel");
  panel.dataset.state = "running";
  status.textContent = "Reading Infrahub and dry-running every object…";
  try {
    const resp = await fetch("api/diff?" + params.toString());
    if (!resp.ok) throw new Error(resp.status + " " + (await resp.text()));
    const res = await resp.json();
    const verdict = res.exitCode === 0 ? "No changes." : res.exitCode === 1 ? "Changes:" : "The preview failed.";
    status.textContent = verdict + (res.messages ? "\n" + res.messages : "");
    showDiff(res.output);
    panel.dataset.state = "done";
    panel.dataset.exitCode = String(res.exitCode);
  } catch (err) {
    status.textContent = "The preview failed: " + err.message;
    panel.dataset.state = "failed";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("diff-form").addEventListener("submit", ev => { ev.preventDefault(); runDiff(); });
  document.getElementById("diff-close").addEventListener("click", () => { document.getElementById("diff-panel").hidden = true; diffSync = null; });
  connect();
});
