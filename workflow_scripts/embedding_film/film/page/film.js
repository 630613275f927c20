// The explorable embedding film (workflow_scripts/embedding_film/film_html): one run. Reads the inlined metadata, payload and
// thumbnail sprite, then draws the points in one Panel (film_core.js: one WebGL draw call per frame, an
// overlay canvas for top-k marks, hover and pinned trajectories) beside uPlot curves; with training dynamics
// (meta.data_map) a data map beside it (data_map.js) on the same time slider, hover card and pins.
// window.filmDebug is a read-only hook for tests.
(function () {
  "use strict";
  const { $, fmt, escapeHTML, lerp } = FilmCore;
  const meta = JSON.parse($("film-meta").textContent);
  const S = meta.steps.length, N = meta.n;
  const classRGB = FilmCore.classColours(meta.class_names);
  const debug = { errors: FilmCore.collectErrors(), frameTimes: [], workTimes: [] };
  const state = { colour: "class", hidden: new Set(), hover: -1, dirty: true, mouse: null, mapHover: -1, mapMouse: null };
  const timeline = new FilmCore.Timeline(S);
  const touch = () => { state.dirty = true; };
  const dm = meta.data_map || null; // the training images' data map; pins index it after the N eval images
  const pins = new FilmCore.Pins(dm ? meta.ids.concat(dm.ids) : meta.ids, touch);
  let panel = null, map = null, sprite = null, mapSprite = null, A = {};

  // --- per frame ---------------------------------------------------------------------------------------
  function draw() {
    const s = timeline.index, s0 = Math.floor(timeline.t), s1 = Math.min(s0 + 1, S - 1);
    panel.setView(s0, s1, timeline.t - s0);
    panel.draw(panel.updateColours(s, state.colour, state.hidden));
    panel.drawOverlay(s, state.hover, pins.coloured().filter(([i]) => i < N), meta.ids);
    if (map) drawMap(s, s0, s1);
    if (state.mouse) pick(...state.mouse);
    if (state.mapMouse) pickMap(...state.mapMouse);
    updateSide(s);
    state.dirty = false;
  }
  // The data map at the dynamics checkpoint of film checkpoint s (interpolated between those of s0 and s1).
  function drawMap(s, s0, s1) {
    const index = dm.film_index, d = index[s];
    map.d = d;
    if (d < 0) {
      map.clear();
      map.drawOverlay(-1, -1, [], `step ${meta.steps[s]}: before the first dynamics checkpoint (step ${dm.steps[0]})`);
      $("dm-step").textContent = `· step ${meta.steps[s]}: no dynamics yet`;
      return;
    }
    const d0 = index[s0] < 0 ? d : index[s0], d1 = index[s1] < 0 ? d : index[s1];
    map.setView(d0, d1, d0 === d1 ? 0 : timeline.t - s0);
    map.draw(map.updateColours(d, "correct", state.hidden));
    const mapPins = pins.coloured().filter(([i]) => i >= N).map(([i, colour]) => [i - N, colour]);
    map.drawOverlay(d, state.mapHover, mapPins, "");
    $("dm-step").textContent = `· up to step ${dm.steps[d]} (dynamics checkpoint ${d + 1} of ${dm.steps.length})`;
  }
  function pickMap(mx, my) {
    const best = map.d < 0 ? -1 : map.pick(mx, my);
    if (best !== state.mapHover) { state.mapHover = best; state.dirty = true; }
    showTooltip();
  }
  function pick(mx, my) {
    const best = panel.pick(mx, my);
    if (best !== state.hover) { state.hover = best; state.dirty = true; }
    showTooltip();
  }
  function showTooltip() {
    const tip = $("tooltip"), i = state.hover;
    if (map && state.mapMouse) {
      const j = state.mapHover;
      if (j < 0 || map.d < 0) { tip.hidden = true; return; }
      $("tip-text").innerHTML = map.card(j, map.d, meta.class_names, meta.steps[timeline.index]);
      FilmCore.drawThumb($("tip-thumb"), mapSprite, dm.sprite, j);
      const r = $("dm-overlay").getBoundingClientRect();
      FilmCore.placeTip(tip, r.left + state.mapMouse[0], r.top + state.mapMouse[1]);
      return;
    }
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
    if (state.hover >= 0 || state.mapHover >= 0) showTooltip();
  }
  function curve(el, title, xs, series, height) {
    const nearest = (step) => meta.steps.reduce((best, v, k) => (Math.abs(v - step) < Math.abs(meta.steps[best] - step) ? k : best), 0);
    const u = FilmCore.makeCurve(el, { title, data: [xs, ...series.map((s) => s.values)], series, height,
      range: [meta.steps[0], meta.steps[S - 1]], onClick: (step) => { timeline.goTo(nearest(step)); touch(); } });
    if (u) plots.push(u);
  }

  // --- the data map: its section, panel and mouse ------------------------------------------------------------
  async function startMap() {
    const B = {};
    for (const [name, view] of Object.entries(A)) if (name.startsWith("dm.")) B[name.slice(3)] = view;
    let noisyShown = 0;
    for (let j = 0; j < dm.n; j++) noisyShown += B.noisy[j];
    FilmDataMap.makeSection(dm, noisyShown);
    map = new FilmDataMap.MapPanel(dm, B, FilmCore.dequantise(B.xy, dm.dequant, dm.n), $("dm-points"), $("dm-overlay"), classRGB);
    const overlay = $("dm-overlay");
    overlay.addEventListener("mousemove", (e) => { const r = overlay.getBoundingClientRect(); state.mapMouse = [e.clientX - r.left, e.clientY - r.top]; pickMap(...state.mapMouse); });
    overlay.addEventListener("mouseleave", () => { state.mapMouse = null; state.mapHover = -1; touch(); showTooltip(); });
    overlay.addEventListener("click", () => { if (state.mapHover >= 0) pins.toggle(N + state.mapHover); });
    map.resize();
    mapSprite = await FilmDataMap.spriteFromBytes(B.sprite);
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
    if (dm) await startMap();
    window.addEventListener("resize", () => { panel.resize(); if (map) map.resize(); touch(); });
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
    // The data map (null without one): j indexes its training images; pins of training images are N + j in pins.
    dataMap: dm && {
      get index() { return map.d; }, // the dynamics checkpoint shown (-1: before the first)
      get hover() { return state.mapHover; },
      info() { return { steps: dm.steps.slice(), film_index: dm.film_index.slice(), n: dm.n, n_total: dm.n_total, ids: dm.ids.slice(), note: dm.note, offset: N }; },
      positions(d = map.d) { return map.positionsAt(d); }, // (variability, confidence) held for dynamics checkpoint d
      screen(j) { return map.client([map.screen[2 * j], map.screen[2 * j + 1]]); },
      colour(j) { return Array.from(map.colours.subarray(4 * j, 4 * j + 4)); },
      path(j) { return pins.list.includes(N + j) && map.d >= 0 ? map.path(j, map.d).map((v) => map.client(v)) : []; }, // client px
    },
    frameStats() { return FilmCore.frameStats(debug); },
    resetFrameStats() { debug.frameTimes.length = 0; debug.workTimes.length = 0; },
  };
  start().catch((e) => { debug.errors.push(String(e && e.stack || e)); console.error(e); $("loading").textContent = `could not load the film: ${e}`; });
})();
