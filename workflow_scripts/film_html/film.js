// The explorable embedding film (workflow_scripts/film_html). Reads the inlined metadata, payload and
// thumbnail sprite, then draws the points with one WebGL draw call per frame (canvas 2D when WebGL is
// unavailable), an overlay canvas for top-k marks, hover and pinned trajectories, and uPlot curves.
// window.filmDebug is a read-only hook for tests.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const meta = JSON.parse($("film-meta").textContent);
  const S = meta.steps.length, N = meta.n;
  const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const TAB20 = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd", "#c5b0d5",
    "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5"];
  const PIN_COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#9a6324", "#800000"];
  const RAMP = [[252, 253, 191], [252, 137, 97], [183, 55, 121], [81, 18, 124], [0, 0, 4]]; // magma, light -> dark
  const debug = { errors: [], frameTimes: [], workTimes: [] }; // rAF intervals while moving; script time per frame
  window.addEventListener("error", (e) => debug.errors.push(String(e.message)));

  // --- data ---------------------------------------------------------------------------------------------
  function fromBase64(text) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
    const bin = atob(text), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  async function gunzip(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).arrayBuffer();
  }
  const hex = (h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16));
  const classRGB = meta.class_names.map((_, k, all) => all.length <= 10 ? hex(TAB10[k]) : all.length <= 20 ? hex(TAB20[k])
    : hslRGB((k * 137.508) % 360, 0.65, 0.5));
  function hslRGB(h, s, l) {
    const f = (n) => { const k = (n + h / 30) % 12; return l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1)); };
    return [f(0), f(8), f(4)].map((v) => Math.round(v * 255));
  }
  function ramp(v) { // v in [0, 1] -> rgb along RAMP
    const x = Math.max(0, Math.min(1, v)) * (RAMP.length - 1), i = Math.min(RAMP.length - 2, Math.floor(x)), a = x - i;
    return [0, 1, 2].map((c) => Math.round(RAMP[i][c] * (1 - a) + RAMP[i + 1][c] * a));
  }
  const css = (rgb, alpha = 1) => `rgba(${rgb[0]},${rgb[1]},${rgb[2]},${alpha})`;
  const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));

  let A = {}; // the payload's arrays
  let XY; // Float32Array [S * N * 2], dequantised data coordinates
  let sprite = null;
  const idIndex = new Map(meta.ids.map((id, i) => [id, i]));

  // --- state --------------------------------------------------------------------------------------------
  const state = { t: 0, from: 0, target: 0, animStart: 0, animMs: 0, playing: false, speed: 2, colour: "class",
    hidden: new Set(), pins: [], hover: -1, lastFrame: null, colourStep: -1, dirty: true, mouse: null };
  const screen = new Float32Array(2 * N); // current CSS-pixel positions
  const colours = new Uint8Array(4 * N);
  let camera = { cx: 0, cy: 0, scale: 1, zoom: 1, W: 1, H: 1 };

  // --- renderer: WebGL points, canvas 2D fallback ------------------------------------------------------
  function webglRenderer(canvas) {
    const gl = canvas.getContext("webgl", { antialias: false, alpha: false }); // opaque: nothing to blend when composited
    if (!gl) return null;
    const compile = (type, src) => {
      const s = gl.createShader(type); gl.shaderSource(s, src); gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
      return s;
    };
    const prog = gl.createProgram();
    gl.attachShader(prog, compile(gl.VERTEX_SHADER,
      "attribute vec2 p; attribute vec4 c; uniform vec2 size; uniform float px; varying vec4 v;" +
      "void main(){ gl_Position = vec4(p.x / size.x * 2.0 - 1.0, 1.0 - p.y / size.y * 2.0, 0.0, 1.0);" +
      " gl_PointSize = c.a > 0.0 ? px : 0.0; v = c; }"));
    gl.attachShader(prog, compile(gl.FRAGMENT_SHADER,
      "precision mediump float; varying vec4 v; void main(){ vec2 q = gl_PointCoord - 0.5; float r = dot(q, q);" +
      " if (r > 0.25) discard; gl_FragColor = vec4(v.rgb, v.a * (r > 0.16 ? 0.6 : 1.0)); }"));
    gl.linkProgram(prog);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog));
    gl.useProgram(prog);
    const posBuf = gl.createBuffer(), colBuf = gl.createBuffer();
    const lp = gl.getAttribLocation(prog, "p"), lc = gl.getAttribLocation(prog, "c");
    const uSize = gl.getUniformLocation(prog, "size"), uPx = gl.getUniformLocation(prog, "px");
    gl.enable(gl.BLEND); gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    return {
      name: "webgl",
      draw(pos, col, colChanged, W, H, px) {
        const dpr = window.devicePixelRatio || 1;
        gl.viewport(0, 0, canvas.width, canvas.height);
        gl.clearColor(1, 1, 1, 1); gl.clear(gl.COLOR_BUFFER_BIT);
        gl.uniform2f(uSize, W, H); gl.uniform1f(uPx, px * dpr);
        gl.bindBuffer(gl.ARRAY_BUFFER, posBuf); gl.bufferData(gl.ARRAY_BUFFER, pos, gl.DYNAMIC_DRAW);
        gl.enableVertexAttribArray(lp); gl.vertexAttribPointer(lp, 2, gl.FLOAT, false, 0, 0);
        gl.bindBuffer(gl.ARRAY_BUFFER, colBuf);
        if (colChanged) gl.bufferData(gl.ARRAY_BUFFER, col, gl.DYNAMIC_DRAW);
        gl.enableVertexAttribArray(lc); gl.vertexAttribPointer(lc, 4, gl.UNSIGNED_BYTE, true, 0, 0);
        gl.drawArrays(gl.POINTS, 0, N);
      },
    };
  }
  function canvasRenderer(canvas) {
    const g = canvas.getContext("2d");
    return {
      name: "canvas2d",
      draw(pos, col, colChanged, W, H, px) {
        const dpr = window.devicePixelRatio || 1;
        g.setTransform(dpr, 0, 0, dpr, 0, 0);
        g.fillStyle = "#fff"; g.fillRect(0, 0, W, H);
        let last = -1;
        for (let i = 0; i < N; i++) {
          if (col[4 * i + 3] === 0) continue;
          const key = (col[4 * i] << 16) | (col[4 * i + 1] << 8) | col[4 * i + 2];
          if (key !== last) { g.fillStyle = `rgb(${col[4 * i]},${col[4 * i + 1]},${col[4 * i + 2]})`; last = key; }
          g.fillRect(pos[2 * i] - px / 2, pos[2 * i + 1] - px / 2, px, px);
        }
      },
    };
  }

  const pointsCanvas = $("points"), overlay = $("overlay"), og = overlay.getContext("2d");
  let renderer = null;
  const pointPx = Math.max(3, Math.min(8, 2 + 6 * Math.sqrt(300 / Math.max(N, 1))));

  function resize() {
    const r = $("plot").getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    for (const c of [pointsCanvas, overlay]) { c.width = Math.round(r.width * dpr); c.height = Math.round(r.height * dpr); }
    camera.W = r.width; camera.H = r.height;
    state.colourStep = -1; state.dirty = true;
  }

  // --- per frame ---------------------------------------------------------------------------------------
  const lerp = (a, b, t) => a + (b - a) * t;
  function setCamera(t) {
    const s0 = Math.floor(t), s1 = Math.min(s0 + 1, S - 1), a = t - s0;
    const L0 = meta.limits[s0], L1 = meta.limits[s1];
    const x0 = lerp(L0[0], L1[0], a), x1 = lerp(L0[1], L1[1], a), y0 = lerp(L0[2], L1[2], a), y1 = lerp(L0[3], L1[3], a);
    const pad = 12;
    camera.cx = (x0 + x1) / 2; camera.cy = (y0 + y1) / 2;
    camera.scale = Math.min((camera.W - 2 * pad) / Math.max(x1 - x0, 1e-12), (camera.H - 2 * pad) / Math.max(y1 - y0, 1e-12));
    const z0 = meta.zoom[s0], z1 = meta.zoom[s1];
    camera.zoom = z0 === null || z1 === null ? 1 : lerp(z0, z1, a);
  }
  const toScreenX = (x) => camera.W / 2 + (x - camera.cx) * camera.scale;
  const toScreenY = (y) => camera.H / 2 - (y - camera.cy) * camera.scale;

  function positionsAt(t) {
    const s0 = Math.floor(t), s1 = Math.min(s0 + 1, S - 1), a = t - s0, A0 = s0 * 2 * N, A1 = s1 * 2 * N;
    const cx = camera.W / 2 - camera.cx * camera.scale, cy = camera.H / 2 + camera.cy * camera.scale, k = camera.scale;
    for (let j = 0; j < 2 * N; j += 2) {
      screen[j] = cx + (XY[A0 + j] + (XY[A1 + j] - XY[A0 + j]) * a) * k;
      screen[j + 1] = cy - (XY[A0 + j + 1] + (XY[A1 + j + 1] - XY[A0 + j + 1]) * a) * k;
    }
  }

  const currentStep = () => Math.max(0, Math.min(S - 1, Math.round(state.t)));
  function colourOf(i, s) {
    const label = A.labels[i];
    switch (state.colour) {
      case "pred": return A.pred ? classRGB[A.pred[s * N + i]] || [120, 120, 120] : [160, 160, 160];
      case "correct": return !A.pred ? [160, 160, 160] : A.pred[s * N + i] === label ? [60, 160, 80] : [220, 40, 40];
      case "ood": return ramp(1 - (oodScore(s, i) - oodMin) / oodSpan);
      case "issue": {
        const r = A.issue_rank ? A.issue_rank[s * N + i] : 0;
        return r === 0 ? [205, 205, 205] : ramp(1 - Math.min(1, (r - 1) / Math.max(1, issueCount[s] - 1)) * 0.75);
      }
      default: return classRGB[label];
    }
  }
  let issueCount = [];
  function updateColours(s) {
    for (let i = 0; i < N; i++) {
      const rgb = colourOf(i, s);
      colours[4 * i] = rgb[0]; colours[4 * i + 1] = rgb[1]; colours[4 * i + 2] = rgb[2];
      colours[4 * i + 3] = state.hidden.has(A.labels[i]) ? 0 : 215;
    }
    state.colourStep = s;
  }

  function drawOverlay(s) {
    const dpr = window.devicePixelRatio || 1;
    og.setTransform(dpr, 0, 0, dpr, 0, 0);
    og.clearRect(0, 0, camera.W, camera.H);
    og.font = "bold 11px system-ui, sans-serif";
    og.lineWidth = 1.5;
    for (let r = 0; r < meta.top_k; r++) { // top-k outliers of the current checkpoint
      const i = A.top[s * meta.top_k + r];
      if (state.hidden.has(A.labels[i])) continue;
      const x = screen[2 * i], y = screen[2 * i + 1];
      og.strokeStyle = "#000"; og.beginPath(); og.arc(x, y, pointPx + 3, 0, 2 * Math.PI); og.stroke();
      og.fillStyle = "#000"; og.fillText(String(r + 1), x + pointPx + 3, y - pointPx - 1);
    }
    state.pins.forEach((i, p) => { // pinned images: trajectory over all checkpoints, vertex per checkpoint
      const colour = PIN_COLOURS[p % PIN_COLOURS.length];
      og.strokeStyle = colour; og.fillStyle = colour; og.lineWidth = 1.5;
      og.beginPath();
      for (let k = 0; k < S; k++) {
        const x = toScreenX(XY[k * 2 * N + 2 * i]), y = toScreenY(XY[k * 2 * N + 2 * i + 1]);
        if (k === 0) og.moveTo(x, y); else og.lineTo(x, y);
      }
      og.stroke();
      for (let k = 0; k < S; k++) {
        const x = toScreenX(XY[k * 2 * N + 2 * i]), y = toScreenY(XY[k * 2 * N + 2 * i + 1]);
        og.beginPath(); og.arc(x, y, k === 0 ? 3.5 : 2, 0, 2 * Math.PI); og.fill();
      }
      const x = screen[2 * i], y = screen[2 * i + 1];
      og.lineWidth = 3; og.beginPath(); og.arc(x, y, pointPx + 5, 0, 2 * Math.PI); og.stroke();
      og.fillText(meta.ids[i], x + pointPx + 7, y + 4);
    });
    if (state.hover >= 0) {
      const i = state.hover;
      og.strokeStyle = "#000"; og.lineWidth = 2;
      og.beginPath(); og.arc(screen[2 * i], screen[2 * i + 1], pointPx + 4, 0, 2 * Math.PI); og.stroke();
    }
  }

  function render(now) {
    if (state.playing) {
      const dt = state.lastFrame === null ? 0 : (now - state.lastFrame) / 1000;
      state.t = Math.min(S - 1, state.t + dt * state.speed);
      if (state.t >= S - 1) setPlaying(false);
      state.target = state.t;
      state.dirty = true;
    } else if (state.t !== state.target) {
      const a = Math.max(0, Math.min(1, (now - state.animStart) / state.animMs)); // rAF time can precede the event
      state.t = a >= 1 ? state.target : lerp(state.from, state.target, a);
      state.dirty = true;
    }
    if (state.dirty) {
      if (state.lastFrame !== null && (state.playing || state.t !== state.target)) {
        debug.frameTimes.push(now - state.lastFrame);
        if (debug.frameTimes.length > 2000) debug.frameTimes.shift();
      }
      const w0 = performance.now(), s = currentStep();
      setCamera(state.t);
      positionsAt(state.t);
      const colChanged = state.colourStep !== s;
      if (colChanged) updateColours(s);
      renderer.draw(screen, colours, colChanged, camera.W, camera.H, pointPx);
      drawOverlay(s);
      if (state.mouse) pick(state.mouse[0], state.mouse[1]);
      updatePanel(s);
      if (state.playing) { debug.workTimes.push(performance.now() - w0); if (debug.workTimes.length > 2000) debug.workTimes.shift(); }
      state.dirty = false;
      state.lastFrame = now;
    } else {
      state.lastFrame = null;
    }
    requestAnimationFrame(render);
  }

  // --- interaction -------------------------------------------------------------------------------------
  function goTo(index, ms = 350) {
    index = Math.max(0, Math.min(S - 1, index));
    setPlaying(false);
    state.from = state.t; state.target = index; state.animStart = performance.now();
    state.animMs = Math.max(1, ms); state.dirty = true;
  }
  function jump(index) { // immediate, no animation (tests, initial view)
    setPlaying(false);
    state.t = state.from = state.target = Math.max(0, Math.min(S - 1, index));
    state.dirty = true;
  }
  function setPlaying(on) {
    if (on && state.t >= S - 1) state.t = state.target = 0;
    state.playing = on;
    $("play").textContent = on ? "❚❚ pause" : "▶ play";
  }
  function pick(mx, my) {
    let best = -1, bestD = 10 * 10;
    for (let i = 0; i < N; i++) {
      if (colours[4 * i + 3] === 0) continue;
      const dx = screen[2 * i] - mx, dy = screen[2 * i + 1] - my, d = dx * dx + dy * dy;
      if (d <= bestD) { bestD = d; best = i; } // later points are drawn on top
    }
    if (best !== state.hover) { state.hover = best; state.dirty = true; }
    showTooltip();
  }
  function showTooltip() {
    const tip = $("tooltip"), i = state.hover;
    if (i < 0 || !state.mouse) { tip.hidden = true; return; }
    const s = currentStep(), label = A.labels[i];
    const lines = [`<b>${escapeHTML(meta.ids[i])}</b>`, `label: ${escapeHTML(meta.class_names[label])}`];
    if (A.pred) {
      const p = A.pred[s * N + i];
      lines.push(`predicted: ${escapeHTML(meta.class_names[p] ?? String(p))} (${fmt(A.prob[s * N + i] / 255, 2)})` +
        (p === label ? "" : " ✗"));
    }
    lines.push(`OOD score: ${fmtScore(oodScore(s, i))}`, `OOD rank: ${rankText(A.ood_rank[s * N + i])} of ${meta.n_total}`);
    if (A.issue_rank) lines.push(`label issue: ${A.issue_rank[s * N + i] ? "#" + rankText(A.issue_rank[s * N + i]) : "no"}`);
    lines.push(`<span style="color:#666">step ${meta.steps[s]} · click to pin</span>`);
    $("tip-text").innerHTML = lines.join("<br>");
    drawThumb($("tip-thumb"), i);
    const [mx, my] = state.mouse, r = $("plot").getBoundingClientRect();
    tip.hidden = false;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    let x = r.left + mx + 14, y = r.top + my + 14;
    if (x + w > window.innerWidth) x = r.left + mx - w - 14;
    if (y + h > window.innerHeight) y = r.top + my - h - 14;
    tip.style.left = `${Math.max(0, x)}px`; tip.style.top = `${Math.max(0, y)}px`;
  }
  const rankText = (r) => (r >= 65535 ? "≥65535" : String(r));
  const oodScore = (s, i) => Math.exp(meta.ood_log[0] + A.ood[s * N + i] * meta.ood_log[1]);
  const oodMin = Math.exp(meta.ood_log[0]), oodSpan = Math.max(1e-12, Math.exp(meta.ood_log[0] + 65535 * meta.ood_log[1]) - oodMin);
  const fmtScore = (v) => (v >= 1e-3 ? v.toFixed(3) : v.toExponential(2));
  const escapeHTML = (t) => String(t).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  function drawThumb(canvas, i) {
    const c = meta.sprite.cell, col = i % meta.sprite.cols, row = Math.floor(i / meta.sprite.cols);
    if (canvas.width !== c) { canvas.width = c; canvas.height = c; }
    const g = canvas.getContext("2d", { willReadFrequently: true });
    g.clearRect(0, 0, c, c);
    if (sprite) g.drawImage(sprite, col * c, row * c, c, c, 0, 0, c, c);
    canvas.dataset.index = String(i);
  }
  function togglePin(i) {
    const k = state.pins.indexOf(i);
    if (k >= 0) state.pins.splice(k, 1); else state.pins.push(i);
    renderPins(); state.dirty = true;
  }
  function renderPins() {
    const box = $("pins");
    box.innerHTML = state.pins.length ? "<b>pinned</b> (click to unpin): " : "";
    state.pins.forEach((i, p) => {
      const el = document.createElement("span");
      el.className = "pin"; el.style.borderColor = PIN_COLOURS[p % PIN_COLOURS.length]; el.textContent = meta.ids[i];
      el.onclick = () => togglePin(i);
      box.appendChild(el);
    });
  }
  function searchPin() {
    const q = $("search").value.trim();
    let i = idIndex.get(q);
    if (i === undefined) for (const [id, k] of idIndex) if (id.toLowerCase() === q.toLowerCase()) { i = k; break; }
    $("search-msg").textContent = q && i === undefined ? `no image '${q}' among the ${N} shown` : "";
    if (i !== undefined && !state.pins.includes(i)) togglePin(i);
  }

  // --- side panel: values, curves, legend ---------------------------------------------------------------
  const METRICS = [["head_accuracy", "head acc"], ["knn_accuracy", "kNN acc"], ["trustworthiness", "trustworthiness"]];
  const shownMetrics = METRICS.filter(([k]) => meta.metrics[k] && meta.metrics[k].some((v) => v !== null));
  const otherMetrics = Object.keys(meta.metrics).filter((k) => !METRICS.some(([m]) => m === k) && meta.metrics[k].some((v) => v !== null));
  let plots = [];
  function lossAt(step) {
    const xs = meta.loss.steps; let best = -1;
    for (let j = 0; j < xs.length; j++) if (xs[j] !== null && xs[j] <= step) best = j;
    return best < 0 ? null : { step: xs[best], value: meta.loss.values[best] };
  }
  let panelStep = -1;
  function updatePanel(s) {
    $("step-badge").textContent = `step ${meta.steps[s]}`;
    const z = camera.zoom;
    $("zoom-cue").textContent = z && Math.abs(z - 1) > 0.05 ? `zoom ×${z.toFixed(1)}` : "";
    for (const u of plots) u.stepLine.style.left = `${u.valToPos(stepAtT(), "x")}px`;
    if (s === panelStep) return;
    panelStep = s;
    $("slider").value = String(Math.round(state.target)); // where it is going: no tug-of-war with a drag
    $("step-readout").textContent = `step ${meta.steps[s]} · checkpoint ${s + 1} of ${S}`;
    const loss = lossAt(meta.steps[s]);
    const rows = [["loss", loss ? `${fmt(loss.value, 4)}` + (loss.step !== meta.steps[s] ? ` (step ${loss.step})` : "") : "–"]];
    for (const [k, label] of shownMetrics) rows.push([label, fmt(meta.metrics[k][s])]);
    for (const k of otherMetrics) rows.push([k.replace(/_/g, " "), fmt(meta.metrics[k][s])]);
    const table = $("values");
    table.innerHTML = "";
    for (let r = 0; r < rows.length; r += 2) {
      const tr = table.insertRow();
      for (const [name, value] of rows.slice(r, r + 2)) {
        tr.insertCell().textContent = name;
        const td = tr.insertCell(); td.textContent = value; td.className = "v"; td.dataset.name = name;
      }
    }
    if (state.hover >= 0) showTooltip();
  }
  function makeCurve(el, title, xs, series, height) {
    if (typeof uPlot === "undefined" || !xs.length) { el.textContent = `${title}: no data`; return; }
    const u = new uPlot({
      title, width: 400, height, legend: { show: true, live: false },
      scales: { x: { time: false, range: [meta.steps[0], meta.steps[S - 1]] } },
      axes: [{ size: 22, font: "10px sans-serif" }, { size: 40, font: "10px sans-serif" }],
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 1.5, spanGaps: true }))],
    }, [xs, ...series.map((s) => s.values)], el);
    const line = document.createElement("div"); // the current step: a positioned div, so playing redraws no canvas
    line.className = "step-line";
    u.over.appendChild(line);
    u.stepLine = line;
    u.over.addEventListener("click", () => {
      const step = u.posToVal(u.cursor.left, "x");
      let best = 0;
      meta.steps.forEach((v, k) => { if (Math.abs(v - step) < Math.abs(meta.steps[best] - step)) best = k; });
      goTo(best);
    });
    plots.push(u);
  }
  const stepAtT = () => { const s0 = Math.floor(state.t), s1 = Math.min(s0 + 1, S - 1); return lerp(meta.steps[s0], meta.steps[s1], state.t - s0); };
  function buildLegend() {
    const box = $("legend");
    box.innerHTML = "";
    meta.class_names.forEach((name, k) => {
      const el = document.createElement("span");
      el.className = "item" + (state.hidden.has(k) ? " off" : "");
      el.dataset.class = String(k);
      el.innerHTML = `<span class="swatch" style="background:${css(classRGB[k])}"></span>${escapeHTML(name)}`;
      el.title = "click to hide / show this class";
      el.onclick = () => { state.hidden.has(k) ? state.hidden.delete(k) : state.hidden.add(k); state.colourStep = -1; state.dirty = true; buildLegend(); };
      box.appendChild(el);
    });
  }
  function buildModeKey() {
    const keys = {
      class: "colour: true class (click a class above to hide it)",
      pred: "colour: the checkpoint's predicted class",
      correct: `<span class="swatch" style="background:rgb(60,160,80)"></span>correct <span class="swatch" style="background:rgb(220,40,40)"></span>wrong (head prediction)`,
      ood: `colour: OOD score, <span class="swatch" style="background:${css(ramp(1))}"></span>low = outlying … <span class="swatch" style="background:${css(ramp(0))}"></span>high`,
      issue: `colour: label-issue rank, <span class="swatch" style="background:${css(ramp(1))}"></span>most severe … <span class="swatch" style="background:rgb(205,205,205)"></span>not flagged`,
    };
    $("mode-key").innerHTML = keys[state.colour];
  }
  function buildTicks() {
    const box = $("ticks"), every = Math.max(1, Math.ceil(S / 12));
    for (let k = 0; k < S; k += every) {
      const el = document.createElement("span");
      el.style.left = `${S > 1 ? (100 * k) / (S - 1) : 0}%`; el.textContent = String(meta.steps[k]);
      box.appendChild(el);
    }
  }

  // --- start -------------------------------------------------------------------------------------------
  async function start() {
    $("layout-note").textContent = meta.layout_note || "";
    $("subsample-note").textContent = meta.note || "";
    const raw = await gunzip(fromBase64($("film-data").textContent.trim()));
    for (const [name, d] of Object.entries(meta.arrays)) A[name] = new globalThis[`${d.type}Array`](raw, d.offset, d.length);
    XY = new Float32Array(S * N * 2);
    for (let s = 0; s < S; s++) {
      const [[x0, kx], [y0, ky]] = meta.dequant[s], base = s * 2 * N;
      for (let j = 0; j < 2 * N; j += 2) { XY[base + j] = x0 + A.xy[base + j] * kx; XY[base + j + 1] = y0 + A.xy[base + j + 1] * ky; }
    }
    issueCount = Array.from({ length: S }, (_, s) => { let m = 0; if (A.issue_rank) for (let i = 0; i < N; i++) m = Math.max(m, A.issue_rank[s * N + i]); return m; });
    const img = new Image();
    img.src = `data:image/webp;base64,${$("film-sprite").textContent.trim()}`;
    await img.decode();
    sprite = img;

    try { renderer = webglRenderer(pointsCanvas); } catch (e) { console.warn("WebGL failed, using canvas 2D:", e); renderer = null; }
    if (!renderer) renderer = canvasRenderer(pointsCanvas);
    const slider = $("slider");
    slider.max = String(S - 1);
    slider.addEventListener("input", () => goTo(Number(slider.value)));
    $("play").onclick = () => setPlaying(!state.playing);
    $("speed").onchange = (e) => { state.speed = Number(e.target.value); };
    const colour = $("colour");
    if (!A.pred) for (const v of ["pred", "correct"]) colour.querySelector(`option[value=${v}]`).disabled = true;
    if (!A.issue_rank) colour.querySelector("option[value=issue]").disabled = true;
    colour.onchange = () => { state.colour = colour.value; state.colourStep = -1; state.dirty = true; buildModeKey(); };
    $("search").addEventListener("keydown", (e) => { if (e.key === "Enter") searchPin(); });
    $("pin-search").onclick = searchPin;
    $("clear-pins").onclick = () => { state.pins = []; renderPins(); state.dirty = true; };
    overlay.addEventListener("mousemove", (e) => { const r = overlay.getBoundingClientRect(); state.mouse = [e.clientX - r.left, e.clientY - r.top]; pick(...state.mouse); });
    overlay.addEventListener("mouseleave", () => { state.mouse = null; state.hover = -1; state.dirty = true; showTooltip(); });
    overlay.addEventListener("click", () => { if (state.hover >= 0) togglePin(state.hover); });
    window.addEventListener("keydown", (e) => {
      if ((e.target instanceof HTMLInputElement && e.target.type === "search") || e.target instanceof HTMLSelectElement) return;
      if (e.key === "ArrowRight" || e.key === "ArrowUp") { goTo(Math.round(state.target) + 1); e.preventDefault(); }
      else if (e.key === "ArrowLeft" || e.key === "ArrowDown") { goTo(Math.round(state.target) - 1); e.preventDefault(); }
      else if (e.key === "Home") goTo(0, 600);
      else if (e.key === "End") goTo(S - 1, 600);
      else if (e.key === " ") { setPlaying(!state.playing); e.preventDefault(); }
    });
    window.addEventListener("resize", resize);
    makeCurve($("loss-curve"), "training loss", meta.loss.steps, [{ label: "loss", colour: "#444", values: meta.loss.values }], 110);
    const metricColours = ["#1f77b4", "#2ca02c", "#9467bd"];
    makeCurve($("metric-curve"), "metrics per checkpoint", meta.steps,
      shownMetrics.map(([k, label], j) => ({ label, colour: metricColours[j], values: meta.metrics[k] })), 130);
    buildLegend(); buildModeKey(); buildTicks(); resize();
    $("loading").remove();
    jump(0);
    requestAnimationFrame(render);
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    debug.ready = true;
  }

  // --- read-only hook for tests ------------------------------------------------------------------------
  const median = (x) => { const y = x.slice().sort((a, b) => a - b); return y.length ? y[Math.floor(y.length / 2)] : null; };
  window.filmDebug = {
    get ready() { return !!debug.ready; },
    get errors() { return debug.errors.slice(); },
    get renderer() { return renderer && renderer.name; },
    get step() { return currentStep(); },
    get t() { return state.t; },
    get hover() { return state.hover; },
    get pins() { return state.pins.slice(); },
    get settled() { return !state.playing && state.t === state.target && !state.dirty; },
    info() { return { steps: meta.steps.slice(), n: N, n_total: meta.n_total, note: meta.note, ids: meta.ids.slice(), sprite: meta.sprite }; },
    jump(i) { jump(i); },
    play(speed) { if (speed) state.speed = speed; setPlaying(true); },
    pause() { setPlaying(false); },
    positions(s = currentStep()) { // data coordinates the page holds for checkpoint s
      const x = new Array(N), y = new Array(N);
      for (let i = 0; i < N; i++) { x[i] = XY[s * 2 * N + 2 * i]; y[i] = XY[s * 2 * N + 2 * i + 1]; }
      return { x, y };
    },
    mapping() { // data -> client pixels now: clientX = left + W/2 + (x - cx) * scale; clientY = top + H/2 - (y - cy) * scale
      const r = overlay.getBoundingClientRect();
      return { left: r.left, top: r.top, W: camera.W, H: camera.H, cx: camera.cx, cy: camera.cy, scale: camera.scale, zoom: camera.zoom };
    },
    colour(i) { return Array.from(colours.subarray(4 * i, 4 * i + 4)); }, // rgba as drawn; alpha 0 = hidden
    screen(i) { const r = overlay.getBoundingClientRect(); return [r.left + screen[2 * i], r.top + screen[2 * i + 1]]; },
    trajectory(i) { // the vertices drawn for a pinned image, client pixels, one per checkpoint
      if (!state.pins.includes(i)) return [];
      const r = overlay.getBoundingClientRect();
      return meta.steps.map((_, k) => [r.left + toScreenX(XY[k * 2 * N + 2 * i]), r.top + toScreenY(XY[k * 2 * N + 2 * i + 1])]);
    },
    frameStats() {
      const f = debug.frameTimes;
      return { frames: f.length, median: median(f), p95: f.length ? f.slice().sort((a, b) => a - b)[Math.floor(f.length * 0.95)] : null,
        mean: f.length ? f.reduce((a, b) => a + b, 0) / f.length : null, medianWork: median(debug.workTimes) };
    },
    resetFrameStats() { debug.frameTimes.length = 0; debug.workTimes.length = 0; },
  };
  start().catch((e) => { debug.errors.push(String(e && e.stack || e)); console.error(e); $("loading").textContent = `could not load the film: ${e}`; });
})();
