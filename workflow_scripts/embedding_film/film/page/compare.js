// The comparison page (workflow_scripts/embedding_film/film_html/compare.py): several runs' films side by side on a common
// clock. One FilmCore.Panel per run; the timeline runs over the clock's ticks, and each panel shows the
// checkpoint meta.shown[tick][run] (-1: not started), interpolated between ticks where both show one. Hover,
// pins, colour and hidden classes are shared by every panel. window.compareDebug is a read-only hook for tests.
(function () {
  "use strict";
  const { $, fmt, escapeHTML } = FilmCore;
  const meta = JSON.parse($("film-meta").textContent);
  const R = meta.runs.length, T = meta.ticks.length, N = meta.n;
  const RUN_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];
  const runColour = (r) => RUN_COLOURS[r % RUN_COLOURS.length];
  const classRGB = FilmCore.classColours(meta.class_names);
  const debug = { errors: FilmCore.collectErrors(), frameTimes: [], workTimes: [] };
  const state = { colour: "class", hidden: new Set(), hover: -1, mouse: null, mousePanel: -1, dirty: true };
  const timeline = new FilmCore.Timeline(T);
  const touch = () => { state.dirty = true; };
  const pins = new FilmCore.Pins(meta.ids, touch);
  const views = []; // per run: {panel, el, title}
  let sprite = null;

  // --- the clock ---------------------------------------------------------------------------------------
  const checkpointAt = (k, r) => meta.shown[k][r]; // run r's checkpoint at tick k, -1 = not started
  const short = (function () { // tick labels without the words all share ("step 200" -> "200", "40 % of training" -> "40")
    const words = meta.ticks.map((t) => t.split(" ")), n = Math.min(...words.map((w) => w.length));
    const same = (at) => words.every((w) => at(w) === at(words[0]));
    let head = 0, tail = 0;
    while (head < n - 1 && same((w) => w[head])) head++;
    while (tail < n - 1 - head && same((w) => w[w.length - 1 - tail])) tail++;
    return words.map((w) => w.slice(head, w.length - tail).join(" ") || w.join(" "));
  })();
  function stepText(k, r) {
    const c = checkpointAt(k, r), steps = meta.films[r].steps;
    if (c < 0) return "not started";
    const finished = c === steps.length - 1 && k > 0 && checkpointAt(k - 1, r) === c;
    return `step ${steps[c]}` + (finished ? " (its last)" : "");
  }

  // --- per frame ---------------------------------------------------------------------------------------
  function draw() {
    const k = timeline.index, k0 = Math.floor(timeline.t), k1 = Math.min(k0 + 1, T - 1), a = timeline.t - k0;
    views.forEach(({ panel, el }, r) => {
      const c = checkpointAt(k, r), c0 = checkpointAt(k0, r), c1 = checkpointAt(k1, r);
      el.classList.toggle("idle", c < 0);
      if (c < 0) { panel.clear(); return; }
      if (c0 >= 0 && c1 >= 0) panel.setView(c0, c1, a); else panel.setView(c, c, 0);
      panel.draw(panel.updateColours(c, state.colour, state.hidden));
      panel.drawOverlay(c, highlighted(r), pins.coloured(), meta.ids);
    });
    if (state.mouse) pick();
    updateSide(k);
    state.dirty = false;
  }
  function highlighted(r) { // the hovered image's index in panel r, -1 where it is not drawn
    const i = state.hover, { panel } = views[r];
    return i >= 0 && checkpointAt(timeline.index, r) >= 0 && panel.colours[4 * i + 3] > 0 ? i : -1;
  }
  function pick() {
    const r = state.mousePanel;
    const best = checkpointAt(timeline.index, r) >= 0 ? views[r].panel.pick(...state.mouse) : -1;
    if (best !== state.hover) { state.hover = best; state.dirty = true; }
    showTooltip();
  }
  function showTooltip() {
    const tip = $("tooltip"), i = state.hover, k = timeline.index;
    if (i < 0 || !state.mouse) { tip.hidden = true; return; }
    const hasPred = views.some((v) => v.panel.A.pred), hasIssues = views.some((v) => v.panel.A.issue_rank);
    const head = ["run", "checkpoint", ...(hasPred ? ["predicted"] : []), "OOD score", "OOD rank", ...(hasIssues ? ["label issue"] : [])];
    const rows = views.map(({ panel }, r) => {
      const c = checkpointAt(k, r), cells = { run: meta.runs[r], checkpoint: stepText(k, r) };
      if (c >= 0) {
        const d = panel.describe(i, c, meta.class_names);
        Object.assign(cells, { predicted: d.pred ? d.pred + (d.wrong ? " ✗" : "") : "–", "OOD score": d.ood,
          "OOD rank": `${d.rank} of ${meta.n_total}`, "label issue": d.issue || "–" });
      }
      return `<tr data-run="${r}">` + head.map((h) => `<td data-name="${h}">${escapeHTML(cells[h] ?? "")}</td>`).join("") + "</tr>";
    });
    $("tip-text").innerHTML = `<b>${escapeHTML(meta.ids[i])}</b><br>label: ${escapeHTML(meta.class_names[views[0].panel.A.labels[i]])}` +
      `<table class="tip-runs"><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>${rows.join("")}</table>` +
      `<span style="color:#666">${escapeHTML(meta.ticks[k])} · click to pin in every panel</span>`;
    FilmCore.drawThumb($("tip-thumb"), sprite, meta.sprite, i);
    const rect = views[state.mousePanel].panel.overlay.getBoundingClientRect();
    FilmCore.placeTip(tip, rect.left + state.mouse[0], rect.top + state.mouse[1]);
  }

  // --- beside the panels: titles, the run table, curves --------------------------------------------------
  const KNOWN = [["head_accuracy", "head acc"], ["knn_accuracy", "kNN acc"], ["trustworthiness", "trustworthiness"], ["silhouette", "silhouette"]];
  const carried = new Set(meta.films.flatMap((f) => Object.keys(f.metrics).filter((k) => f.metrics[k].some((v) => v !== null))));
  const METRICS = [...KNOWN.filter(([k]) => carried.has(k)),
    ...[...carried].filter((k) => !KNOWN.some(([m]) => m === k)).sort().map((k) => [k, k.replace(/_/g, " ")])];
  const plots = { loss: null, metric: null };
  let sideTick = -1;
  function updateSide(k) {
    for (const u of Object.values(plots)) FilmCore.moveCursor(u, timeline.t);
    views.forEach(({ panel, title }, r) => {
      const z = panel.camera.zoom, zoom = checkpointAt(k, r) >= 0 && z && Math.abs(z - 1) > 0.05 ? ` · zoom ×${z.toFixed(1)}` : "";
      title.textContent = stepText(k, r) + zoom;
    });
    if (k === sideTick) return;
    sideTick = k;
    $("slider").value = String(Math.round(timeline.target)); // where it is going: no tug-of-war with a drag
    $("step-readout").textContent = `${meta.ticks[k]} · tick ${k + 1} of ${T}`;
    const table = $("run-table");
    table.innerHTML = "<tr><th>run</th><th>checkpoint</th><th>loss</th>" + METRICS.map(([, label]) => `<th>${escapeHTML(label)}</th>`).join("") + "</tr>";
    meta.films.forEach((film, r) => {
      const c = checkpointAt(k, r), tr = table.insertRow();
      tr.dataset.run = String(r);
      const cell = (name, html) => { const td = tr.insertCell(); td.dataset.name = name; td.innerHTML = html; };
      cell("run", `<span class="swatch" style="background:${runColour(r)}"></span>${escapeHTML(meta.runs[r])}`);
      cell("checkpoint", escapeHTML(stepText(k, r)));
      const loss = c >= 0 ? FilmCore.lossAt(film.loss, film.steps[c]) : null;
      cell("loss", loss ? fmt(loss.value, 4) : "–");
      for (const [name] of METRICS) cell(name, c >= 0 && film.metrics[name] ? fmt(film.metrics[name][c]) : "–");
    });
    if (state.hover >= 0) showTooltip();
  }
  // Curves on the common clock (x in ticks): one series per run, joined on their x values.
  function curve(el, title, tables, height) {
    const kept = tables.map((t, r) => [t, r]).filter(([t]) => t && t[0].length);
    if (!kept.length) { el.textContent = `${title}: no data`; return null; }
    const label = (v) => (Number.isInteger(v) && v >= 0 && v < T ? short[v] : "");
    return FilmCore.makeCurve(el, { title, height, range: [0, Math.max(1, T - 1)], data: uPlot.join(kept.map(([t]) => t)),
      series: kept.map(([, r]) => ({ label: meta.runs[r], colour: runColour(r) })),
      xValues: (u, splits) => splits.map(label), onClick: (x) => { timeline.goTo(Math.round(x)); touch(); } });
  }
  function metricCurve(name) {
    if (plots.metric) plots.metric.destroy();
    $("metric-curve").innerHTML = "";
    const label = (METRICS.find(([k]) => k === name) || [name, name])[1];
    plots.metric = curve($("metric-curve"), label, meta.films.map((f) => f.clock_curves.metrics[name]), 130);
    touch();
  }
  function buildCurves() {
    if (typeof uPlot === "undefined") return;
    plots.loss = curve($("loss-curve"), "training loss", meta.films.map((f) => f.clock_curves.loss), 120);
    const select = $("metric-select");
    select.innerHTML = METRICS.map(([k, label]) => `<option value="${escapeHTML(k)}">${escapeHTML(label)}</option>`).join("");
    select.onchange = () => metricCurve(select.value);
    if (METRICS.length) metricCurve(METRICS[0][0]); else $("metric-choice").hidden = true;
  }

  // --- start -------------------------------------------------------------------------------------------
  function buildPanel(r) {
    const el = document.createElement("div");
    el.className = "panel";
    el.dataset.run = String(r);
    el.innerHTML = `<div class="panel-title" style="border-color:${runColour(r)}"><span class="run"></span> · <span class="step"></span></div>` +
      `<div class="panel-plot"><canvas class="points"></canvas><canvas class="overlay"></canvas></div>`;
    el.querySelector(".run").textContent = meta.runs[r];
    $("panels").appendChild(el);
    return el;
  }
  async function start() {
    $("clock").textContent = `Clock: ${meta.clock}.`;
    $("layout-note").textContent = meta.layout_note || "";
    $("subsample-note").textContent = meta.note || "";
    const all = await FilmCore.decodePayload("film-data", meta.arrays);
    sprite = await FilmCore.loadSprite("film-sprite");
    const scales = meta.films.map((f) => FilmCore.oodScale(f.ood_log)); // one OOD colour scale for every panel
    const oodRange = [Math.min(...scales.map((s) => s[0])), Math.max(...scales.map((s) => s[1]))];
    $("panels").style.gridTemplateColumns = `repeat(${Math.min(R, 3)}, minmax(0, 1fr))`;
    meta.films.forEach((film, r) => {
      const A = { labels: all["r0.labels"] };
      for (const name of Object.keys(all)) if (name.startsWith(`r${r}.`)) A[name.slice(`r${r}.`.length)] = all[name];
      const el = buildPanel(r), overlay = el.querySelector(".overlay");
      const panel = new FilmCore.Panel(film, A, FilmCore.dequantise(A.xy, film.dequant, N), el.querySelector(".points"), overlay,
        { N, classRGB, oodRange });
      views.push({ panel, el, title: el.querySelector(".step") });
      overlay.addEventListener("mousemove", (e) => {
        const rect = overlay.getBoundingClientRect();
        state.mouse = [e.clientX - rect.left, e.clientY - rect.top]; state.mousePanel = r;
        pick();
      });
      overlay.addEventListener("mouseleave", () => { state.mouse = null; state.mousePanel = -1; state.hover = -1; touch(); showTooltip(); });
      overlay.addEventListener("click", () => { if (state.hover >= 0) pins.toggle(state.hover); });
    });
    timeline.bind(touch);
    FilmCore.bindColour(views.some((v) => v.panel.A.pred), views.some((v) => v.panel.A.issue_rank), (mode) => { state.colour = mode; touch(); });
    const resize = () => { for (const { panel } of views) panel.resize(); touch(); };
    window.addEventListener("resize", resize);
    buildCurves();
    FilmCore.buildLegend($("legend"), meta.class_names, classRGB, state.hidden, touch);
    FilmCore.buildTicks($("ticks"), short);
    $("loading").remove();
    resize();
    timeline.jump(0);
    timeline.run(() => state.dirty, draw, debug);
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    debug.ready = true;
  }

  // --- read-only hook for tests ------------------------------------------------------------------------
  const view = (r) => views[r].panel;
  window.compareDebug = {
    get ready() { return !!debug.ready; },
    get errors() { return debug.errors.slice(); },
    get tick() { return timeline.index; },
    get t() { return timeline.t; },
    get hover() { return state.hover; },
    get pins() { return pins.list.slice(); },
    get settled() { return !timeline.moving && !state.dirty; },
    info() { return { runs: meta.runs.slice(), ticks: meta.ticks.slice(), shown: meta.shown, steps: meta.films.map((f) => f.steps.slice()),
      n: N, n_total: meta.n_total, note: meta.note, ids: meta.ids.slice() }; },
    jump(k) { timeline.jump(k); touch(); },
    play(speed) { if (speed) timeline.speed = speed; timeline.setPlaying(true); },
    pause() { timeline.setPlaying(false); },
    // Per panel now: its run, the checkpoint it shows (-1 = not started), its title, the image highlighted
    // there (-1 = none), its renderer, and each pin's trajectory vertex count ({id: count}).
    panels() {
      return views.map(({ panel, title }, r) => ({ run: meta.runs[r], checkpoint: checkpointAt(timeline.index, r), title: title.textContent,
        highlighted: highlighted(r), renderer: panel.renderer.name,
        trajectories: Object.fromEntries(pins.list.map((i) => [meta.ids[i], this.trajectory(r, i).length])) }));
    },
    positions(r, c = checkpointAt(timeline.index, r)) { return view(r).positions(c); }, // data coordinates held for run r's checkpoint c
    mapping(r) { return view(r).mapping(); }, // data -> client pixels in panel r now
    screen(r, i) { const p = view(r); return p.client([p.screen[2 * i], p.screen[2 * i + 1]]); }, // where image i is drawn in panel r
    colour(r, i) { return Array.from(view(r).colours.subarray(4 * i, 4 * i + 4)); }, // rgba as drawn; alpha 0 = hidden
    trajectory(r, i) { // client px of the vertices drawn for pinned image i in panel r, one per checkpoint of run r
      if (!pins.list.includes(i) || checkpointAt(timeline.index, r) < 0) return [];
      return view(r).trajectory(i).map((v) => view(r).client(v));
    },
    frameStats() { return FilmCore.frameStats(debug); },
    resetFrameStats() { debug.frameTimes.length = 0; debug.workTimes.length = 0; },
  };
  start().catch((e) => { debug.errors.push(String(e && e.stack || e)); console.error(e); $("loading").textContent = `could not load the comparison: ${e}`; });
})();
