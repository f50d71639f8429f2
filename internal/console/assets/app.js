// Sluice's web console. One page, three views chosen by the part of the
// address after '#':
//
//   #/                 every pipe: state, last result, lag and its sparkline
//   #/p/NAME           one pipe: charts, partitions, members, problems,
//                      concurrency, the failure destination and redrive
//   #/new, #/p/NAME/edit   the pipe form
//
// Everything shown comes from the API the CLI uses (same origin, so the
// session cookie or no token at all in `sluice dev`). Views re-read the
// API every few seconds while shown. The DOM is built with textContent
// only: no value from the API is ever parsed as HTML.
"use strict";

const REFRESH_MS = 2000;
const main = document.getElementById("main");
let timer = null; // the shown view's refresh
let view = 0; // bumped on every navigation, so a late answer is dropped

// ---------- API ----------

class APIError extends Error {
  constructor(status, body) {
    super((body && body.message) || "HTTP " + status);
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body, headers) {
  const init = { method, headers: Object.assign({}, headers), credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) {
    location.assign("/ui/login?next=" + encodeURIComponent("/ui/" + location.hash));
    throw new APIError(401, { message: "sign-in needed" });
  }
  const text = await res.text();
  let data = null;
  if (text && (res.headers.get("Content-Type") || "").includes("json")) {
    try { data = JSON.parse(text); } catch (_) { data = null; }
  }
  if (!res.ok) throw new APIError(res.status, data || { message: text });
  return { data, text, etag: res.headers.get("ETag") };
}

const enc = encodeURIComponent;
const pipePath = (name) => "/v1/pipes/" + enc(name);

// ---------- DOM helpers ----------

// el builds an element: attrs are properties or attributes (on* are
// listeners); children are nodes, strings (as text) or null.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children.flat()) if (c) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const fmtInt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const fmtRate = (n) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(n >= 10 ? 1 : 2));
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : "–");

function ago(t) {
  if (!t) return "–";
  const s = Math.max(0, Math.round((Date.now() - new Date(t).getTime()) / 1000));
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function stateBadge(state) {
  return el("span", { class: "badge state-" + String(state || "").toLowerCase(), dataset: { testid: "state" } }, state || "–");
}

function resultText(r) {
  return el("span", { class: r && r.startsWith("PROBLEM") ? "problem" : "" }, r || "–");
}

function setStatus(msg, bad) {
  const s = document.getElementById("status");
  s.textContent = msg || "";
  s.className = bad ? "problem" : "muted";
}

// render replaces the view's content; null children are left out.
function render(...children) {
  main.replaceChildren();
  append(main, children);
}

// ---------- charts ----------

const COLORS = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#dc2626"];

// sparkline draws values (numbers or null) as a small line.
function sparkline(values) {
  const w = 120, h = 24;
  const nums = values.filter((v) => v !== null);
  const s = svg("svg", { class: "spark", viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: "img", "aria-label": "lag over the last hour" });
  if (nums.length === 0) return s;
  const max = Math.max(1, ...nums);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  let d = "";
  values.forEach((v, i) => {
    if (v === null) return;
    d += (d === "" || values[i - 1] === null ? "M" : "L") + (i * step).toFixed(1) + "," + (h - 2 - (v / max) * (h - 4)).toFixed(1);
  });
  s.append(svg("path", { d, fill: "none", stroke: COLORS[0], "stroke-width": 1.5 }));
  // A point without neighbours (a new pipe's first minute) is a dot: a
  // path of one point draws nothing.
  values.forEach((v, i) => {
    if (v !== null && (values[i - 1] ?? null) === null && (values[i + 1] ?? null) === null) {
      s.append(svg("circle", { cx: (i * step).toFixed(1), cy: (h - 2 - (v / max) * (h - 4)).toFixed(1), r: 2, fill: COLORS[0] }));
    }
  });
  return s;
}

// chart draws series over time: lines (gaps where a value is null) or
// bars; start and step place the points; the y axis starts at 0.
function chart({ series, start, stepSeconds, kind, testid }) {
  const w = 640, h = 180, left = 56, right = 8, top = 10, bottom = 22;
  // A pipe younger than the window starts at its first point (showing
  // at least 5 minutes), so a new pipe's points are not squeezed into
  // the last pixels of an hour.
  const len = Math.max(1, ...series.map((s) => s.values.length));
  let from = len;
  for (const s of series) {
    const i = s.values.findIndex((v) => v !== null && v !== 0);
    if (i >= 0) from = Math.min(from, i);
  }
  from = Math.max(0, Math.min(from, len - Math.ceil(300 / stepSeconds)));
  if (from > 0) {
    series = series.map((s) => Object.assign({}, s, { values: s.values.slice(from) }));
    start = new Date(new Date(start).getTime() + from * stepSeconds * 1000).toISOString();
  }
  const n = len - from;
  const nums = series.flatMap((s) => s.values.filter((v) => v !== null));
  const max = niceMax(Math.max(0, ...nums));
  const x = (i) => left + (n > 1 ? (i * (w - left - right)) / (n - 1) : 0);
  const y = (v) => top + (h - top - bottom) * (1 - v / max);
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${w} ${h}`, role: "img", "data-testid": testid, "data-max": max, "data-last": lastValue(series) });
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    root.append(svg("line", { x1: left, x2: w - right, y1: y(v), y2: y(v), class: "grid" }));
    root.append(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, max < 10 ? String(+v.toFixed(2)) : fmtInt(Math.round(v))));
  }
  const t0 = new Date(start).getTime();
  for (const i of [0, Math.floor((n - 1) / 2), n - 1]) {
    const t = new Date(t0 + i * stepSeconds * 1000);
    root.append(svg("text", { x: x(i), y: h - 6, "text-anchor": i === 0 ? "start" : i === n - 1 ? "end" : "middle", class: "axis" },
      t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
  }
  series.forEach((s, k) => {
    const color = s.color || COLORS[k % COLORS.length];
    if (kind === "bars") {
      const bw = Math.max(1, (w - left - right) / n - 1);
      s.values.forEach((v, i) => {
        if (!v) return;
        root.append(svg("rect", { x: x(i) - bw / 2, y: y(v), width: bw, height: Math.max(0, y(0) - y(v)), fill: color, opacity: 0.85 }));
      });
      return;
    }
    let d = "";
    s.values.forEach((v, i) => {
      if (v === null) return;
      d += (d === "" || s.values[i - 1] === null ? "M" : "L") + x(i).toFixed(1) + "," + y(v).toFixed(1);
    });
    if (d) root.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": k === 0 ? 2 : 1.2 }));
    s.values.forEach((v, i) => { // lone points, which a path does not draw
      if (v !== null && (s.values[i - 1] ?? null) === null && (s.values[i + 1] ?? null) === null) {
        root.append(svg("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5, fill: color }));
      }
    });
  });
  const legend = el("div", { class: "legend" }, series.map((s, k) =>
    el("span", {}, swatch(s.color || COLORS[k % COLORS.length]), s.name)));
  return el("figure", { class: "chart-box" }, root, series.length > 1 ? legend : null);
}

// swatch is a legend's colour square; set through the style property,
// which the page's Content-Security-Policy allows, unlike a style
// attribute.
function swatch(color) {
  const i = el("i", {});
  i.style.background = color;
  return i;
}

function lastValue(series) {
  const vs = series[0] ? series[0].values : [];
  for (let i = vs.length - 1; i >= 0; i--) if (vs[i] !== null) return vs[i];
  return "";
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// ---------- router ----------

function route() {
  clearTimeout(timer);
  view++;
  setStatus("");
  const hash = location.hash.replace(/^#/, "") || "/";
  let m;
  if (hash === "/") return show(listView);
  if (hash === "/new") return formView(null);
  if ((m = hash.match(/^\/p\/([^/]+)\/edit$/))) return formView(decodeURIComponent(m[1]));
  if ((m = hash.match(/^\/p\/([^/]+)$/))) return show((v) => pipeView(v, decodeURIComponent(m[1])));
  render(el("p", {}, "No such page. ", el("a", { href: "#/" }, "Back to the pipes")));
}

// show renders a refreshing view: render(v) builds the content for
// navigation v, and runs again every REFRESH_MS while v is shown.
function show(render) {
  const v = view;
  const tick = async () => {
    try {
      await render(v);
      if (v === view) setStatus("updated " + new Date().toLocaleTimeString());
    } catch (e) {
      if (v === view) setStatus(e.message, true);
    }
    if (v === view) timer = setTimeout(tick, REFRESH_MS);
  };
  tick();
}

// ---------- the list ----------

async function listView(v) {
  const { data } = await api("GET", "/v1/overview");
  if (v !== view) return;
  const rows = data.pipes.map((p) =>
    el("tr", { dataset: { pipe: p.name } },
      el("td", {}, el("a", { href: "#/p/" + enc(p.name) }, p.name)),
      el("td", {}, stateBadge(p.state), p.asleep ? el("span", { class: "muted" }, " asleep") : null),
      el("td", { class: "result" }, resultText(p.lastProcessingResult)),
      el("td", { class: "num", dataset: { testid: "lag" } }, p.lag === null ? (p.lagMeasuredBy ? "on " + p.lagMeasuredBy : "–") : fmtInt(p.lag)),
      el("td", {}, sparkline(p.lagSeries)),
      el("td", { class: "num", dataset: { testid: "rps" } }, fmtRate(p.throughput.recordsPerSecond))));
  render(
    el("div", { class: "title" }, el("h1", {}, "Pipes"), el("a", { class: "button", href: "#/new" }, "New pipe")),
    rows.length === 0
      ? el("p", { class: "muted" }, "No pipes yet. ", el("a", { href: "#/new" }, "Create one"), ", or run sluice dev --demo.")
      : el("table", { class: "list", id: "pipes" },
        el("thead", {}, el("tr", {}, ["Pipe", "State", "Last result", "Lag", "Lag, last hour", "Records/s"].map((t) => el("th", {}, t)))),
        el("tbody", {}, rows)));
}

// ---------- a pipe ----------

// pipeState keeps what the pipe page loads less often than every refresh.
const pipeState = { name: "", failures: null, failuresAt: 0, redrive: null, deleting: false };

async function pipeView(v, name) {
  if (pipeState.name !== name) Object.assign(pipeState, { name, failures: null, failuresAt: 0, redrive: null, deleting: false });
  const [p, d, h] = await Promise.all([
    api("GET", pipePath(name)),
    api("GET", pipePath(name) + "/describe"),
    api("GET", pipePath(name) + "/history"),
  ]);
  if (v !== view) return;
  const pipe = p.data, desc = d.data, hist = h.data;
  if (pipe.onFailure && pipe.onFailure.destination && Date.now() - pipeState.failuresAt > 15000) {
    pipeState.failuresAt = Date.now();
    loadFailures(v, name); // redraws when it answers
  }
  const enabled = pipe.enabled !== false;
  render(
    el("div", { class: "title" },
      el("h1", {}, pipe.name), stateBadge(pipe.status.state),
      el("span", { class: "actions" },
        el("a", { class: "button", href: "#/p/" + enc(name) + "/edit", id: "btn-edit" }, "Edit"),
        enabled
          ? el("button", { id: "btn-disable", type: "button", onclick: () => setEnabled(name, false) }, "Disable")
          : el("button", { id: "btn-enable", type: "button", onclick: () => setEnabled(name, true) }, "Enable"),
        pipeState.deleting
          ? el("button", { id: "btn-delete-confirm", class: "danger", type: "button", onclick: () => deletePipe(name) }, "Really delete")
          : el("button", { id: "btn-delete", class: "danger", type: "button", onclick: () => { pipeState.deleting = true; route(); } }, "Delete"))),
    pipe.description ? el("p", { class: "muted" }, pipe.description) : null,
    summary(pipe, desc),
    el("section", { class: "charts" },
      el("div", {}, el("h2", {}, "Lag (records)"), lagChart(hist, desc)),
      el("div", {}, el("h2", {}, "Throughput (records/s)"), flowChart(hist))),
    partitions(desc),
    problems(pipe, desc),
    el("div", { class: "cols" }, members(desc), concurrency(desc)),
    failures(pipe, name),
    el("section", {}, el("h2", {}, "Spec"), el("pre", { class: "spec" }, JSON.stringify(specOf(pipe), null, 2))));
}

function summary(pipe, d) {
  const rps = d.throughput.recordsPerSecond;
  const items = [
    ["Last result", resultText(pipe.status.lastProcessingResult)],
    ["Lag", el("span", { id: "lag-total" }, d.lag ? fmtInt(d.lag.total) : d.lagMeasuredBy ? "measured by " + d.lagMeasuredBy : "not measured yet")],
    ["Records/s", el("span", { id: "rps" }, fmtRate(rps)), el("span", { class: "muted" }, " over " + d.throughput.windowSeconds + " s")],
    ["Here", d.asleep ? "asleep since " + fmtTime(d.asleep.since) + ", wakes at the next record" : d.running ? "running" : "not running in this process"],
    ["Topics", (pipe.topics || []).join(", ")],
    ["Target", targetText(pipe.target)],
    ["Consumer group", d.consumerGroupId],
  ];
  if (pipe.status.stateTransitionReason) items.push(["Reason", pipe.status.stateTransitionReason]);
  return el("dl", { class: "summary" }, items.map(([k, ...v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
}

function targetText(t) {
  if (!t) return "–";
  if (t.http) return t.http.url || "function " + t.http.function;
  if (t.kafka) return "kafka topic " + t.kafka.topic;
  if (t.lambda) return "lambda " + (t.lambda.functionName || t.lambda.functionArn || "");
  if (t.function) return "function " + t.function.name;
  if (t.exec) return "command " + (t.exec.command || []).join(" ");
  return Object.keys(t).join(", ");
}

function lagChart(hist, d) {
  if (d.lagMeasuredBy && !hist.lag.some((v) => v !== null)) {
    return el("p", { class: "muted" }, "Lag is measured by member " + d.lagMeasuredBy + "; its console has the chart.");
  }
  const series = [{ name: "total", values: hist.lag }];
  if (hist.partitions.length > 1 && hist.partitions.length <= 8) {
    for (const p of hist.partitions) series.push({ name: p.topic + "-" + p.partition, values: p.lag });
  }
  return chart({ series, start: hist.start, stepSeconds: hist.stepSeconds, kind: "lines", testid: "lag-chart" });
}

function flowChart(hist) {
  const per = (vs) => vs.map((n) => n / hist.stepSeconds);
  const series = [{ name: "delivered/s", values: per(hist.delivered), color: COLORS[2] }];
  if (hist.failed.some((n) => n > 0)) series.push({ name: "failed/s", values: per(hist.failed), color: "#dc2626" });
  return chart({ series, start: hist.start, stepSeconds: hist.stepSeconds, kind: "bars", testid: "flow-chart" });
}

function partitions(d) {
  if (!d.lag) return null;
  return el("section", {}, el("h2", {}, "Partitions"),
    d.lag.error ? el("p", { class: "problem" }, "Latest measurement failed: " + d.lag.error) : null,
    el("table", { class: "list", id: "partitions" },
      el("thead", {}, el("tr", {}, ["Topic", "Partition", "Committed", "End", "Lag"].map((t) => el("th", {}, t)))),
      el("tbody", {}, d.lag.partitions.map((p) => el("tr", {},
        el("td", {}, p.topic), el("td", { class: "num" }, p.partition),
        el("td", { class: "num" }, p.committedOffset === null ? "none" : fmtInt(p.committedOffset)),
        el("td", { class: "num" }, fmtInt(p.endOffset)), el("td", { class: "num" }, fmtInt(p.lag)))))),
    el("p", { class: "muted" }, "Measured " + ago(d.lag.measuredAt)));
}

function problems(pipe, d) {
  const items = [];
  if (d.lastError) items.push(el("li", {}, el("span", { class: "problem" }, d.lastError.message), " ", el("span", { class: "muted" }, ago(d.lastError.at))));
  for (const r of d.retrying || []) {
    items.push(el("li", {}, `${r.topic}-${r.partition} from offset ${r.firstOffset}: attempt ${r.nextAttempt} ${ago(r.nextAttemptAt).replace(" ago", "")}; failing since ${fmtTime(r.failingSince)}: `, el("span", { class: "problem" }, r.problem)));
  }
  const f = d.failed;
  if (f.deadLettered || f.discarded) {
    items.push(el("li", {}, `${fmtInt(f.deadLettered)} records handed to the failure destination, ${fmtInt(f.discarded)} discarded since this process started`));
  }
  if (f.last) {
    items.push(el("li", {}, `Last: ${f.last.records} records of ${f.last.topic}-${f.last.partition} (offsets ${f.last.firstOffset}–${f.last.lastOffset}) to ${f.last.to}, ${f.last.condition}, ${ago(f.last.at)}`));
  }
  return el("section", { id: "problems" }, el("h2", {}, "Recent problems"),
    items.length ? el("ul", {}, items) : el("p", { class: "muted" }, "None seen by this process."));
}

function members(d) {
  const ms = d.members || [];
  return el("section", {}, el("h2", {}, "Members"),
    ms.length === 0
      ? el("p", { class: "muted" }, d.running ? "This process only." : "No process runs this pipe.")
      : el("table", { class: "list", id: "members" },
        el("thead", {}, el("tr", {}, ["Member", "Partitions", "Last result", "Updated"].map((t) => el("th", {}, t)))),
        el("tbody", {}, ms.map((m) => el("tr", {},
          el("td", {}, m.name, m.this ? el("span", { class: "muted" }, " (this)") : null),
          el("td", {}, Object.entries(m.partitions || {}).map(([t, ps]) => t + ": " + ps.join(", ")).join("; ") || "none"),
          el("td", {}, resultText(m.lastProcessingResult)),
          el("td", {}, ago(m.updated)))))),
    d.group ? el("p", { class: "muted" }, `Group ${d.group.state}, ${d.group.members} member(s), checked ${ago(d.group.checkedAt)}`) : null);
}

function concurrency(d) {
  const c = d.concurrency;
  return el("section", {}, el("h2", {}, "Concurrency"),
    !c ? el("p", { class: "muted" }, "Not running in this process.")
      : el("div", {},
        el("p", {}, el("strong", {}, c.current), ` batches in flight allowed (${c.minimum}–${c.maximum}), ${c.inFlight} now, ordering ${c.ordering}`),
        c.lastChange ? el("p", { class: "muted" }, `Last change ${c.lastChange.from} → ${c.lastChange.to}: ${c.lastChange.reason}, ${ago(c.lastChange.at)}`) : null));
}

// ---------- failure destination ----------

async function loadFailures(v, name) {
  try {
    const { data } = await api("GET", pipePath(name) + "/failures?limit=20");
    pipeState.failures = { data };
  } catch (e) {
    pipeState.failures = { error: e.message };
  }
  if (v === view && pipeState.name === name) redrawFailures(name);
}

function redrawFailures(name) {
  const old = document.getElementById("failures");
  if (old) old.replaceWith(failures(null, name));
}

function failures(pipe, name) {
  const dest = pipe ? pipe.onFailure && pipe.onFailure.destination : pipeState.destination;
  if (pipe) pipeState.destination = dest;
  const box = el("section", { id: "failures" }, el("h2", {}, "Failure destination"));
  if (!dest) return append(box, [el("p", { class: "muted" }, "None set: records whose retries run out are " + (pipe && pipe.onFailure && pipe.onFailure.discard ? "discarded." : "retried until they are delivered."))]);
  append(box, [el("p", {}, el("code", {}, dest), " ",
    el("button", { type: "button", class: "link", onclick: () => { pipeState.failuresAt = Date.now(); loadFailures(view, name); } }, "Reload"))]);
  const f = pipeState.failures;
  if (!f) append(box, [el("p", { class: "muted" }, "Reading…")]);
  else if (f.error) append(box, [el("p", { class: "problem" }, f.error)]);
  else if (f.data.records.length === 0) append(box, [el("p", { class: "muted", id: "failures-empty" }, "Empty: nothing to redrive.")]);
  else {
    append(box, [el("table", { class: "list", id: "failed-records" },
      el("thead", {}, el("tr", {}, ["Record", "Time", "Key", "Value"].map((t) => el("th", {}, t)))),
      el("tbody", {}, f.data.records.map((r) => el("tr", {},
        el("td", {}, `${r.topic}-${r.partition}@${r.offset}`),
        el("td", {}, fmtTime(r.timestamp)),
        el("td", { class: "mono" }, r.key === null ? "–" : clip(r.key)),
        el("td", { class: "mono" }, r.value === null ? "(tombstone)" : clip(r.value), r.base64 ? el("span", { class: "muted" }, " base64") : null))))),
    f.data.more ? el("p", { class: "muted" }, "…and more.") : null,
    el("p", {},
      el("button", { id: "btn-redrive", type: "button", onclick: () => redrive(name, false) }, "Redrive into the target"), " ",
      el("button", { type: "button", onclick: () => redrive(name, true) }, "Dry run"))]);
  }
  if (pipeState.redrive) append(box, [el("p", { id: "redrive-result", class: pipeState.redrive.error ? "problem" : "" }, pipeState.redrive.text)]);
  return box;
}

const clip = (s) => (s.length > 200 ? s.slice(0, 200) + "…" : s);

async function redrive(name, dryRun) {
  pipeState.redrive = { text: dryRun ? "Dry run…" : "Redriving…" };
  redrawFailures(name);
  try {
    // The answer is JSON lines, one progress report per chunk; the last
    // says how it ended.
    const { text } = await api("POST", pipePath(name) + "/redrive" + (dryRun ? "?dryRun=true" : ""), "{}");
    const lines = text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const last = lines[lines.length - 1] || {};
    pipeState.redrive = last.error
      ? { error: true, text: "Redrive stopped: " + last.error + ` (${last.delivered || 0} delivered before)` }
      : { text: `${dryRun ? "Dry run: would redrive" : "Redriven:"} ${last.read || 0} read, ${last.delivered || 0} delivered.` };
  } catch (e) {
    pipeState.redrive = { error: true, text: e.message };
  }
  pipeState.failuresAt = Date.now();
  loadFailures(view, name);
}

// ---------- writes ----------

// specOf is a stored pipe's spec: what PUT takes back.
function specOf(p) {
  const s = Object.assign({}, p);
  delete s.status; delete s.revision; delete s.uuid;
  return s;
}

async function setEnabled(name, enabled) {
  try {
    const { data, etag } = await api("GET", pipePath(name));
    const spec = specOf(data);
    spec.enabled = enabled;
    await api("PUT", pipePath(name), spec, { "If-Match": etag });
    setStatus(enabled ? "enabled" : "disabled");
  } catch (e) {
    setStatus(e.message, true);
  }
  route();
}

async function deletePipe(name) {
  try {
    await api("DELETE", pipePath(name));
    location.hash = "#/";
  } catch (e) {
    setStatus(e.message, true);
    pipeState.deleting = false;
  }
}

// ---------- the form ----------

// The form's fields, each a spec path; the rest of the spec is edited as
// JSON under "Other settings". An error whose field is not one of these
// is shown there.
const FIELDS = [
  { path: "name", label: "Name", help: "Letters, digits, - and _; cannot change later.", createOnly: true },
  { path: "description", label: "Description" },
  { path: "bootstrapServers", label: "Bootstrap servers", help: "host:port, comma-separated; or name a cluster instead.", list: true },
  { path: "cluster", label: "Cluster", help: "A cluster registered with sluice clusters create." },
  { path: "topics", label: "Topics", help: "Comma-separated.", list: true },
  { path: "startingPosition", label: "Starting position", choices: ["", "LATEST", "TRIM_HORIZON", "AT_TIMESTAMP"], createOnly: true },
  { path: "batchSize", label: "Batch size", number: true, help: "Records per batch, 1–10000 (default 100)." },
  { path: "maximumBatchingWindowInSeconds", label: "Batching window (s)", number: true, help: "How long to gather a batch, 0–300 (default 0.5)." },
  { path: "target.http.url", label: "Target URL", help: "Where batches are POSTed; for another target kind, set target in Other settings." },
  { path: "onFailure.destination", label: "Failure destination", help: "kafka://topic, file:///path or an http(s) URL." },
  { path: "enabled", label: "Enabled", checkbox: true },
];

function getPath(o, path) {
  return path.split(".").reduce((v, k) => (v === undefined || v === null ? undefined : v[k]), o);
}

function setPath(o, path, v) {
  const ks = path.split(".");
  let cur = o;
  ks.slice(0, -1).forEach((k) => { if (typeof cur[k] !== "object" || cur[k] === null) cur[k] = {}; cur = cur[k]; });
  cur[ks[ks.length - 1]] = v;
}

function deletePath(o, path) {
  const ks = path.split(".");
  const parents = [];
  let cur = o;
  for (const k of ks.slice(0, -1)) {
    if (typeof cur[k] !== "object" || cur[k] === null) return;
    parents.push([cur, k]);
    cur = cur[k];
  }
  delete cur[ks[ks.length - 1]];
  // Drop objects left empty, so "target": {} does not hide a kind.
  for (let i = parents.length - 1; i >= 0; i--) {
    const [p, k] = parents[i];
    if (Object.keys(p[k]).length === 0) delete p[k];
  }
}

async function formView(name) {
  const v = view;
  let pipe = null, etag = null;
  if (name) {
    try {
      const r = await api("GET", pipePath(name));
      pipe = r.data; etag = r.etag;
    } catch (e) {
      render(el("p", { class: "problem" }, e.message));
      return;
    }
  }
  if (v !== view) return;
  const spec = pipe ? specOf(pipe) : { enabled: true, startingPosition: "TRIM_HORIZON" };
  // Other settings: the spec without the form's own fields.
  const rest = JSON.parse(JSON.stringify(spec));
  for (const f of FIELDS) {
    if (f.path === "target.http.url" && spec.target && spec.target.http && Object.keys(spec.target.http).length > 1) continue; // keep the http section whole
    deletePath(rest, f.path);
  }

  const inputs = {};
  const rows = FIELDS.map((f) => {
    const id = "f-" + f.path.replace(/\./g, "-");
    const cur = getPath(spec, f.path);
    let input;
    if (f.choices) {
      input = el("select", { id, name: f.path }, f.choices.map((c) => el("option", { value: c, selected: cur === c }, c || "(default)")));
    } else if (f.checkbox) {
      input = el("input", { id, name: f.path, type: "checkbox", checked: cur !== false });
    } else {
      const value = cur === undefined || cur === null ? "" : f.list ? cur.join(", ") : String(cur);
      input = el("input", { id, name: f.path, type: f.number ? "text" : "text", inputmode: f.number ? "decimal" : undefined, value, autocomplete: "off" });
    }
    if (pipe && f.createOnly) input.disabled = true;
    inputs[f.path] = input;
    return el("div", { class: "field" + (f.checkbox ? " check" : "") },
      el("label", { for: id }, f.label), input,
      f.help ? el("small", { class: "muted" }, f.help) : null,
      el("p", { class: "field-error", dataset: { for: f.path }, role: "alert" }));
  });
  const other = el("textarea", { id: "f-other", name: "other", rows: 10, spellcheck: false }, JSON.stringify(rest, null, 2));
  const form = el("form", { id: "pipe-form", novalidate: true },
    rows,
    el("div", { class: "field wide" },
      el("label", { for: "f-other" }, "Other settings (JSON)"), other,
      el("small", { class: "muted" }, "Any other spec field: retry, onFailure, filterCriteria, enrichment, inputTemplate, format, ordering, target of another kind…"),
      el("p", { class: "field-error", dataset: { for: "other" }, role: "alert" })),
    el("p", { class: "field-error", id: "form-error", role: "alert" }),
    el("div", { class: "actions" },
      el("button", { type: "submit", id: "btn-save" }, pipe ? "Save" : "Create pipe"),
      el("a", { class: "button secondary", href: pipe ? "#/p/" + enc(name) : "#/" }, "Cancel")));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); submit(form, inputs, other, name, etag); });
  render(el("h1", {}, pipe ? "Edit " + name : "New pipe"), form);
}

async function submit(form, inputs, other, name, etag) {
  for (const e of form.querySelectorAll(".field-error")) e.textContent = "";
  for (const e of form.querySelectorAll(".invalid")) e.classList.remove("invalid");
  let spec;
  try {
    spec = other.value.trim() ? JSON.parse(other.value) : {};
    if (typeof spec !== "object" || spec === null || Array.isArray(spec)) throw new Error("give a JSON object, such as {}");
  } catch (e) {
    showFieldError("other", "Not valid JSON: " + e.message, other);
    return;
  }
  for (const f of FIELDS) {
    const input = inputs[f.path];
    if (input.disabled) continue;
    if (f.checkbox) { setPath(spec, f.path, input.checked); continue; }
    const raw = input.value.trim();
    if (raw === "") continue;
    let v = raw;
    if (f.list) v = raw.split(",").map((s) => s.trim()).filter(Boolean);
    // A number field keeps what does not parse as text, so the API's
    // message (which names the allowed range) is the one shown.
    if (f.number && raw !== "" && !Number.isNaN(Number(raw))) v = Number(raw);
    setPath(spec, f.path, v);
  }
  if (name) spec.name = name;
  const btn = document.getElementById("btn-save");
  btn.disabled = true;
  try {
    const r = name
      ? await api("PUT", pipePath(name), spec, etag ? { "If-Match": etag } : {})
      : await api("POST", "/v1/pipes", spec);
    location.hash = "#/p/" + enc(r.data.name);
  } catch (e) {
    btn.disabled = false;
    const fields = (e.body && e.body.fields) || [];
    if (fields.length === 0) {
      document.getElementById("form-error").textContent = e.message;
      return;
    }
    for (const fe of fields) {
      const msg = (fe.value ? "“" + fe.value + "”: " : "") + fe.reason;
      const f = FIELDS.find((f) => fe.field === f.path || fe.field.startsWith(f.path + ".") || fe.field.startsWith(f.path + "["));
      if (f && !inputs[f.path].disabled) showFieldError(f.path, msg, inputs[f.path]);
      else showFieldError("other", fe.field + ": " + msg, other);
    }
    document.getElementById("form-error").textContent = "The pipe was not saved: fix the fields marked above.";
  }
}

function showFieldError(path, msg, input) {
  const p = document.querySelector(`.field-error[data-for="${path}"]`);
  if (p) p.textContent = p.textContent ? p.textContent + " " + msg : msg;
  if (input) input.classList.add("invalid");
}

// ---------- start ----------

document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/ui/logout", { method: "POST", credentials: "same-origin" });
  location.assign("/ui/login");
});
window.addEventListener("hashchange", route);
route();
