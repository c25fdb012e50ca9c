// Usage per day and model from GET /v1/usage?group_by=model and the newest
// requests from GET /v1/usage/requests, with the key from common.js.
//
// Charts are plain SVG built here rather than a charting library: a few bar
// charts do not justify vendoring (and keeping patched) a dependency, and DOM
// nodes made with createElementNS need no inline script or style, so they work
// offline under the page's strict CSP.
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const METRICS = [
  ["images", "Images"], ["pixels", "Pixels"], ["steps", "Steps"], ["gpu_seconds", "GPU-seconds"],
];

function el(ns, name, attrs, text) {
  const e = ns ? document.createElementNS(ns, name) : document.createElement(name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// fmt keeps big counts readable (1.2M pixels) and seconds to two decimals.
function fmt(v) {
  if (!Number.isInteger(v)) return v.toFixed(2);
  if (v >= 1e9) return (v / 1e9).toFixed(1) + "G";
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return String(v);
}

// byDay sums the rows of all keys into one total per date, oldest first.
function byDay(rows) {
  const m = new Map();
  for (const r of rows) {
    const t = m.get(r.date) || { date: r.date, images: 0, pixels: 0, steps: 0, gpu_seconds: 0 };
    for (const [k] of METRICS) t[k] += r[k] || 0;
    m.set(r.date, t);
  }
  return [...m.values()].sort((a, b) => a.date.localeCompare(b.date));
}

// barChart is an SVG bar chart of one metric, one bar per day, each bar
// titled with its date and value (shown on hover).
function barChart(days, key, label) {
  const W = 480, H = 140, top = 18, bottom = 18, left = 4;
  const max = Math.max(0, ...days.map((d) => d[key]));
  const svg = el(SVG, "svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": label + " per day", class: "chart" });
  svg.append(el(SVG, "text", { x: left, y: 12, "font-size": 12 }, `${label} per day (max ${fmt(max)})`));
  const bw = Math.min((W - left) / Math.max(days.length, 1), 40);
  days.forEach((d, i) => {
    const h = max > 0 ? (d[key] / max) * (H - top - bottom) : 0;
    const x = left + i * bw;
    const bar = el(SVG, "rect", { x: x + 1, y: H - bottom - h, width: Math.max(bw - 2, 1), height: h, fill: "#4a78c2" });
    bar.append(el(SVG, "title", {}, `${d.date}: ${fmt(d[key])}`));
    svg.append(bar);
  });
  if (days.length) {
    svg.append(el(SVG, "text", { x: left, y: H - 4, "font-size": 10 }, days[0].date));
    svg.append(el(SVG, "text", { x: W - 2, y: H - 4, "font-size": 10, "text-anchor": "end" }, days[days.length - 1].date));
  }
  return svg;
}

function showLimits(headers) {
  const rows = [];
  headers.forEach((v, k) => { if (k.toLowerCase().startsWith("x-ratelimit-")) rows.push([k, v]); });
  rows.sort((a, b) => a[0].localeCompare(b[0]));
  const tb = $("limtab").tBodies[0];
  tb.replaceChildren(...rows.map(([k, v]) => {
    const tr = el(null, "tr");
    tr.append(el(null, "th", {}, k), el(null, "td", {}, v));
    return tr;
  }));
  $("limits").hidden = rows.length === 0;
}

// fillTable replaces the body of table id with one row per item; cells
// gives an item's cell texts.
function fillTable(id, items, cells) {
  $(id).tBodies[0].replaceChildren(...items.map((it) => {
    const tr = el(null, "tr");
    for (const c of cells(it)) tr.append(el(null, "td", {}, c));
    return tr;
  }));
}

const day = (unix) => (unix ? new Date(unix * 1000).toISOString().slice(0, 16).replace("T", " ") : "—");

// limitText lists a key's non-zero limits (0 means unlimited).
function limitText(l) {
  const names = [["requests_per_minute", "req/min"], ["images_per_minute", "img/min"],
    ["images_per_day", "img/day"], ["image_quota", "quota"]];
  const set = names.filter(([k]) => l && l[k]).map(([k, n]) => `${l[k]} ${n}`);
  return set.length ? set.join(", ") : "unlimited";
}

// metric sums every sample of one metric in Prometheus text (all labels).
function metric(text, name) {
  let sum = 0, found = false;
  for (const line of text.split("\n")) {
    const m = line.match(/^([a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$/);
    if (m && m[1] === name) { sum += Number(m[3]); found = true; }
  }
  return found ? sum : null;
}

// loadServer shows the server's state now from /metrics (an admin key's:
// the page asks only with "All keys" ticked):
// queue depth, resident models and cache outcomes.
async function loadServer() {
  const r = await fetch("/metrics", { headers: authHeaders() });
  if (!r.ok) { $("server").textContent = ""; return; }
  const text = await r.text();
  const parts = [];
  const add = (name, label) => { const v = metric(text, name); if (v !== null) parts.push(`${fmt(v)} ${label}`); };
  add("sdgate_queue_depth", "jobs queued");
  add("sdgate_models_resident", "model(s) resident");
  add("sdgate_cache_hits_total", "cache hits");
  add("sdgate_cache_misses_total", "cache misses");
  add("sdgate_images_generated_total", "images delivered since start");
  $("server").textContent = parts.length ? "Server now: " + parts.join(" · ") : "";
}

// keyNames maps key ids to names once an admin has listed the keys.
let keyNames = new Map();

// loadAdmin shows every key and every model folder; both need an admin key,
// so the page asks only when "All keys" is ticked.
async function loadAdmin() {
  const [kr, mr] = await Promise.all([
    fetch("/v1/admin/keys", { headers: authHeaders() }),
    fetch("/v1/admin/models", { headers: authHeaders() }),
  ]);
  if (!kr.ok) throw new Error(await apiError(kr));
  const keys = (await kr.json()).data || [];
  keyNames = new Map(keys.map((k) => [k.id, k.name]));
  fillTable("keys", keys, (k) => [k.name, k.id, k.redacted_value, k.admin ? "yes" : "", day(k.created_at),
    day(k.last_used_at), day(k.expires_at), limitText(k.limits), k.revoked ? "revoked" : "active"]);
  if (mr.ok) {
    const j = await mr.json();
    fillTable("models", j.data || [], (m) => [m.id, m.loaded ? "loaded" : "not loaded",
      `${m.native_width}x${m.native_height}`, String(m.default_steps), m.scheduler,
      m.can_encode ? "yes" : "no", (m.aliases || []).join(", ")]);
    const broken = (j.broken || []).map((b) => `${b.id}: ${b.error}`);
    $("broken").textContent = broken.length ? "Broken folders: " + broken.join("; ") : "";
  } else {
    fillTable("models", [], () => []);
    $("broken").textContent = await apiError(mr);
  }
  $("admin").hidden = false;
}

function showTable(rows) {
  const tb = $("days").tBodies[0];
  tb.replaceChildren(...rows.map((r) => {
    const tr = el(null, "tr");
    const name = keyNames.get(r.key_id);
    tr.append(el(null, "td", {}, r.date), el(null, "td", {}, name ? `${name} (${r.key_id})` : r.key_id),
      el(null, "td", {}, r.model || "—"));
    for (const k of ["requests", "failed", "cached", "images", "pixels", "steps", "gpu_seconds"]) {
      tr.append(el(null, "td", { class: "num" }, fmt(r[k] || 0)));
    }
    return tr;
  }));
}

// showRecent lists the newest requests: when, key, model, endpoint, status,
// cache outcome, images and timing.
function showRecent(reqs) {
  fillTable("recent", reqs, (q) => [day(q.created_at), keyNames.get(q.key_id) || q.key_id, q.model || "—",
    q.endpoint, String(q.status), q.cached ? "hit" : "miss", String(q.images),
    `${q.duration_ms} ms`, fmt(q.gpu_seconds || 0)]);
}

async function load() {
  if (!sessionStorage.getItem(KEY_ITEM)) { setStatus("Paste an API key first.", true); return; }
  const q = new URLSearchParams();
  if ($("since").value) q.set("since", $("since").value);
  if ($("all").checked) q.set("key_id", "*");
  else if ($("keyid").value.trim()) q.set("key_id", $("keyid").value.trim());
  busy("loading…");
  $("admin").hidden = true;
  try {
    $("server").textContent = "";
    if ($("all").checked) { await loadServer(); await loadAdmin(); }
    const qs = q.toString();
    const rr = await fetch("/v1/usage/requests" + (qs ? "?" + qs : ""), { headers: authHeaders() });
    if (rr.ok) showRecent((await rr.json()).data || []);
    q.set("group_by", "model");
    const r = await fetch("/v1/usage?" + q.toString(), { headers: authHeaders() });
    showLimits(r.headers);
    if (!r.ok) { setStatus(await apiError(r), true); return; }
    const j = await r.json();
    const rows = (j.data || []).slice().sort((a, b) => a.date.localeCompare(b.date) || a.key_id.localeCompare(b.key_id) ||
      (a.model || "").localeCompare(b.model || ""));
    const days = byDay(rows);
    $("charts").replaceChildren(...METRICS.map(([k, label]) => barChart(days, k, label)));
    showTable(rows);
    setStatus(rows.length ? `${rows.length} row(s) over ${days.length} day(s)` : "No usage recorded in this range.");
  } catch (e) { setStatus(String(e), true); }
}

$("all").addEventListener("change", () => { $("keyid").disabled = $("all").checked; });
$("f").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
bindKey($("key"), load);
