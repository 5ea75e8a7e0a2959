// The report's script (included in report.html, after STATUS_ORDER): unpacks the tests, draws the table of every
// test point with each Keras backend's result side by side, filters, sorts, and draws a test's details on demand.
let DATA = null;
const byId = new Map();

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
function fmt(x) {
  if (x === null || x === undefined || x === "") return "";
  if (typeof x === "number" && Number.isInteger(x) && Math.abs(x) < 1e6) return String(x);
  if (typeof x === "number") return (x === 0 ? "0" : Math.abs(x) >= 1e4 || Math.abs(x) < 1e-2 ? x.toExponential(2) : x.toPrecision(3));
  return String(x);
}
function sweepText(s) { return Object.entries(s || {}).map(([k, v]) => k + "=" + JSON.stringify(v)).join(", "); }
function shapeText(sh) {
  // Each framework's output shape: "torch" and "keras", or (compare: backends) "keras[BACKEND]" for each backend.
  if (!sh || !sh.input) return "";
  const d = a => Array.isArray(a) ? a.join("x") : "?";
  const outs = Object.entries(sh).filter(([k]) => k !== "input");
  const same = outs.every(([, v]) => d(v) === d(outs[0][1]));
  const out = !outs.length ? "?" : same ? d(outs[0][1]) : outs.map(([k, v]) => k + " " + d(v)).join(" / ");
  return d(sh.input) + " \u2192 " + out;
}

async function unpack() {
  const b64 = document.getElementById("data").textContent.trim();
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text());
}

function metricsTable(verdicts) {
  const t = el("table");
  t.append(el("tr", {}, el("th", {text: "check"}), el("th", {text: "kind"}), el("th", {text: "verdict"}),
                       el("th", {text: "metrics"})));
  for (const v of verdicts) {
    const m = Object.entries(v.metrics || {}).map(([k, x]) => k + " = " + (Array.isArray(x) ? JSON.stringify(x) : fmt(x))).join("\n");
    t.append(el("tr", {}, el("td", {text: v.what}), el("td", {text: v.kind || ""}),
                el("td", {class: v.passed ? "passed" : "failed", text: v.passed ? "ok" : v.check}),
                el("td", {}, el("pre", {text: m}))));
  }
  return t;
}

function dropoutPicture(m) {
  // The zero fraction on a 0..1 line, with the 5-sigma interval it must fall in.
  const W = 360, H = 46, x = v => 10 + v * (W - 20);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("role", "img");
  const add = (tag, a) => { const e = document.createElementNS(ns, tag); for (const k in a) e.setAttribute(k, a[k]); svg.append(e); return e; };
  add("line", {x1: x(0), x2: x(1), y1: 22, y2: 22, stroke: "#999"});
  const [lo, hi] = m.interval;
  add("rect", {x: x(lo), y: 14, width: Math.max(1, x(hi) - x(lo)), height: 16, fill: "#cfe3d4"});
  add("line", {x1: x(m.rate), x2: x(m.rate), y1: 10, y2: 34, stroke: "#17702a", "stroke-dasharray": "3 2"});
  const inside = m.zero_fraction >= lo && m.zero_fraction <= hi;
  add("circle", {cx: x(m.zero_fraction), cy: 22, r: 5, fill: inside ? "#17702a" : "#b00020"});
  for (const v of [0, 0.5, 1]) add("text", {x: x(v), y: 44, "font-size": 10, "text-anchor": "middle"}).textContent = v;
  return el("div", {}, svg, el("div", {class: "muted", text:
    "zero fraction " + m.zero_fraction.toFixed(4) + " (dot) of " + m.n + " non-zero inputs; rate " + m.rate +
    " (dashed); 5-sigma interval [" + lo.toFixed(4) + ", " + hi.toFixed(4) + "] (band)"}));
}

function histogram(h, names) {
  // Bars of log10 |torch - keras| counts; the tolerance (atol) as a dashed red line.
  const W = 420, H = 150, L = 40, B = 28, ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("role", "img");
  const add = (tag, a, text) => { const e = document.createElementNS(ns, tag); for (const k in a) e.setAttribute(k, a[k]);
                                  if (text !== undefined) e.textContent = text; svg.append(e); return e; };
  const edges = h.log10_edges, counts = h.counts;
  let lo = edges.length ? edges[0] : -8, hi = edges.length ? edges[edges.length - 1] : 0;
  if (h.log10_atol !== null) { lo = Math.min(lo, h.log10_atol - 0.5); hi = Math.max(hi, h.log10_atol + 0.5); }
  if (hi - lo < 1) { lo -= 0.5; hi += 0.5; }
  const x = v => L + (v - lo) / (hi - lo) * (W - L - 10), top = Math.max(1, ...counts);
  const y = c => H - B - c / top * (H - B - 10);
  add("line", {x1: L, x2: W - 10, y1: H - B, y2: H - B, stroke: "#888"});
  add("line", {x1: L, x2: L, y1: 10, y2: H - B, stroke: "#888"});
  counts.forEach((c, i) => { if (c) add("rect", {x: x(edges[i]), y: y(c), width: Math.max(1, x(edges[i + 1]) - x(edges[i]) - 0.5),
                                                 height: H - B - y(c), fill: "#4a6fa5"}); });
  for (let t = Math.ceil(lo); t <= Math.floor(hi); t++) add("text", {x: x(t), y: H - B + 13, "font-size": 10, "text-anchor": "middle"}, "1e" + t);
  add("text", {x: L - 4, y: 14, "font-size": 10, "text-anchor": "end"}, top);
  add("text", {x: L - 4, y: H - B, "font-size": 10, "text-anchor": "end"}, 0);
  add("text", {x: (L + W) / 2, y: H - 3, "font-size": 10, "text-anchor": "middle"}, "|" + (names || ["torch", "keras"]).join(" \u2212 ") + "| (log scale)");
  if (h.log10_atol !== null) {
    add("line", {x1: x(h.log10_atol), x2: x(h.log10_atol), y1: 8, y2: H - B, stroke: "#b00020", "stroke-dasharray": "4 3"});
    add("text", {x: x(h.log10_atol) + 3, y: 16, "font-size": 10, fill: "#b00020"}, "atol");
  }
  return el("div", {}, svg, el("div", {class: "muted note", text: h.nonzero + " non-zero differences, " + h.zeros +
    " exactly equal elements (not on a log scale)" + (h.log10_atol === null ? "; atol 0" : "")}));
}

function layerCurve(loc) {
  // Per layer of a failed network (xfw_harness.engine.localize): max |torch - keras| (solid) and its tolerance atol (dashed),
  // log scale, for Keras fed PyTorch's input to each layer and for each framework's own chain (end to end).
  const modes = [["layer_by_layer", "each layer fed PyTorch's input (own reduction length)", "#4a6fa5"],
                 ["end_to_end", "end to end (longest reduction so far)", "#c77c02"]];
  const n = loc.layer_by_layer.length, ns = "http://www.w3.org/2000/svg";
  const W = Math.max(420, 70 + n * 56), H = 200, L = 46, R = 14, T = 12, B = 40;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("role", "img");
  svg.setAttribute("class", "layer-curve");
  const add = (tag, a, text) => { const e = document.createElementNS(ns, tag); for (const k in a) e.setAttribute(k, a[k]);
                                  if (text !== undefined) e.textContent = text; svg.append(e); return e; };
  const logs = [];
  for (const [m] of modes) for (const e of loc[m]) for (const v of [e.max_abs, e.atol]) if (typeof v === "number" && v > 0) logs.push(Math.log10(v));
  let lo = logs.length ? Math.floor(Math.min(...logs)) - 1 : -8, hi = logs.length ? Math.ceil(Math.max(...logs)) : 0;
  if (hi - lo < 2) lo = hi - 2;
  const x = i => L + (n === 1 ? (W - L - R) / 2 : i * (W - L - R) / (n - 1));
  const y = v => T + (hi - v) / (hi - lo) * (H - T - B);
  const yOf = v => (typeof v === "number" && v > 0) ? y(Math.max(lo, Math.log10(v))) : y(lo);  // exactly equal: at the bottom
  add("line", {x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#888"});
  add("line", {x1: L, x2: L, y1: T, y2: H - B, stroke: "#888"});
  for (let t = lo; t <= hi; t++) add("text", {x: L - 4, y: y(t) + 3, "font-size": 10, "text-anchor": "end"}, "1e" + t);
  for (let i = 0; i < n; i++) {
    add("text", {x: x(i), y: H - B + 13, "font-size": 10, "text-anchor": "middle"}, "[" + i + "]");
    add("text", {x: x(i), y: H - B + 25, "font-size": 9, "text-anchor": "middle", fill: "#555"}, loc.layer_by_layer[i].block);
  }
  if (loc.first_layer !== null && loc.first_layer !== undefined) {
    const fx = x(loc.first_layer);
    add("line", {x1: fx, x2: fx, y1: T, y2: H - B, stroke: "#b00020", "stroke-dasharray": "2 3", class: "first-divergent"});
  }
  for (const [m, , colour] of modes) {
    const pts = loc[m].map(e => x(e.layer) + "," + yOf(e.max_abs)).join(" ");
    const tol = loc[m].map(e => x(e.layer) + "," + yOf(e.atol)).join(" ");
    add("polyline", {points: tol, fill: "none", stroke: colour, "stroke-dasharray": "5 3", "stroke-width": 1, "data-mode": m, class: "tolerance"});
    add("polyline", {points: pts, fill: "none", stroke: colour, "stroke-width": 2, "data-mode": m, class: "error"});
    for (const e of loc[m]) {
      const c = add("circle", {cx: x(e.layer), cy: yOf(e.max_abs), r: 3.5, stroke: e.passed ? colour : "#b00020",
                               fill: e.passed ? (e.max_abs ? colour : "#fff") : "#b00020", "data-mode": m, "data-passed": e.passed});
      const t = document.createElementNS(ns, "title");
      t.textContent = (e.label || ("layers[" + e.layer + "] " + e.block)) + ": max abs " + fmt(e.max_abs) + ", atol " + fmt(e.atol) +
                      " (K " + e.reduction_length + ")" + (e.passed ? "" : ", outside the tolerance (" + e.check + ")");
      c.append(t);
    }
  }
  const legend = el("div", {class: "muted note"});
  for (const [m, text, colour] of modes) legend.append(el("div", {}, el("span", {style: "color:" + colour, text: "● "}), text));
  legend.append(el("div", {text: "solid: max |torch − keras| after the layer; dashed: its atol; red: outside the " +
    "tolerance" + (loc.first_layer !== null && loc.first_layer !== undefined ? "; dotted line: the first divergent layer" : "") +
    "; hollow at the bottom: exactly equal"}));
  return el("div", {}, svg, legend);
}

// The name of one array of a comparison, in words ("torch", "keras", "expected", ...: the comparator's names).
function arrayName(name, backend) {
  return name === "torch" ? "PyTorch" : name === "keras" ? kerasName(backend) :
         name === "expected" ? "expected (expect.output)" : name;
}
function heatmapTable(h, backend) {
  // The comparison's two arrays (a results file from before names were kept: torch and keras, under those keys).
  const [na, nb] = h.names || ["torch", "keras"];
  const t = el("table", {class: "maps"});
  t.append(el("tr", {}, el("th", {text: ""}), el("th", {class: "a", text: arrayName(na, backend)}),
                        el("th", {class: "b", text: arrayName(nb, backend)}),
                        el("th", {class: "diff", text: "|" + na + " \u2212 " + nb + "|"})));
  for (const c of h.channels) {
    const scale = Math.max(1, Math.min(12, Math.floor(150 / Math.max(c.rows, c.cols))));
    const img = b64 => el("img", {src: "data:image/png;base64," + b64, width: c.cols * scale, height: c.rows * scale, alt: ""});
    const name = h.label === "channel" ? "channel " + c.index : h.label;
    t.append(el("tr", {}, el("td", {class: "muted", text: name + (c.reduced_by > 1 ? " (" + c.reduced_by + "x" + c.reduced_by + " blocks)" : "")}),
      el("td", {}, img(c.a || c.torch)), el("td", {}, img(c.b || c.keras)),
      el("td", {}, img(c.diff), el("div", {class: "muted", text: "0 \u2026 " + fmt(c.max_abs)}))));
  }
  const note = "values " + fmt(h.value_range[0]) + " (dark) \u2026 " + fmt(h.value_range[1]) + " (bright), one scale for both" +
    (h.sample !== null ? "; sample " + h.sample + " (holds the worst element)" : "") +
    "; " + h.channels.length + " of " + h.n_channels + " " + (h.label === "channel" ? "channels" : "planes") + ", worst first";
  return el("div", {}, t, el("div", {class: "muted note", text: note}));
}

// Keras's backend in words: a compare: backends test runs on every backend, an invalid case on none.
function kerasName(backend) {
  return backend === "backends" ? "Keras (each backend)" : backend === "-" ? "Keras" : "Keras on " + backend;
}
function backendText(backend) {
  return backend === "backends" ? "each selected backend, compared with each other and with PyTorch" :
         backend === "-" ? "none (the case could not run)" : backend;
}
function otherBackends(row) {
  const p = byPoint.get(row.point);
  return p ? p.list.filter(r => r !== row).map(r => r.backend + ": " + r.status).join(", ") : "";
}

function details(row) {
  const d = el("div", {class: "detail", "data-id": row.id, "data-backend": row.backend});
  d.append(el("h3", {}, el("span", {class: "bk", text: row.backend === "-" ? "not run" : row.backend}), " ",
              kerasName(row.backend) + ": ", el("span", {class: row.status, text: row.status})));
  d.append(el("pre", {class: "msg", text: row.message || row.status}));
  if (row.change) d.append(el("p", {}, "Since the baseline: ", el("span", {class: "change " + row.change, text: row.change})));
  const facts = [["Keras backend", backendText(row.backend)], ["on the other backends", otherBackends(row)],
                 ["test id", row.id], ["input \u2192 output (channels-first)", shapeText(row.shapes)], ["device", row.device],
                 ["ran on", Object.entries(row.placement || {}).map(([k, v]) => k + ": " + v).join(", ")],
                 ["run", DATA.shards[row.shard] || ""], ["time", fmt(row.duration_s) + " s"],
                 ["notes", (row.notes || []).join("; ")]];
  const ft = el("table");
  for (const [k, v] of facts) if (v) ft.append(el("tr", {}, el("th", {text: k}), el("td", {text: v})));
  d.append(ft);
  if (row.verdicts.length) { d.append(el("h4", {text: "Verdicts"}), metricsTable(row.verdicts)); }
  for (const v of row.verdicts) if (v.metrics && v.metrics.interval) d.append(el("h4", {text: v.what}), dropoutPicture(v.metrics));
  if (row.localization) d.append(el("h4", {text: "Error per layer"}), layerCurve(row.localization));
  const det = row.details || {};
  const pics = det.pictures || {};
  const picRow = el("div", {class: "pics"});
  if (pics.heatmaps) picRow.append(el("div", {class: "heatmaps", "data-what": pics.what || "keras vs torch"},
    el("h4", {text: "Where the outputs differ" + (pics.what ? ": " + pics.what : "")}), heatmapTable(pics.heatmaps, row.backend)));
  if (pics.histogram) picRow.append(el("div", {}, el("h4", {text: "Distribution of the differences"}), histogram(pics.histogram, pics.heatmaps && pics.heatmaps.names)));
  if (picRow.childElementCount) d.append(picRow);
  if (det.pictures_note) d.append(el("p", {class: "muted pictures-note", text: det.pictures_note}));
  if (det.pictures_error) d.append(el("p", {class: "muted", text: "no pictures: " + det.pictures_error}));
  if (row.case !== null && row.case !== undefined) {
    const [name, yaml] = DATA.cases[row.case];
    d.append(el("h4", {text: "The case (" + name + ")"}), el("pre", {text: yaml}));
  }
  if (det.code) d.append(el("h4", {text: "What it was translated into"}),
    el("div", {class: "code2"}, el("div", {}, el("b", {text: "PyTorch"}), el("pre", {text: det.code.torch})),
                                el("div", {}, el("b", {text: kerasName(row.backend)}), el("pre", {text: det.code.keras}))));
  if (det.code_error) d.append(el("p", {class: "muted", text: "no code: " + det.code_error}));
  if (!row.details && row.status !== "error") d.append(el("p", {class: "muted", text:
    "Pictures and code were not kept for this test: run it with `xfw-harness run --details all` to keep them."}));
  return d;
}

// The table of every test: one row per test point (the id without its backend), a cell per Keras backend.
let points = [];
const byPoint = new Map();
const state = {key: null, dir: 1};
const NUM = v => typeof v === "number" ? v : (v === "inf" || v === "nan" ? Infinity : -1);

function groupPoints(rowList) {
  for (const r of rowList) {
    let p = byPoint.get(r.point);
    if (!p) { p = {point: r.point, first: r, results: {}, list: []}; byPoint.set(r.point, p); points.push(p); }
    p.results[r.backend] = r;
    p.list.push(r);
  }
  const order = b => { const i = DATA.backends.indexOf(b); return i < 0 ? DATA.backends.length : i; };
  for (const p of points) {
    p.list.sort((a, b) => order(a.backend) - order(b.backend));
    // Disagreement among Keras's own backends (a compare: backends test's own verdict is not one of them).
    const own = p.list.filter(r => r.backend !== "backends" && r.backend !== "-");
    p.disagree = new Set(own.map(r => r.status)).size > 1;
    p.max_abs = Math.max(-1, ...p.list.map(r => NUM(r.max_abs)));
    p.max_rel = Math.max(-1, ...p.list.map(r => NUM(r.max_rel)));
    p.worst_abs = p.list.map(r => r.max_abs).find(v => NUM(v) === p.max_abs);
    p.worst_rel = p.list.map(r => r.max_rel).find(v => NUM(v) === p.max_rel);
    p.tolerance_ratio = Math.max(-1, ...p.list.map(r => NUM(r.tolerance_ratio)));
    p.worst_tolerance_ratio = p.list.map(r => r.tolerance_ratio).find(v => NUM(v) === p.tolerance_ratio);
    p.duration_s = p.list.reduce((t, r) => t + (r.duration_s || 0), 0);
    p.text = p.list.map(r => r.id + " " + r.blocks.join(" ") + " " + r.params + " " + sweepText(r.sweep) + " " +
                             r.message + " " + r.backend).join(" ").toLowerCase();
  }
}

function cell(text, cls) { return el("td", {class: cls || "", text: text}); }
function statusCell(p, backend, r) {
  if (!r) return el("td", {class: "st absent", "data-backend": backend, title: "not run with Keras on " + backend, text: "\u2013"});
  const td = el("td", {class: "st " + r.status, "data-backend": r.backend, "data-status": r.status, "data-id": r.id,
                       title: r.id + ": " + r.status + " (click for its details)"},
                r.status, r.tolerance_ratio !== null && r.tolerance_ratio !== undefined ?
                  el("small", {class: "ratio", title: "error/tolerance (1 or less passes)", text: fmt(r.tolerance_ratio)}) : null);
  td.addEventListener("click", ev => { ev.stopPropagation(); toggleResult(p, r); });
  return td;
}
function buildRows() {
  const tbody = document.querySelector("#tests tbody");
  tbody.textContent = "";
  const frag = document.createDocumentFragment();
  const columns = DATA.backends;
  for (const p of points) {
    const r0 = p.first;
    const id = el("td", {class: "id", text: p.point});
    for (const r of p.list) if (r.change) id.append(el("span", {class: "change " + r.change,
      text: r.change + (r.backend !== "-" ? " (" + r.backend + ")" : "")}));
    const tr = el("tr", {class: "row" + (p.disagree ? " disagree" : ""), "data-point": p.point},
      id, cell(r0.blocks.join(", ")), cell(r0.device), cell(r0.params || sweepText(r0.sweep), "params"),
      cell(shapeText((p.list.find(r => r.shapes && r.shapes.input) || r0).shapes)));
    p._cells = [];
    if (p.results["-"] && p.list.length === 1) {  // a case that could not run: on no backend
      const c = statusCell(p, "-", r0);
      c.setAttribute("colspan", Math.max(1, columns.length));
      c.append(el("small", {text: "the case could not run"}));
      p._cells.push(c);
    } else {
      for (const b of columns) p._cells.push(statusCell(p, b, p.results[b]));
    }
    p._nums = [cell("", "num max_abs"), cell("", "num max_rel"), cell("", "num tolerance_ratio"),
               cell("", "num duration_s")];
    tr.append(...p._cells, ...p._nums);
    p._tr = tr;
    tr.addEventListener("click", () => togglePoint(p));
    frag.append(tr);
  }
  tbody.append(frag);
}
function placeDetails(p) {
  let after = p._tr;
  for (const r of p.list) if (r._open) { after.after(r._open); after = r._open; }
  for (const c of p._cells) c.classList.toggle("open", !!(c.dataset.id && byId.get(c.dataset.id)._open));
}
function toggleResult(p, r) {
  if (r._open) { r._open.remove(); r._open = null; }
  else {
    r._open = el("tr", {class: "open-detail", "data-backend": r.backend},
                 el("td", {colspan: 9 + DATA.backends.length}, details(r)));
    r._open.style.display = p._tr.style.display;
  }
  placeDetails(p);
}
function togglePoint(p) {  // every backend's details, or none
  const open = p.list.some(r => r._open);
  for (const r of p.list) if (!!r._open === open) toggleResult(p, r);
}
function applyFilter() {
  const q = document.getElementById("filter").value.toLowerCase();
  const st = document.getElementById("f-status").value, bl = document.getElementById("f-block").value;
  const dev = document.getElementById("f-device").value, bk = document.getElementById("f-backend").value;
  const ch = document.getElementById("f-changed"), dis = document.getElementById("f-disagree");
  let n = 0, shownPoints = 0;
  for (const p of points) {
    const rs = bk ? (p.results[bk] ? [p.results[bk]] : []) : p.list;  // the results the filters look at
    const show = rs.length > 0 && (!q || p.text.includes(q)) && (!st || rs.some(r => r.status === st)) &&
                 (!bl || p.first.blocks.includes(bl)) && (!dev || p.first.device === dev) &&
                 (!ch || !ch.checked || rs.some(r => !!r.change)) && (!dis.checked || p.disagree);
    p._tr.style.display = show ? "" : "none";
    for (const r of p.list) if (r._open) r._open.style.display = show ? "" : "none";
    for (const c of p._cells) c.classList.toggle("dim", !!bk && c.dataset.backend !== bk);
    const nums = numbers(p, bk);  // the filtered backend's numbers, else the worst (and total) over them
    nums.forEach((x, i) => { p._nums[i].textContent = fmt(x); });
    p._nums[2].classList.toggle("over", NUM(nums[2]) > 1);
    if (show) { n += st ? rs.filter(r => r.status === st).length : rs.length; shownPoints += 1; }
  }
  document.getElementById("shown").textContent = n + " of " + DATA.rows.length + " tests shown, in " + shownPoints +
    " of " + points.length + " rows";
}
function numbers(p, bk) {
  if (!bk) return [p.worst_abs, p.worst_rel, p.worst_tolerance_ratio, p.duration_s];
  const r = p.results[bk];
  return r ? [r.max_abs, r.max_rel, r.tolerance_ratio, r.duration_s] : [null, null, null, null];
}
function sortKey(p, key) {
  const r = p.first;
  if (key.startsWith("backend:")) {
    const x = p.results[key.slice(8)];
    return x ? STATUS_ORDER.indexOf(x.status) : STATUS_ORDER.length;
  }
  if (key === "id") return p.point;
  if (key === "blocks") return r.blocks.join(",");
  if (key === "params") return r.params || sweepText(r.sweep);
  if (key === "shape") return shapeText(r.shapes);
  if (key === "device") return r.device;
  // max_abs, max_rel, tolerance_ratio, duration_s: the filtered backend's, else the worst over the backends
  // (time: their sum)
  const bk = document.getElementById("f-backend").value;
  if (bk) { const r = p.results[bk]; return r ? NUM(r[key]) : -1; }
  return p[key];
}
function sortBy(key) {
  state.dir = state.key === key ? -state.dir : 1;
  state.key = key;
  points.sort((a, b) => { const x = sortKey(a, key), y = sortKey(b, key); return (x < y ? -1 : x > y ? 1 : 0) * state.dir; });
  document.querySelectorAll("#tests th").forEach(th => th.removeAttribute("data-dir"));
  document.querySelector('#tests th[data-key="' + key + '"]').setAttribute("data-dir", state.dir > 0 ? "asc" : "desc");
  const tbody = document.querySelector("#tests tbody");
  for (const p of points) { tbody.append(p._tr); placeDetails(p); }
}

async function main() {
  try { DATA = await unpack(); }
  catch (e) { document.getElementById("loading").textContent = "Cannot unpack the test data in this browser: " + e; return; }
  for (const r of DATA.rows) byId.set(r.id, r);
  groupPoints(DATA.rows);
  buildRows();
  for (const id of ["filter", "f-status", "f-block", "f-device", "f-backend", "f-changed", "f-disagree"]) {
    const e = document.getElementById(id);
    if (e) e.addEventListener(e.tagName === "INPUT" && e.type === "search" ? "input" : "change", applyFilter);
  }
  document.querySelectorAll("#tests th").forEach(th => th.addEventListener("click", () => sortBy(th.dataset.key)));
  const fill = det => {
    const slot = det.querySelector(".slot");
    if (!slot.childElementCount && byId.has(det.dataset.id)) slot.append(details(byId.get(det.dataset.id)));
  };
  document.querySelectorAll("details.failure").forEach(det => {
    if (det.open) fill(det);
    det.addEventListener("toggle", () => { if (det.open) fill(det); });
  });
  applyFilter();
  window.reportReadyMs = performance.now();
  document.body.dataset.ready = "1";
}
main();
