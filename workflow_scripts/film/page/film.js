// The explorable embedding film (workflow_scripts/film_html): one run. Reads the inlined metadata, payload and
// thumbnail sprite, then draws the points in one Panel (film_core.js: one WebGL draw call per frame, an
// overlay canvas for top-k marks, hover and pinned trajectories) beside uPlot curves.
// window.filmDebug is a read-only hook for tests.
(function () {
  "use strict";
  const { $, fmt, escapeHTML, lerp } = FilmCore;
  const meta = JSON.parse($("film-meta").textContent);
  const S = meta.steps.length, N = meta.n;
  const classRGB = FilmCore.classColours(meta.class_names);
  const debug = { errors: FilmCore.collectErrors(), frameTimes: [], workTimes: [] };
  const state = { colour: "class", hidden: new Set(), hover: -1, dirty: true, mouse: null };
  const timeline = new FilmCore.Timeline(S);
  const touch = () => { state.dirty = true; };
  const pins = new FilmCore.Pins(meta.ids, touch);
  let panel = null, sprite = null, A = {};

  // --- per frame ---------------------------------------------------------------------------------------
  function draw() {
    const s = timeline.index, s0 = Math.floor(timeline.t), s1 = Math.min(s0 + 1, S - 1);
    panel.setView(s0, s1, timeline.t - s0);
    panel.draw(panel.updateColours(s, state.colour, state.hidden));
    panel.drawOverlay(s, state.hover, pins.coloured(), meta.ids);
    if (state.mouse) pick(...state.mouse);
    updateSide(s);
    state.dirty = false;
  }
  function pick(mx, my) {
    const best = panel.pick(mx, my);
    if (best !== state.hover) { state.hover = best; state.dirty = true; }
    showTooltip();
  }
  function showTooltip() {
    const tip = $("tooltip"), i = state.hover;
    if (i < 0 || !state.mouse) { tip.hidden = true; return; }
    const s = timeline.index, label = A.labels[i], d = panel.describe(i, s, meta.class_names);
    const lines = [`<b>${escapeHTML(meta.ids[i])}</b>`, `label: ${escapeHTML(meta.class_names[label])}`];
    if (d.pred) lines.push(`predicted: ${escapeHTML(d.pred)}` + (d.wrong ? " ✗" : ""));
    lines.push(`OOD score: ${d.ood}`, `OOD rank: ${d.rank} of ${meta.n_total}`);
    if (d.issue) lines.push(`label issue: ${d.issue}`);
    lines.push(`<span style="color:#666">step ${meta.steps[s]} · click to pin</span>`);
    $("tip-text").innerHTML = lines.join("<br>");
    FilmCore.drawThumb($("tip-thumb"), sprite, meta.sprite, i);
    const r = $("plot").getBoundingClientRect();
    FilmCore.placeTip(tip, r.left + state.mouse[0], r.top + state.mouse[1]);
  }

  // --- side panel: values, curves ------------------------------------------------------------------------
  const METRICS = [["head_accuracy", "head acc"], ["knn_accuracy", "kNN acc"], ["trustworthiness", "trustworthiness"]];
  const shownMetrics = METRICS.filter(([k]) => meta.metrics[k] && meta.metrics[k].some((v) => v !== null));
  const otherMetrics = Object.keys(meta.metrics).filter((k) => !METRICS.some(([m]) => m === k) && meta.metrics[k].some((v) => v !== null));
  const plots = [];
  let sideStep = -1;
  const stepAtT = () => { const s0 = Math.floor(timeline.t), s1 = Math.min(s0 + 1, S - 1); return lerp(meta.steps[s0], meta.steps[s1], timeline.t - s0); };
  function updateSide(s) {
    $("step-badge").textContent = `step ${meta.steps[s]}`;
    const z = panel.camera.zoom;
    $("zoom-cue").textContent = z && Math.abs(z - 1) > 0.05 ? `zoom ×${z.toFixed(1)}` : "";
    for (const u of plots) FilmCore.moveCursor(u, stepAtT());
    if (s === sideStep) return;
    sideStep = s;
    $("slider").value = String(Math.round(timeline.target)); // where it is going: no tug-of-war with a drag
    $("step-readout").textContent = `step ${meta.steps[s]} · checkpoint ${s + 1} of ${S}`;
    const loss = FilmCore.lossAt(meta.loss, meta.steps[s]);
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
  function curve(el, title, xs, series, height) {
    const nearest = (step) => meta.steps.reduce((best, v, k) => (Math.abs(v - step) < Math.abs(meta.steps[best] - step) ? k : best), 0);
    const u = FilmCore.makeCurve(el, { title, data: [xs, ...series.map((s) => s.values)], series, height,
      range: [meta.steps[0], meta.steps[S - 1]], onClick: (step) => { timeline.goTo(nearest(step)); touch(); } });
    if (u) plots.push(u);
  }

  // --- start -------------------------------------------------------------------------------------------
  async function start() {
    $("layout-note").textContent = meta.layout_note || "";
    $("subsample-note").textContent = meta.note || "";
    A = await FilmCore.decodePayload("film-data", meta.arrays);
    const XY = FilmCore.dequantise(A.xy, meta.dequant, N);
    sprite = await FilmCore.loadSprite("film-sprite");
    panel = new FilmCore.Panel(meta, A, XY, $("points"), $("overlay"), { N, classRGB, oodRange: FilmCore.oodScale(meta.ood_log) });
    timeline.bind(touch);
    FilmCore.bindColour(!!A.pred, !!A.issue_rank, (mode) => { state.colour = mode; touch(); });
    const overlay = $("overlay");
    overlay.addEventListener("mousemove", (e) => { const r = overlay.getBoundingClientRect(); state.mouse = [e.clientX - r.left, e.clientY - r.top]; pick(...state.mouse); });
    overlay.addEventListener("mouseleave", () => { state.mouse = null; state.hover = -1; touch(); showTooltip(); });
    overlay.addEventListener("click", () => { if (state.hover >= 0) pins.toggle(state.hover); });
    window.addEventListener("resize", () => { panel.resize(); touch(); });
    curve($("loss-curve"), "training loss", meta.loss.steps, [{ label: "loss", colour: "#444", values: meta.loss.values }], 110);
    const metricColours = ["#1f77b4", "#2ca02c", "#9467bd"];
    curve($("metric-curve"), "metrics per checkpoint", meta.steps,
      shownMetrics.map(([k, label], j) => ({ label, colour: metricColours[j], values: meta.metrics[k] })), 130);
    FilmCore.buildLegend($("legend"), meta.class_names, classRGB, state.hidden, touch);
    FilmCore.buildTicks($("ticks"), meta.steps);
    panel.resize();
    $("loading").remove();
    timeline.jump(0);
    timeline.run(() => state.dirty, draw, debug);
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    debug.ready = true;
  }

  // --- read-only hook for tests ------------------------------------------------------------------------
  window.filmDebug = {
    get ready() { return !!debug.ready; },
    get errors() { return debug.errors.slice(); },
    get renderer() { return panel && panel.renderer.name; },
    get step() { return timeline.index; },
    get t() { return timeline.t; },
    get hover() { return state.hover; },
    get pins() { return pins.list.slice(); },
    get settled() { return !timeline.moving && !state.dirty; },
    info() { return { steps: meta.steps.slice(), n: N, n_total: meta.n_total, note: meta.note, ids: meta.ids.slice(), sprite: meta.sprite }; },
    jump(i) { timeline.jump(i); touch(); },
    play(speed) { if (speed) timeline.speed = speed; timeline.setPlaying(true); },
    pause() { timeline.setPlaying(false); },
    positions(s = timeline.index) { return panel.positions(s); }, // data coordinates the page holds for checkpoint s
    mapping() { return panel.mapping(); }, // data -> client pixels now
    colour(i) { return Array.from(panel.colours.subarray(4 * i, 4 * i + 4)); }, // rgba as drawn; alpha 0 = hidden
    screen(i) { return panel.client([panel.screen[2 * i], panel.screen[2 * i + 1]]); },
    trajectory(i) { return pins.list.includes(i) ? panel.trajectory(i).map((v) => panel.client(v)) : []; }, // client px, one per checkpoint
    frameStats() { return FilmCore.frameStats(debug); },
    resetFrameStats() { debug.frameTimes.length = 0; debug.workTimes.length = 0; },
  };
  start().catch((e) => { debug.errors.push(String(e && e.stack || e)); console.error(e); $("loading").textContent = `could not load the film: ${e}`; });
})();
