// What the film page (film.js, one run) and the comparison page (compare.js, runs side by side) share; the
// builder inlines it before either. Decoding the payload and the thumbnail sprite, colours, the WebGL points
// (canvas 2D when WebGL is unavailable), a Panel (one run's points, camera, overlay and picking in one pair
// of canvases), the timeline (slider, play/pause, speed, keys, the animation loop), uPlot curves with a
// cursor, the class legend, pins and the hover card's placement.
const FilmCore = (function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const TAB20 = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd", "#c5b0d5",
    "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5"];
  const PIN_COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#9a6324", "#800000"];
  const RAMP = [[252, 253, 191], [252, 137, 97], [183, 55, 121], [81, 18, 124], [0, 0, 4]]; // magma, light -> dark

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
  async function decodePayload(elementId, index) { // {name: typed array view} of the inlined gzip + base64 payload
    const raw = await gunzip(fromBase64($(elementId).textContent.trim()));
    const A = {};
    for (const [name, d] of Object.entries(index)) A[name] = new globalThis[`${d.type}Array`](raw, d.offset, d.length);
    return A;
  }
  function dequantise(q, dequant, N) { // uint16 [S, N, 2] -> Float32Array of data coordinates
    const XY = new Float32Array(dequant.length * N * 2);
    dequant.forEach(([[x0, kx], [y0, ky]], s) => {
      const base = s * 2 * N;
      for (let j = 0; j < 2 * N; j += 2) { XY[base + j] = x0 + q[base + j] * kx; XY[base + j + 1] = y0 + q[base + j + 1] * ky; }
    });
    return XY;
  }
  async function loadSprite(elementId) {
    const img = new Image();
    img.src = `data:image/webp;base64,${$(elementId).textContent.trim()}`;
    await img.decode();
    return img;
  }
  function drawThumb(canvas, sprite, cells, i) { // cells: the sprite's metadata {cell, cols}
    const c = cells.cell, col = i % cells.cols, row = Math.floor(i / cells.cols);
    if (canvas.width !== c) { canvas.width = c; canvas.height = c; }
    const g = canvas.getContext("2d", { willReadFrequently: true });
    g.clearRect(0, 0, c, c);
    if (sprite) g.drawImage(sprite, col * c, row * c, c, c, 0, 0, c, c);
    canvas.dataset.index = String(i);
  }

  // --- colours and text ---------------------------------------------------------------------------------
  const hex = (h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16));
  function hslRGB(h, s, l) {
    const f = (n) => { const k = (n + h / 30) % 12; return l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1)); };
    return [f(0), f(8), f(4)].map((v) => Math.round(v * 255));
  }
  const classColours = (names) => names.map((_, k) => names.length <= 10 ? hex(TAB10[k]) : names.length <= 20 ? hex(TAB20[k])
    : hslRGB((k * 137.508) % 360, 0.65, 0.5));
  function ramp(v) { // v in [0, 1] -> rgb along RAMP
    const x = Math.max(0, Math.min(1, v)) * (RAMP.length - 1), i = Math.min(RAMP.length - 2, Math.floor(x)), a = x - i;
    return [0, 1, 2].map((c) => Math.round(RAMP[i][c] * (1 - a) + RAMP[i + 1][c] * a));
  }
  const css = (rgb, alpha = 1) => `rgba(${rgb[0]},${rgb[1]},${rgb[2]},${alpha})`;
  const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));
  const fmtScore = (v) => (v >= 1e-3 ? v.toFixed(3) : v.toExponential(2));
  const rankText = (r) => (r >= 65535 ? "≥65535" : String(r));
  const escapeHTML = (t) => String(t).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const lerp = (a, b, t) => a + (b - a) * t;
  const median = (x) => { const y = x.slice().sort((a, b) => a - b); return y.length ? y[Math.floor(y.length / 2)] : null; };
  const oodScale = (ood_log) => [Math.exp(ood_log[0]), Math.exp(ood_log[0] + 65535 * ood_log[1])]; // [lowest, highest] score
  function lossAt(loss, step) { // the last logged loss at or before `step`
    const xs = loss.steps; let best = -1;
    for (let j = 0; j < xs.length; j++) if (xs[j] !== null && xs[j] <= step) best = j;
    return best < 0 ? null : { step: xs[best], value: loss.values[best] };
  }

  // --- renderers: WebGL points, canvas 2D fallback ------------------------------------------------------
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
    const clear = () => { gl.viewport(0, 0, canvas.width, canvas.height); gl.clearColor(1, 1, 1, 1); gl.clear(gl.COLOR_BUFFER_BIT); };
    return {
      name: "webgl",
      clear,
      draw(pos, col, colChanged, W, H, px) {
        const dpr = window.devicePixelRatio || 1;
        clear();
        gl.uniform2f(uSize, W, H); gl.uniform1f(uPx, px * dpr);
        gl.bindBuffer(gl.ARRAY_BUFFER, posBuf); gl.bufferData(gl.ARRAY_BUFFER, pos, gl.DYNAMIC_DRAW);
        gl.enableVertexAttribArray(lp); gl.vertexAttribPointer(lp, 2, gl.FLOAT, false, 0, 0);
        gl.bindBuffer(gl.ARRAY_BUFFER, colBuf);
        if (colChanged) gl.bufferData(gl.ARRAY_BUFFER, col, gl.DYNAMIC_DRAW);
        gl.enableVertexAttribArray(lc); gl.vertexAttribPointer(lc, 4, gl.UNSIGNED_BYTE, true, 0, 0);
        gl.drawArrays(gl.POINTS, 0, pos.length / 2);
      },
    };
  }
  function canvasRenderer(canvas) {
    const g = canvas.getContext("2d");
    const clear = () => {
      const dpr = window.devicePixelRatio || 1;
      g.setTransform(dpr, 0, 0, dpr, 0, 0); g.fillStyle = "#fff"; g.fillRect(0, 0, canvas.width / dpr, canvas.height / dpr);
    };
    return {
      name: "canvas2d",
      clear,
      draw(pos, col, colChanged, W, H, px) {
        clear();
        let last = -1;
        for (let i = 0; i < pos.length / 2; i++) {
          if (col[4 * i + 3] === 0) continue;
          const key = (col[4 * i] << 16) | (col[4 * i + 1] << 8) | col[4 * i + 2];
          if (key !== last) { g.fillStyle = `rgb(${col[4 * i]},${col[4 * i + 1]},${col[4 * i + 2]})`; last = key; }
          g.fillRect(pos[2 * i] - px / 2, pos[2 * i + 1] - px / 2, px, px);
        }
      },
    };
  }
  function makeRenderer(canvas) {
    try { const r = webglRenderer(canvas); if (r) return r; } catch (e) { console.warn("WebGL failed, using canvas 2D:", e); }
    return canvasRenderer(canvas);
  }
  const pointSize = (N) => Math.max(3, Math.min(8, 2 + 6 * Math.sqrt(300 / Math.max(N, 1))));

  // --- a panel: one run's points in one pair of canvases (points below, overlay above) -------------------
  // film: that run's metadata (steps, limits, zoom, top_k, ood_log); A: its arrays (labels, ood, ood_rank, top,
  // pred/prob, issue_rank); XY: its dequantised coordinates [S * N * 2]. shared: {N, classRGB, oodRange: [lo, hi]}.
  class Panel {
    constructor(film, A, XY, points, overlay, shared) {
      Object.assign(this, { film, A, XY, points, overlay, N: shared.N, classRGB: shared.classRGB, oodRange: shared.oodRange });
      this.S = film.steps.length;
      this.og = overlay.getContext("2d");
      this.renderer = makeRenderer(points);
      this.px = pointSize(this.N);
      this.screen = new Float32Array(2 * this.N); // current CSS-pixel positions
      this.colours = new Uint8Array(4 * this.N);
      this.colourKey = null;
      this.camera = { cx: 0, cy: 0, scale: 1, zoom: 1, W: 1, H: 1 };
      this.issueCount = Array.from({ length: this.S }, (_, s) => {
        let m = 0; if (A.issue_rank) for (let i = 0; i < this.N; i++) m = Math.max(m, A.issue_rank[s * this.N + i]); return m;
      });
    }
    resize() {
      const r = this.overlay.parentElement.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
      for (const c of [this.points, this.overlay]) { c.width = Math.round(r.width * dpr); c.height = Math.round(r.height * dpr); }
      this.camera.W = r.width; this.camera.H = r.height;
      this.colourKey = null;
    }
    // Camera and screen positions between checkpoints s0 and s1 (a = 0: s0, a = 1: s1).
    setView(s0, s1, a) {
      const cam = this.camera, L0 = this.film.limits[s0], L1 = this.film.limits[s1];
      const x0 = lerp(L0[0], L1[0], a), x1 = lerp(L0[1], L1[1], a), y0 = lerp(L0[2], L1[2], a), y1 = lerp(L0[3], L1[3], a);
      const pad = 12;
      cam.cx = (x0 + x1) / 2; cam.cy = (y0 + y1) / 2;
      cam.scale = Math.min((cam.W - 2 * pad) / Math.max(x1 - x0, 1e-12), (cam.H - 2 * pad) / Math.max(y1 - y0, 1e-12));
      const z0 = this.film.zoom[s0], z1 = this.film.zoom[s1];
      cam.zoom = z0 === null || z1 === null ? 1 : lerp(z0, z1, a);
      const N = this.N, XY = this.XY, screen = this.screen, A0 = s0 * 2 * N, A1 = s1 * 2 * N;
      const cx = cam.W / 2 - cam.cx * cam.scale, cy = cam.H / 2 + cam.cy * cam.scale, k = cam.scale;
      for (let j = 0; j < 2 * N; j += 2) {
        screen[j] = cx + (XY[A0 + j] + (XY[A1 + j] - XY[A0 + j]) * a) * k;
        screen[j + 1] = cy - (XY[A0 + j + 1] + (XY[A1 + j + 1] - XY[A0 + j + 1]) * a) * k;
      }
    }
    toScreen(x, y) { const c = this.camera; return [c.W / 2 + (x - c.cx) * c.scale, c.H / 2 - (y - c.cy) * c.scale]; }
    vertex(s, i) { return this.toScreen(this.XY[s * 2 * this.N + 2 * i], this.XY[s * 2 * this.N + 2 * i + 1]); }
    oodScore(s, i) { return Math.exp(this.film.ood_log[0] + this.A.ood[s * this.N + i] * this.film.ood_log[1]); }
    colourOf(i, s, mode) {
      const A = this.A, N = this.N, label = A.labels[i];
      switch (mode) {
        case "pred": return A.pred ? this.classRGB[A.pred[s * N + i]] || [120, 120, 120] : [160, 160, 160];
        case "correct": return !A.pred ? [160, 160, 160] : A.pred[s * N + i] === label ? [60, 160, 80] : [220, 40, 40];
        case "ood": {
          const [lo, hi] = this.oodRange;
          return ramp(1 - (this.oodScore(s, i) - lo) / Math.max(1e-12, hi - lo));
        }
        case "issue": {
          const r = A.issue_rank ? A.issue_rank[s * N + i] : 0;
          return r === 0 ? [205, 205, 205] : ramp(1 - Math.min(1, (r - 1) / Math.max(1, this.issueCount[s] - 1)) * 0.75);
        }
        default: return this.classRGB[label];
      }
    }
    // Recolour for checkpoint s when s, the mode or the hidden classes changed; true when it did.
    updateColours(s, mode, hidden) {
      const key = `${s}|${mode}|${[...hidden].join(",")}`;
      if (key === this.colourKey) return false;
      for (let i = 0; i < this.N; i++) {
        const rgb = this.colourOf(i, s, mode);
        this.colours.set(rgb, 4 * i);
        this.colours[4 * i + 3] = hidden.has(this.A.labels[i]) ? 0 : 215;
      }
      this.colourKey = key;
      return true;
    }
    draw(colChanged) { this.renderer.draw(this.screen, this.colours, colChanged, this.camera.W, this.camera.H, this.px); }
    clear() { this.renderer.clear(); this.clearOverlay(); this.colourKey = null; }
    clearOverlay() {
      const dpr = window.devicePixelRatio || 1;
      this.og.setTransform(dpr, 0, 0, dpr, 0, 0);
      this.og.clearRect(0, 0, this.camera.W, this.camera.H);
    }
    // Top-k outliers of checkpoint s ringed with their rank; pins [[index, colour]] with their trajectory over all
    // checkpoints (a vertex per checkpoint, the larger dot at the first); the hovered image ringed.
    drawOverlay(s, hover, pins, ids) {
      const og = this.og, px = this.px, screen = this.screen, top = this.film.top_k;
      this.clearOverlay();
      og.font = "bold 11px system-ui, sans-serif";
      og.lineWidth = 1.5;
      for (let r = 0; r < top; r++) {
        const i = this.A.top[s * top + r];
        if (this.colours[4 * i + 3] === 0) continue;
        const x = screen[2 * i], y = screen[2 * i + 1];
        og.strokeStyle = "#000"; og.beginPath(); og.arc(x, y, px + 3, 0, 2 * Math.PI); og.stroke();
        og.fillStyle = "#000"; og.fillText(String(r + 1), x + px + 3, y - px - 1);
      }
      for (const [i, colour] of pins) this.drawPin(i, colour, this.trajectory(i), ids[i]);
      this.drawHover(hover);
    }
    // A pinned point: its path (a vertex per checkpoint, the larger dot at the first), a ring and its id.
    drawPin(i, colour, vertices, label) {
      const og = this.og, px = this.px, x = this.screen[2 * i], y = this.screen[2 * i + 1];
      og.strokeStyle = colour; og.fillStyle = colour; og.lineWidth = 1.5;
      og.beginPath();
      vertices.forEach(([vx, vy], k) => (k === 0 ? og.moveTo(vx, vy) : og.lineTo(vx, vy)));
      og.stroke();
      vertices.forEach(([vx, vy], k) => { og.beginPath(); og.arc(vx, vy, k === 0 ? 3.5 : 2, 0, 2 * Math.PI); og.fill(); });
      og.lineWidth = 3; og.beginPath(); og.arc(x, y, px + 5, 0, 2 * Math.PI); og.stroke();
      og.fillText(label, x + px + 7, y + 4);
    }
    // The hovered point ringed (none when hover < 0).
    drawHover(hover) {
      if (hover < 0) return;
      const og = this.og;
      og.strokeStyle = "#000"; og.lineWidth = 2;
      og.beginPath(); og.arc(this.screen[2 * hover], this.screen[2 * hover + 1], this.px + 4, 0, 2 * Math.PI); og.stroke();
    }
    trajectory(i) { return Array.from({ length: this.S }, (_, k) => this.vertex(k, i)); } // CSS px in the panel
    pick(mx, my) { // the visible point nearest (mx, my) within 10 px, or -1
      let best = -1, bestD = 10 * 10;
      for (let i = 0; i < this.N; i++) {
        if (this.colours[4 * i + 3] === 0) continue;
        const dx = this.screen[2 * i] - mx, dy = this.screen[2 * i + 1] - my, d = dx * dx + dy * dy;
        if (d <= bestD) { bestD = d; best = i; } // later points are drawn on top
      }
      return best;
    }
    // What checkpoint s says of image i: predicted class and probability, OOD score and rank, label-issue rank.
    describe(i, s, classNames) {
      const A = this.A, k = s * this.N + i, out = { ood: fmtScore(this.oodScore(s, i)), rank: rankText(A.ood_rank[k]) };
      if (A.pred) out.pred = `${classNames[A.pred[k]] ?? String(A.pred[k])} (${fmt(A.prob[k] / 255, 2)})`;
      if (A.pred) out.wrong = A.pred[k] !== A.labels[i];
      if (A.issue_rank) out.issue = A.issue_rank[k] ? "#" + rankText(A.issue_rank[k]) : "no";
      return out;
    }
    mapping() { // data -> client pixels now: clientX = left + W/2 + (x - cx) * scale; clientY = top + H/2 - (y - cy) * scale
      const r = this.overlay.getBoundingClientRect(), c = this.camera;
      return { left: r.left, top: r.top, W: c.W, H: c.H, cx: c.cx, cy: c.cy, scale: c.scale, zoom: c.zoom };
    }
    client([x, y]) { const r = this.overlay.getBoundingClientRect(); return [r.left + x, r.top + y]; }
    positions(s) { // data coordinates held for checkpoint s
      const x = new Array(this.N), y = new Array(this.N), base = s * 2 * this.N;
      for (let i = 0; i < this.N; i++) { x[i] = this.XY[base + 2 * i]; y[i] = this.XY[base + 2 * i + 1]; }
      return { x, y };
    }
  }

  // --- the timeline: a position t in [0, count - 1], played, animated to a target, or jumped --------------
  class Timeline {
    constructor(count) {
      Object.assign(this, { count, t: 0, from: 0, target: 0, animStart: 0, animMs: 0, playing: false, speed: 2, lastFrame: null });
    }
    get index() { return Math.max(0, Math.min(this.count - 1, Math.round(this.t))); }
    get moving() { return this.playing || this.t !== this.target; }
    goTo(index, ms = 350) {
      this.setPlaying(false);
      this.from = this.t; this.target = Math.max(0, Math.min(this.count - 1, index));
      this.animStart = performance.now(); this.animMs = Math.max(1, ms);
    }
    jump(index) { // immediate, no animation (tests, initial view)
      this.setPlaying(false);
      this.t = this.from = this.target = Math.max(0, Math.min(this.count - 1, index));
    }
    setPlaying(on) {
      if (on && this.t >= this.count - 1) this.t = this.target = 0;
      this.playing = on;
      $("play").textContent = on ? "❚❚ pause" : "▶ play";
    }
    advance(now) { // move t for the frame at `now`; true when it moved
      if (this.playing) {
        const dt = this.lastFrame === null ? 0 : (now - this.lastFrame) / 1000;
        this.t = Math.min(this.count - 1, this.t + dt * this.speed);
        if (this.t >= this.count - 1) this.setPlaying(false);
        this.target = this.t;
        return true;
      }
      if (this.t === this.target) return false;
      const a = Math.max(0, Math.min(1, (now - this.animStart) / this.animMs)); // rAF time can precede the event
      this.t = a >= 1 ? this.target : lerp(this.from, this.target, a);
      return true;
    }
    // The slider, play button, speed select and keys (arrows, Home/End, space); `changed` after each input.
    bind(changed) {
      const slider = $("slider");
      slider.max = String(this.count - 1);
      slider.addEventListener("input", () => { this.goTo(Number(slider.value)); changed(); });
      $("play").onclick = () => { this.setPlaying(!this.playing); changed(); };
      $("speed").onchange = (e) => { this.speed = Number(e.target.value); };
      window.addEventListener("keydown", (e) => {
        if ((e.target instanceof HTMLInputElement && e.target.type === "search") || e.target instanceof HTMLSelectElement) return;
        if (e.key === "ArrowRight" || e.key === "ArrowUp") { this.goTo(Math.round(this.target) + 1); e.preventDefault(); }
        else if (e.key === "ArrowLeft" || e.key === "ArrowDown") { this.goTo(Math.round(this.target) - 1); e.preventDefault(); }
        else if (e.key === "Home") this.goTo(0, 600);
        else if (e.key === "End") this.goTo(this.count - 1, 600);
        else if (e.key === " ") { this.setPlaying(!this.playing); e.preventDefault(); }
        else return;
        changed();
      });
    }
    // requestAnimationFrame loop: draw() when the time moved or dirty() says so; frame intervals while moving
    // and script time while playing go to debug.frameTimes / debug.workTimes.
    run(dirty, draw, debug) {
      const keep = (list, v) => { list.push(v); if (list.length > 2000) list.shift(); };
      const render = (now) => {
        const moved = this.advance(now);
        if (moved || dirty()) {
          if (this.lastFrame !== null && this.moving) keep(debug.frameTimes, now - this.lastFrame);
          const w0 = performance.now();
          draw();
          if (this.playing) keep(debug.workTimes, performance.now() - w0);
          this.lastFrame = now;
        } else {
          this.lastFrame = null;
        }
        requestAnimationFrame(render);
      };
      requestAnimationFrame(render);
    }
  }
  function buildTicks(box, labels) { // labels under the slider, at most about 12
    const n = labels.length, every = Math.max(1, Math.ceil(n / 12));
    for (let k = 0; k < n; k += every) {
      const el = document.createElement("span");
      el.style.left = `${n > 1 ? (100 * k) / (n - 1) : 0}%`; el.textContent = String(labels[k]);
      box.appendChild(el);
    }
  }
  function frameStats(debug) {
    const f = debug.frameTimes;
    return { frames: f.length, median: median(f), p95: f.length ? f.slice().sort((a, b) => a - b)[Math.floor(f.length * 0.95)] : null,
      mean: f.length ? f.reduce((a, b) => a + b, 0) / f.length : null, medianWork: median(debug.workTimes) };
  }

  // --- curves, legend, pins, hover card -----------------------------------------------------------------
  // A small uPlot chart; u.stepLine is the cursor (a positioned div, so playing redraws no canvas); a click
  // calls onClick with the x value under the mouse.
  function makeCurve(el, { title, data, series, range, height, onClick, xValues }) {
    if (typeof uPlot === "undefined" || !data[0].length) { el.textContent = `${title}: no data`; return null; }
    const x = { size: 22, font: "10px sans-serif", ...(xValues ? { values: xValues, space: 50 } : {}) };
    const u = new uPlot({
      title, width: 400, height, legend: { show: true, live: false },
      scales: { x: { time: false, range } },
      axes: [x, { size: 40, font: "10px sans-serif" }],
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 1.5, spanGaps: true }))],
    }, data, el);
    const line = document.createElement("div");
    line.className = "step-line";
    u.over.appendChild(line);
    u.stepLine = line;
    u.over.addEventListener("click", () => onClick(u.posToVal(u.cursor.left, "x")));
    return u;
  }
  const moveCursor = (u, x) => { if (u) u.stepLine.style.left = `${u.valToPos(x, "x")}px`; };
  function buildLegend(box, names, classRGB, hidden, changed) { // click a class: hide / show it
    box.innerHTML = "";
    names.forEach((name, k) => {
      const el = document.createElement("span");
      el.className = "item" + (hidden.has(k) ? " off" : "");
      el.dataset.class = String(k);
      el.innerHTML = `<span class="swatch" style="background:${css(classRGB[k])}"></span>${escapeHTML(name)}`;
      el.title = "click to hide / show this class";
      el.onclick = () => { hidden.has(k) ? hidden.delete(k) : hidden.add(k); buildLegend(box, names, classRGB, hidden, changed); changed(); };
      box.appendChild(el);
    });
  }
  const MODE_KEYS = {
    class: "colour: true class (click a class above to hide it)",
    pred: "colour: the checkpoint's predicted class",
    correct: `<span class="swatch" style="background:rgb(60,160,80)"></span>correct <span class="swatch" style="background:rgb(220,40,40)"></span>wrong (head prediction)`,
    ood: `colour: OOD score, <span class="swatch" style="background:${css(ramp(1))}"></span>low = outlying … <span class="swatch" style="background:${css(ramp(0))}"></span>high`,
    issue: `colour: label-issue rank, <span class="swatch" style="background:${css(ramp(1))}"></span>most severe … <span class="swatch" style="background:rgb(205,205,205)"></span>not flagged`,
  };
  // The colour select: disables what the data lacks, calls changed(mode) on a change.
  function bindColour(hasPred, hasIssues, changed) {
    const colour = $("colour");
    if (!hasPred) for (const v of ["pred", "correct"]) colour.querySelector(`option[value=${v}]`).disabled = true;
    if (!hasIssues) colour.querySelector("option[value=issue]").disabled = true;
    colour.onchange = () => { $("mode-key").innerHTML = MODE_KEYS[colour.value]; changed(colour.value); };
    $("mode-key").innerHTML = MODE_KEYS[colour.value];
  }
  // Pins: a list of image indices, shown as names (click to unpin), added by id from the search box.
  class Pins {
    constructor(ids, changed) {
      this.list = []; this.ids = ids; this.changed = changed;
      this.index = new Map();
      ids.forEach((id, i) => { if (!this.index.has(id)) this.index.set(id, i); }); // a repeated id: its first image
      $("search").addEventListener("keydown", (e) => { if (e.key === "Enter") this.search(); });
      $("pin-search").onclick = () => this.search();
      $("clear-pins").onclick = () => { this.list = []; this.render(); };
    }
    coloured() { return this.list.map((i, p) => [i, PIN_COLOURS[p % PIN_COLOURS.length]]); }
    toggle(i) {
      const k = this.list.indexOf(i);
      if (k >= 0) this.list.splice(k, 1); else this.list.push(i);
      this.render();
    }
    render() {
      const box = $("pins");
      box.innerHTML = this.list.length ? "<b>pinned</b> (click to unpin): " : "";
      for (const [i, colour] of this.coloured()) {
        const el = document.createElement("span");
        el.className = "pin"; el.style.borderColor = colour; el.textContent = this.ids[i];
        el.onclick = () => this.toggle(i);
        box.appendChild(el);
      }
      this.changed();
    }
    search() {
      const q = $("search").value.trim();
      let i = this.index.get(q);
      if (i === undefined) for (const [id, k] of this.index) if (id.toLowerCase() === q.toLowerCase()) { i = k; break; }
      $("search-msg").textContent = q && i === undefined ? `no image '${q}' among the ${this.ids.length} shown` : "";
      if (i !== undefined && !this.list.includes(i)) this.toggle(i);
    }
  }
  function placeTip(tip, x, y) { // the hover card beside client point (x, y), inside the window
    tip.hidden = false;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    let left = x + 14, top = y + 14;
    if (left + w > window.innerWidth) left = x - w - 14;
    if (top + h > window.innerHeight) top = y - h - 14;
    tip.style.left = `${Math.max(0, left)}px`; tip.style.top = `${Math.max(0, top)}px`;
  }
  function collectErrors() { // page errors, for the tests' hooks
    const errors = [];
    window.addEventListener("error", (e) => errors.push(String(e.message)));
    return errors;
  }

  return {
    $, decodePayload, dequantise, loadSprite, drawThumb, classColours, css, fmt, escapeHTML, lerp, oodScale, lossAt,
    Panel, Timeline, buildTicks, frameStats, makeCurve, moveCursor, buildLegend, bindColour, Pins, placeTip, collectErrors,
  };
})();
