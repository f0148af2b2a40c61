// backprop explore: the page draws what the Python server computed; it does no maths of
// the network itself. Every request carries this run's token (the server refuses others).
"use strict";
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const stats = (window.exploreStats = { stepMs: [], frameMs: [], matricesMs: null });
const PALETTE = [[230, 97, 1], [94, 60, 153], [27, 158, 119], [217, 95, 2], [231, 41, 138],
  [102, 166, 30], [230, 171, 2], [166, 118, 29], [31, 120, 180], [102, 102, 102]];
let options = null, state = null, playing = false, matricesOn = true;

async function api(method, path, body) {
  const init = { method, headers: { "X-Backprop-Token": TOKEN } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function decode(enc) {  // {shape, dtype, b64} -> typed array (row-major)
  const bin = atob(enc.b64), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return enc.dtype === "<f8" ? new Float64Array(bytes.buffer) : new Float32Array(bytes.buffer);
}

function showError(e) { $("error").textContent = e ? String(e.message || e) : ""; }

// ------------------------------------------------------------------ URL state
function configFromForm() {
  const f = $("config"), c = {};
  for (const [k, v] of Object.entries(options.defaults)) {
    const raw = f.elements[k].value.trim();
    if (k === "hidden") c[k] = raw === "" ? [] : raw.split(",").map(Number);
    else c[k] = typeof v === "number" ? Number(raw) : raw;
  }
  return c;
}
function fillForm(c) {
  for (const [k, v] of Object.entries(c)) {
    const el = $("config").elements[k];
    if (el) el.value = Array.isArray(v) ? v.join(",") : v;
  }
}
function writeHash() {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(state.config)) p.set(k, Array.isArray(v) ? v.join(",") : v);
  p.set("step", state.step);
  history.replaceState(null, "", "#" + p.toString());
}
function readHash() {  // -> [config, step] or null
  if (location.hash.length < 2) return null;
  const p = new URLSearchParams(location.hash.slice(1)), c = {};
  for (const [k, v] of Object.entries(options.defaults)) {
    if (!p.has(k)) continue;
    const raw = p.get(k);
    if (k === "hidden") c[k] = raw === "" ? [] : raw.split(",").map(Number);
    else c[k] = typeof v === "number" ? Number(raw) : raw;
  }
  return [c, Number(p.get("step") || 0)];
}

// ------------------------------------------------------------------ drawing helpers
function diverging(v, m) {  // blue (-) white (0) red (+)
  const t = Math.max(-1, Math.min(1, m > 0 ? v / m : 0));
  return t >= 0 ? [255, 255 * (1 - t), 255 * (1 - t)] : [255 * (1 + t), 255 * (1 + t), 255];
}
// The one colour scale of every heatmap and image: a bar and its ends, written into `el`
// (class "scale"). Diverging: blue -m, white 0, red +m, symmetric about 0; mono: white lo,
// black hi. `canvas.dataset.scale` keeps the ends (the browser test reads them).
function colourScale(el, canvas, lo, hi, mono, note) {
  const f = (x) => (typeof x === "number" ? x.toPrecision(3) : x);
  const ends = mono ? [f(lo), "·", f(hi)] : [f(lo), "· 0 ·", f(hi)];
  el.classList.add("scale");
  el.innerHTML = `<span class="bar${mono ? " mono" : ""}"></span> `;
  el.append(ends.join(" ") + (note ? "  " + note : ""));
  for (const c of [].concat(canvas)) c.dataset.scale = [f(lo), f(hi)].join("|");
}
// The legend of a picture that is not a line chart: a swatch and a name per item, as HTML
// under the canvas (nothing drawn over the picture). `canvas.dataset.legend` lists the names,
// as chart() does for its own legend.
function legendBox(el, canvas, items) {
  el.classList.add("legend");
  el.replaceChildren(...items.map(([css, label]) => {
    const span = document.createElement("span"), sw = document.createElement("i");
    sw.style.cssText = css;
    span.append(sw, label);
    return span;
  }));
  canvas.dataset.legend = items.map((it) => it[1]).join(", ");
}
const pale = (rgb) => rgb.map((x) => 255 - 0.45 * (255 - x));  // class regions: the points stay visible
// One colour per layer, none of them a class colour (PALETTE), so that a layer's curve is
// never read as a class.
const LAYER_COLORS = ["#212121", "#6d4c41", "#8e24aa", "#f9a825", "#546e7a", "#43a047", "#3949ab"];
function chart(canvas, series, logY) {
  const g = canvas.getContext("2d"), W = canvas.width, H = canvas.height, pad = 36;
  g.clearRect(0, 0, W, H);
  let xs = [], ys = [];
  for (const s of series) { xs = xs.concat(s.x); ys = ys.concat(s.y.filter((v) => Number.isFinite(v) && (!logY || v > 0))); }
  if (!ys.length) return;
  const f = logY ? Math.log10 : (v) => v;
  let y0 = Math.min(...ys.map(f)), y1 = Math.max(...ys.map(f));
  if (!logY) y0 = Math.min(0, y0);
  if (y1 - y0 < 1e-12) y1 = y0 + 1;
  const x1 = Math.max(1, ...xs);
  const px = (x) => pad + (W - pad - 8) * (x / x1), py = (y) => H - pad + (pad + 8 - H) * ((f(y) - y0) / (y1 - y0));
  g.strokeStyle = "#999"; g.fillStyle = "#555"; g.font = "11px sans-serif";
  g.strokeRect(pad, 8, W - pad - 8, H - pad - 8);
  // The axis ends as plain numbers (a log axis stores log10 y: show 10^y, not "1e-0.331").
  const tick = (y) => (logY ? 10 ** y : y).toPrecision(3);
  g.fillText(tick(y1), 2, 16);
  g.fillText(tick(y0), 2, H - pad);
  g.fillText((logY ? "log scale · " : "") + "step " + x1, W - 120, H - 20);
  series.forEach((s, i) => {  // the legend: a sample of each line and its name
    const ly = 20 + 14 * i, lx = W - 150;
    g.strokeStyle = s.color; g.setLineDash(s.dash || []); g.beginPath();
    g.moveTo(lx, ly - 4); g.lineTo(lx + 22, ly - 4); g.stroke();
    g.setLineDash([]); g.fillStyle = "#333"; g.fillText(s.label, lx + 28, ly);
  });
  canvas.dataset.legend = series.map((s) => s.label).join(", ");
  canvas.dataset.ticks = [tick(y0), tick(y1)].join("|");
  for (const s of series) {
    g.strokeStyle = s.color; g.setLineDash(s.dash || []); g.beginPath();
    let started = false;
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (!Number.isFinite(y) || (logY && y <= 0)) return;
      started ? g.lineTo(px(x), py(y)) : g.moveTo(px(x), py(y));
      started = true;
    });
    g.stroke();
  }
  g.setLineDash([]);
}

// ------------------------------------------------------------------ training view
let pointsCache = [null, null];
function decodedPoints() {  // the data points change only on reset: decode them once
  const p = state.points;
  if (!p) return null;
  if (pointsCache[0] !== p) {
    pointsCache = [p, { train: [decode(p.train), decode(p.train_y)], test: [decode(p.test), decode(p.test_y)] }];
  }
  return pointsCache[1];
}
function drawBoundary() {
  const cv = $("boundary"), g = cv.getContext("2d");
  g.clearRect(0, 0, cv.width, cv.height);
  if (!state.boundary) {  // no picture, so no legend: data-empty says so
    g.fillText("(inputs are not 2-D)", 10, 20);
    $("boundary-legend").replaceChildren(); $("boundary-scale").replaceChildren();
    delete cv.dataset.legend; delete cv.dataset.scale; cv.dataset.empty = "1";
    return;
  }
  delete cv.dataset.empty;
  const b = state.boundary, res = b.res, v = decode(b.values), c = b.values.shape[1];
  const img = g.createImageData(res, res), cls = state.task === "classification";
  let m = 0;
  if (!cls) for (const x of v) m = Math.max(m, Math.abs(x));
  for (let p = 0; p < res * res; p++) {
    let rgb = [0, 0, 0];
    if (cls) {
      for (let k = 0; k < c; k++) for (let q = 0; q < 3; q++) rgb[q] += v[p * c + k] * PALETTE[k][q];
      rgb = pale(rgb);
    } else rgb = diverging(v[p], m);
    img.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * p);
  }
  const tmp = document.createElement("canvas");
  tmp.width = tmp.height = res;
  tmp.getContext("2d").putImageData(img, 0, 0);
  g.imageSmoothingEnabled = true;
  g.drawImage(tmp, 0, 0, cv.width, cv.height);
  // Its legend: each class's region (the mix of class colours by p_k) and its points; for
  // regression the output's colour scale.
  const dot = (rgb, filled) => `border-radius:50%;width:7px;height:7px;border:1.5px solid rgb(${rgb});` +
    (filled ? `background:rgb(${rgb})` : "background:#fff");
  const items = cls ? Array.from({ length: c }, (_, k) => [`background:rgb(${pale(PALETTE[k])});` +
    `box-shadow:inset 0 0 0 3px rgb(${pale(PALETTE[k])}), inset 0 0 0 7px rgb(${PALETTE[k]})`, `class ${k + 1}: region where p_${k + 1} is largest, its points`])
    : [["background:linear-gradient(to right, rgb(0,0,255), #fff, rgb(255,0,0))", "output o over the plane (and each point's target)"]];
  items.push([dot([60, 60, 60], true), "training example"], [dot([60, 60, 60], false), "test example"]);
  legendBox($("boundary-legend"), cv, items);
  if (!cls) colourScale($("boundary-scale"), cv, -m, m);
  else { $("boundary-scale").replaceChildren(); $("boundary-scale").className = ""; delete cv.dataset.scale; }
  const pts = decodedPoints();
  if (!pts) return;
  const sx = (x) => ((x - b.lo[0]) / (b.hi[0] - b.lo[0])) * cv.width;
  const sy = (y) => ((b.hi[1] - y) / (b.hi[1] - b.lo[1])) * cv.height;
  for (const [key, filled] of [["train", true], ["test", false]]) {
    const [X, y] = pts[key];
    for (let i = 0; i < y.length; i++) {
      const col = cls ? PALETTE[y[i]] : diverging(y[i], m);
      g.beginPath(); g.arc(sx(X[2 * i]), sy(X[2 * i + 1]), 2.6, 0, 7);
      g.fillStyle = g.strokeStyle = `rgb(${col})`;
      filled ? g.fill() : g.stroke();
    }
  }
}
function drawTraining() {
  const h = state.history;
  chart($("curves"), [
    { x: h.step, y: h.train_loss, color: "#1565c0", label: "training loss J" },
    { x: h.step, y: h.test_loss, color: "#c62828", dash: [5, 4], label: "test loss J" },
  ], false);
  const L = state.layer_sizes.length - 1, n0 = Math.max(0, state.step - state.grad_norms.length);
  const series = [];
  for (let l = 0; l < L; l++) {
    series.push({ x: state.grad_norms.map((_, i) => n0 + i + 1), y: state.grad_norms.map((r) => r[l]),
      color: LAYER_COLORS[l % LAYER_COLORS.length], label: `||dJ/dW[${l + 1}]||` });
  }
  chart($("norms"), series, true);
  drawBoundary();
  const last = (k) => { const v = h[k][h[k].length - 1]; return v === null ? NaN : v; };
  $("summary").textContent = `step ${state.step} (epoch of ${state.epoch_size} examples) · network ` +
    `${state.layer_sizes.join("-")} · ${state.loss} · train loss ${last("train_loss").toFixed(4)} · ` +
    `test loss ${last("test_loss").toFixed(4)} · test ${state.metric} ${last("test_metric").toFixed(3)}`;
  $("summary").dataset.trainLoss = last("train_loss");
  $("status").textContent = playing ? "training…" : "paused";
}

// ------------------------------------------------------------------ matrices view
function heatmap(m, form, example) {
  const v = decode(m.values), [r, c] = m.values.shape.length === 2 ? m.values.shape : [1, m.values.shape[0]];
  let mx = 0;
  for (const x of v) mx = Math.max(mx, Math.abs(x));
  const cell = Math.max(1, Math.min(14, Math.floor(900 / c), Math.floor(600 / r) || 1));
  const cv = document.createElement("canvas");
  cv.width = c * cell; cv.height = r * cell;
  const g = cv.getContext("2d"), img = g.createImageData(c, r);
  for (let p = 0; p < r * c; p++) img.data.set([...diverging(v[p], mx), 255], 4 * p);
  const tmp = document.createElement("canvas");
  tmp.width = c; tmp.height = r;
  tmp.getContext("2d").putImageData(img, 0, 0);
  g.imageSmoothingEnabled = false;
  g.drawImage(tmp, 0, 0, cv.width, cv.height);
  if (m.batch_axis !== null && form !== "example") {  // the selected example, everywhere
    g.strokeStyle = "#000"; g.lineWidth = 2;
    m.batch_axis === 0 ? g.strokeRect(1, example * cell, cv.width - 2, cell) : g.strokeRect(example * cell, 1, cell, cv.height - 2);
  }
  const div = document.createElement("div");
  div.className = "matrix";
  div.innerHTML = `<div class="title"></div><div class="eq"></div><div class="scale"></div>`;
  const label = m.label || m.name;  // the form's notation: W[l] in rows (page 7), W(l) in columns
  div.querySelector(".title").textContent = `${label}  ${r} x ${c}`;
  div.querySelector(".eq").textContent = `${m.equation}   (page ${m.page})`;
  cv.className = "heatmap";
  colourScale(div.querySelector(".scale"), cv, -mx, mx);  // each matrix its own, symmetric about 0
  div.dataset.name = m.name;
  div.appendChild(cv);
  const at = (e) => [Math.floor(e.offsetY / cell), Math.floor(e.offsetX / cell)];
  cv.addEventListener("mousemove", (e) => {
    const [i, j] = at(e);
    if (i >= r || j >= c) return;
    const tip = $("tip");
    tip.style.display = "block"; tip.style.left = e.clientX + 12 + "px"; tip.style.top = e.clientY + 12 + "px";
    // The notes count rows and columns from 1.
    tip.textContent = `${label} entry (${i + 1}, ${j + 1}) = ${v[i * c + j].toPrecision(6)}`;
  });
  cv.addEventListener("mouseleave", () => ($("tip").style.display = "none"));
  const w = /^dJ\/dW\((\d+)\)$/.exec(m.name);
  if (w) cv.addEventListener("click", (e) => {  // rows: (fan_in, fan_out); else transposed
    const [a, b] = at(e), [i, j] = form === "rows" ? [a, b] : [b, a];
    $("chain-l").value = w[1]; $("chain-i").value = i + 1; $("chain-j").value = j + 1;  // shown from 1
    showChain().catch(showError);
  });
  return div;
}
async function showMatrices() {
  if (!matricesOn) return;
  const t0 = performance.now();
  const form = $("form").value, k = exampleIndex();
  const res = await api("GET", `/api/matrices?form=${form}&example=${k}`);
  const box = $("matrices");
  box.replaceChildren(...res.matrices.map((m) => heatmap(m, form, k)));
  stats.matricesMs = performance.now() - t0;
  await showGraph();
  await showImage();
}

// ------------------------------------------------------------------ graph view
function graphable() {  // the server's rule (views.GRAPH_MAX_UNITS): 2-D inputs, <= 16 units
  const z = state.layer_sizes;
  return z[0] === 2 && Math.max(...z) <= options.graph_max_units;
}
async function showGraph() {
  const box = $("graph-view");
  box.hidden = !graphable();
  if (box.hidden) return;
  const g = await api("GET", "/api/graph?res=24"), backward = $("graph-mode").value === "backward";
  const cv = $("graph"), ctx = cv.getContext("2d"), sizes = state.layer_sizes, res = g.res;
  const cell = 44, gap = 8, colW = cv.width / sizes.length;
  cv.height = Math.max(...sizes) * (cell + gap) + gap;
  ctx.clearRect(0, 0, cv.width, cv.height);
  const top = (a, u) => (cv.height - sizes[a] * (cell + gap)) / 2 + u * (cell + gap) + gap / 2;
  const left = (a) => a * colW + (colW - cell) / 2;
  // Links first, under the units: W(l) forward, dJ/dW(l) backward; width by |value|.
  for (let l = 1; l < sizes.length; l++) {
    const v = decode(backward ? g.layers[l].dW : g.layers[l].W), m = sizes[l];
    let mx = 0;
    for (const x of v) mx = Math.max(mx, Math.abs(x));
    for (let i = 0; i < sizes[l - 1]; i++) for (let j = 0; j < m; j++) {
      const w = v[i * m + j], t = mx > 0 ? Math.abs(w) / mx : 0;
      ctx.strokeStyle = w >= 0 ? `rgba(198,40,40,${0.15 + 0.85 * t})` : `rgba(21,101,192,${0.15 + 0.85 * t})`;
      ctx.lineWidth = 0.5 + 4 * t;
      ctx.beginPath();
      ctx.moveTo(left(l - 1) + cell, top(l - 1, i) + cell / 2);
      ctx.lineTo(left(l), top(l, j) + cell / 2);
      ctx.stroke();
    }
  }
  const X = decode(g.X), sx = (x) => ((x - g.lo[0]) / (g.hi[0] - g.lo[0])) * cell;
  const sy = (y) => ((g.hi[1] - y) / (g.hi[1] - g.lo[1])) * cell;
  for (let a = 0; a < sizes.length; a++) {
    const maps = decode(g.layers[a].maps), delta = a > 0 && backward ? decode(g.layers[a].delta) : null;
    for (let u = 0; u < sizes[a]; u++) {
      const x0 = left(a), y0 = top(a, u);
      if (delta) {  // delta(l)_kj of each example k of the batch, drawn where x_k lies
        let mx = 0;
        for (let k = 0; k < X.length / 2; k++) mx = Math.max(mx, Math.abs(delta[k * sizes[a] + u]));
        ctx.fillStyle = "#fff"; ctx.fillRect(x0, y0, cell, cell);
        for (let k = 0; k < X.length / 2; k++) {
          ctx.fillStyle = `rgb(${diverging(delta[k * sizes[a] + u], mx)})`;
          ctx.fillRect(x0 + sx(X[2 * k]) - 2, y0 + sy(X[2 * k + 1]) - 2, 4, 4);
        }
      } else {  // the unit's output over the plane
        const v = maps.subarray(u * res * res, (u + 1) * res * res);
        imageCanvasAt(ctx, v, res, x0, y0, cell);
      }
      ctx.strokeStyle = "#555"; ctx.lineWidth = 1; ctx.strokeRect(x0, y0, cell, cell);
    }
  }
  // Its key: what a unit's picture and a link's colour and width mean, in this mode.
  // Backward, the inputs have no delta (the engine never computes dJ/dX): they keep
  // their forward maps, and the key says so.
  const what = backward
    ? ["delta(l) of each unit at the batch's examples (inputs: x_i over the plane)", "dJ/dW(l)"]
    : ["a(l) of each unit over the input plane", "W(l)"];
  legendBox($("graph-legend"), cv, [
    ["background:linear-gradient(to right, rgb(0,0,255), #fff, rgb(255,0,0))", `unit: ${what[0]}`],
    ["height:3px;background:rgb(198,40,40)", `link: ${what[1]}_ji > 0`],
    ["height:3px;background:rgb(21,101,192)", `link: ${what[1]}_ji < 0`],
    ["height:1px;background:rgba(120,120,120,.6)", "thin: |value| small"],
    ["height:5px;background:rgb(120,120,120)", "thick: the layer's largest |value|"],
  ]);
  colourScale($("graph-scale"), cv, "-max", "+max", false, "each unit scaled to its own largest |value|");
  document.body.dataset.graphDrawn = String(state.step);
}
function imageCanvasAt(ctx, v, res, x0, y0, size) {  // a res x res map, diverging colours
  let mx = 0;
  for (const x of v) mx = Math.max(mx, Math.abs(x));
  const img = new ImageData(res, res);
  for (let p = 0; p < res * res; p++) img.data.set([...diverging(v[p], mx), 255], 4 * p);
  const tmp = document.createElement("canvas");
  tmp.width = tmp.height = res;
  tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(tmp, x0, y0, size, size);
}

// ------------------------------------------------------------------ image view
function imageCanvas(cv, v, [h, w], mono, shared) {  // mono: grey pixels, else diverging
  let mx = 0, lo = Infinity, hi = -Infinity;  // shared: the largest |value| of a set of images
  for (const x of v) { mx = Math.max(mx, Math.abs(x)); lo = Math.min(lo, x); hi = Math.max(hi, x); }
  if (shared !== undefined) mx = shared;
  const img = new ImageData(w, h);
  for (let p = 0; p < h * w; p++) {
    const g = 255 * (1 - (v[p] - lo) / (hi - lo || 1));
    img.data.set([...(mono ? [g, g, g] : diverging(v[p], mx)), 255], 4 * p);
  }
  const tmp = document.createElement("canvas");
  tmp.width = w; tmp.height = h;
  tmp.getContext("2d").putImageData(img, 0, 0);
  const g = cv.getContext("2d");
  g.imageSmoothingEnabled = false;
  g.drawImage(tmp, 0, 0, cv.width, cv.height);
  cv.classList.add("heatmap");
  return mono ? [lo, hi] : [-mx, mx];
}
async function showImage() {
  const box = $("image-view");
  box.hidden = !state.image_shape;
  if (box.hidden) return;
  const r = await api("GET", `/api/image?example=${exampleIndex()}`);
  const shape = state.image_shape;
  colourScale($("img-x-scale"), $("img-x"), ...imageCanvas($("img-x"), decode(r.x), shape, true), true);
  colourScale($("img-dx-scale"), $("img-dx"), ...imageCanvas($("img-dx"), decode(r.dX), shape, false));
  const p = decode(r.out), cv = $("img-p"), g = cv.getContext("2d"), bw = cv.width / p.length;
  g.clearRect(0, 0, cv.width, cv.height);
  p.forEach((v, k) => {
    g.fillStyle = k === r.label ? "#2e7d32" : "#607d8b";
    g.fillRect(k * bw + 2, cv.height - 16 - v * (cv.height - 20), bw - 4, v * (cv.height - 20));
    g.fillStyle = "#333"; g.fillText(String(k + 1), k * bw + bw / 2 - 3, cv.height - 3);  // from 1
  });
  $("img-p-caption").textContent = `class probabilities p_k, k = 1..${p.length} (label y = ${r.label + 1} in green)`;
  legendBox($("img-p-legend"), cv, [["background:#2e7d32", `p_y, the label's class`], ["background:#607d8b", "p_k of another class k"]]);
  const W1 = decode(r.W1), [units, d] = r.W1.shape;
  let mx = 0;  // one colour scale for every unit's image, so that they compare
  for (const x of W1) mx = Math.max(mx, Math.abs(x));
  const cs = Array.from({ length: units }, (_, j) => {
    const c = document.createElement("canvas");
    c.width = c.height = 48;
    imageCanvas(c, W1.subarray(j * d, (j + 1) * d), shape, false, mx);
    return c;
  });
  $("img-w1").replaceChildren(...cs);
  colourScale($("img-w1-scale"), cs, -mx, mx, false, "(shared by every unit)");
}

// ------------------------------------------------------------------ chain-rule view
function drawNetwork(l, i, j) {
  const cv = $("network"), g = cv.getContext("2d"), sizes = state.layer_sizes;
  g.clearRect(0, 0, cv.width, cv.height);
  const shown = sizes.map((s) => Math.min(s, 16));
  const x = (a) => 30 + (a * (cv.width - 60)) / (sizes.length - 1);
  const y = (a, u) => ((u + 0.5) * cv.height) / shown[a];
  g.strokeStyle = "#ddd"; g.lineWidth = 1;
  for (let a = 0; a + 1 < sizes.length; a++)
    for (let u = 0; u < shown[a]; u++) for (let w = 0; w < shown[a + 1]; w++) {
      g.beginPath(); g.moveTo(x(a), y(a, u)); g.lineTo(x(a + 1), y(a + 1, w)); g.stroke();
    }
  // The path of products: A(l-1)_i -> W(l)_ij -> Z(l)_j -> every W(l+1)_jm -> delta(l+1)_m
  g.strokeStyle = "#d81b60"; g.lineWidth = 3;
  const line = (a, u, b, w) => { if (u < 16 && w < 16) { g.beginPath(); g.moveTo(x(a), y(a, u)); g.lineTo(x(b), y(b, w)); g.stroke(); } };
  line(l - 1, i, l, j);
  g.lineWidth = 1.5;
  if (l < sizes.length - 1) for (let m = 0; m < shown[l + 1]; m++) line(l, j, l + 1, m);
  for (let a = 0; a < sizes.length; a++) for (let u = 0; u < shown[a]; u++) {
    g.beginPath(); g.arc(x(a), y(a, u), 5, 0, 7);
    g.fillStyle = (a === l - 1 && u === i) || (a === l && u === j) ? "#d81b60" : "#607d8b";
    g.fill();
  }
}
// The example input counts from 1 (the notes' x^(1) ... x^(n)); the server from 0.
const exampleIndex = () => Math.max(0, (Number($("example").value) || 1) - 1);
async function showChain() {
  // The inputs count from 1, as the notes do; the server counts from 0.
  const l = Number($("chain-l").value), i = Number($("chain-i").value) - 1, j = Number($("chain-j").value) - 1;
  const k = exampleIndex();
  const r = await api("GET", `/api/chain?layer=${l}&i=${i}&j=${j}&example=${k}`);
  drawNetwork(l, i, j);
  const a = decode(r.a_prev), d = decode(r.delta), t = decode(r.terms);
  const f = (v) => Number(v).toPrecision(8);
  let rows = "";
  for (let q = 0; q < Math.min(t.length, 12); q++) rows += `<tr><td>${q + 1}</td><td>${f(a[q])}</td><td>${f(d[q])}</td><td>${f(t[q])}</td></tr>`;
  if (t.length > 12) rows += `<tr><td colspan="4">… ${t.length - 12} more examples</td></tr>`;
  const rel = Math.abs(r.engine - r.finite_difference) / Math.max(1e-8, Math.abs(r.engine) + Math.abs(r.finite_difference));
  let hidden = "";
  if (r.delta_terms) {
    const dt = decode(r.delta_terms);
    // Rows layout (page 7): example k is a row; the sum runs over the units e of layer l + 1.
    hidden = `<p>delta[${l}]<sub>${k + 1},${j + 1}</sub> = (Σ<sub>e</sub> delta[${l + 1}]<sub>${k + 1},e</sub> W[${l + 1}]<sub>${j + 1},e</sub>) · f'(Z[${l}]<sub>${k + 1},${j + 1}</sub>)
      = (${Array.from(dt.slice(0, 6), f).join(" + ")}${dt.length > 6 ? " + …" : ""}) · ${f(r.fprime)}
      ${r.mask === null ? "" : `· M[${l}]<sub>${k + 1},${j + 1}</sub>/keep`}
      = ${f(r.dA)} · ${f(r.fprime)}${r.mask === null ? "" : ` · ${f(r.mask)}`} = ${f(r.delta_kj)}   (page 7, example ${k + 1})</p>`;
  }
  const [I, J] = [i + 1, j + 1];
  $("chain").innerHTML = `<p>W[${l}]<sub>${I},${J}</sub> = ${f(r.weight)}.
    dJ/dW[${l}]<sub>${I},${J}</sub> = Σ<sub>k</sub> A[${l - 1}]<sub>k,${I}</sub> delta[${l}]<sub>k,${J}</sub>, k over the examples (page 7: A[${l - 1}]<sup>T</sup> delta[${l}]):</p>
    <table><tr><th>k</th><th>A[${l - 1}]_k,${I}</th><th>delta[${l}]_k,${J}</th><th>product</th></tr>${rows}</table>
    <p>sum of the terms <b id="chain-sum">${f(r.sum)}</b> · engine (MLP.loss_and_grads) <b id="chain-engine">${f(r.engine)}</b>
    · centred finite difference <b id="chain-fd">${f(r.finite_difference)}</b>
    <span class="${rel < 1e-6 ? "ok" : "bad"}">(relative error ${rel.toExponential(1)})</span></p>
    <p>the next step changes this weight by <b>${f(r.next_change)}</b></p>${hidden}`;
}

// ------------------------------------------------------------------ actions
function afterState(s) {
  state = Object.assign(state || {}, s);
  drawTraining();
  // Not at every frame while playing: Chrome throttles frequent history.replaceState.
  if (!playing) writeHash();
}
async function reset(config, steps) {
  showError(null);
  afterState(await api("POST", "/api/reset", { config }));
  fillForm(state.config);
  $("example").max = state.batch_size;
  for (let left = steps; left > 0; ) {  // the server trains for a bounded time per request
    const r = await api("POST", "/api/step", { steps: Math.min(left, 1000) });
    left -= r.steps_taken;
    afterState(r);
  }
  await showMatrices();
}
async function step(n) {
  const t0 = performance.now();
  afterState(await api("POST", "/api/step", { steps: n }));
  stats.stepMs.push(performance.now() - t0);  // round trip and redraw
}
async function play() {
  playing = !playing;
  $("play").textContent = playing ? "Pause" : "Play";
  matricesOn = !playing;  // the matrices redraw when training pauses
  let last = performance.now();
  while (playing) {
    try {
      await step(Number($("per-frame").value));
      if (state.step % 10 === 0) await showGraph();  // the units change slowly: not every frame
    } catch (e) { showError(e); playing = false; }
    // No wait for an animation frame: the browser paints between the fetches anyway,
    // and waiting would cap the step rate at the display's frame rate.
    const now = performance.now();
    stats.frameMs.push(now - last);
    last = now;
  }
  $("play").textContent = "Play";
  matricesOn = true;
  drawTraining();
  writeHash();
  await showMatrices();
}
async function main() {
  options = await api("GET", "/api/options");
  for (const k of ["data", "activation", "optimizer", "init"]) {
    $("config").elements[k].replaceChildren(...options[k].map((v) => new Option(v, v)));
  }
  const fromUrl = readHash();
  if (fromUrl) await reset(fromUrl[0], fromUrl[1]);
  else {
    afterState(await api("GET", "/api/state"));
    fillForm(state.config);
    await showMatrices();
  }
  $("config").addEventListener("submit", (e) => { e.preventDefault(); reset(configFromForm(), 0).catch(showError); });
  $("play").addEventListener("click", () => play().catch(showError));
  $("step").addEventListener("click", () => step(1).then(showMatrices).catch(showError));
  $("form").addEventListener("change", () => showMatrices().catch(showError));
  $("example").addEventListener("change", () => showMatrices().catch(showError));
  $("graph-mode").addEventListener("change", () => showGraph().catch(showError));
  $("chain-go").addEventListener("click", () => showChain().catch(showError));
  $("export").addEventListener("click", (e) => { e.preventDefault(); location.href = `/api/export?token=${TOKEN}`; });
  $("status").textContent = "ready";
  document.body.dataset.ready = "1";
}
main().catch(showError);
