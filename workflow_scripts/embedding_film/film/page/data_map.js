// The film page's data map (data_map.py): the training images at their running (variability, confidence) at the
// dynamics checkpoint that is the latest at or before the slider's step, interpolated between checkpoints like
// the scatter. A FilmCore.Panel with fixed, per-axis scaled axes (the film does not jump), the regions' borders,
// rings for labels that label noise changed, pinned images' paths up to the current checkpoint, and its own
// hover card text and its own thumbnail sheet. film.js makes one when the metadata carry a data map; without one nothing here runs.
const FilmDataMap = (function () {
  "use strict";
  const { $, fmt, escapeHTML } = FilmCore;
  const CORRECT = [60, 160, 80], WRONG = [220, 40, 40];
  const MARGIN = { l: 40, r: 10, t: 8, b: 30 };

  class MapPanel extends FilmCore.Panel {
    // dm: the data map's metadata; A: its arrays (labels, pred, ...); XY: dequantised (variability, confidence).
    constructor(dm, A, XY, points, overlay, classRGB) {
      const T = dm.steps.length;
      const film = { steps: dm.steps, limits: Array(T).fill(dm.limits), zoom: Array(T).fill(1), top_k: 0, ood_log: [0, 0] };
      super(film, A, XY, points, overlay, { N: dm.n, classRGB, oodRange: [0, 1] });
      this.dm = dm;
      this.d = -1; // the dynamics checkpoint shown (-1: before the first)
    }
    // Positions between dynamics checkpoints d0 and d1 (a = 0: d0), on fixed axes scaled per axis.
    setView(d0, d1, a) {
      const c = this.camera, [x0, x1, y0, y1] = this.dm.limits;
      c.sx = (c.W - MARGIN.l - MARGIN.r) / (x1 - x0); c.sy = (c.H - MARGIN.t - MARGIN.b) / (y1 - y0);
      const N = this.N, XY = this.XY, screen = this.screen, A0 = d0 * 2 * N, A1 = d1 * 2 * N;
      for (let j = 0; j < 2 * N; j += 2) {
        const x = XY[A0 + j] + (XY[A1 + j] - XY[A0 + j]) * a, y = XY[A0 + j + 1] + (XY[A1 + j + 1] - XY[A0 + j + 1]) * a;
        [screen[j], screen[j + 1]] = this.toScreen(x, y);
      }
    }
    toScreen(x, y) {
      const c = this.camera, [x0, , y0] = this.dm.limits;
      return [MARGIN.l + (x - x0) * c.sx, c.H - MARGIN.b - (y - y0) * c.sy];
    }
    colourOf(i, d) { return this.A.pred[d * this.N + i] === this.A.labels[i] ? CORRECT : WRONG; }
    // Axes, the regions' borders and names, label-noise rings, pinned paths (one vertex per dynamics checkpoint
    // up to the current one, then the point now), the hovered image ringed; a one-line note before the first.
    drawOverlay(d, hover, pins, note) {
      const og = this.og, c = this.camera, px = this.px, screen = this.screen, dm = this.dm;
      const [x0, x1, y0, y1] = dm.limits;
      this.clearOverlay();
      og.font = "10px system-ui, sans-serif"; og.fillStyle = "#555"; og.strokeStyle = "#999"; og.lineWidth = 1;
      const [left, bottom] = this.toScreen(x0, y0), [right, top] = this.toScreen(x1, y1);
      og.strokeRect(left, top, right - left, bottom - top);
      og.textAlign = "right";
      for (let v = 0; v <= 1.0001; v += 0.25) { const [, y] = this.toScreen(x0, v); og.fillText(v.toFixed(2), left - 3, y + 3); }
      og.textAlign = "center";
      const every = x1 > 0.6 ? 0.2 : 0.1;
      for (let v = 0; v <= x1 + 1e-9; v += every) { const [x] = this.toScreen(v, y0); og.fillText(v.toFixed(1), x, bottom + 11); }
      og.fillText("variability (running std of p(given label))", (left + right) / 2, bottom + 23);
      og.save(); og.translate(10, (top + bottom) / 2); og.rotate(-Math.PI / 2); og.fillText("confidence (running mean)", 0, 0); og.restore();
      const [xa] = this.toScreen(dm.ambiguous_variability, y0), [, ye] = this.toScreen(x0, dm.easy_confidence);
      og.setLineDash([4, 3]); og.strokeStyle = "#888";
      og.beginPath(); og.moveTo(xa, top); og.lineTo(xa, bottom); og.moveTo(left, ye); og.lineTo(xa, ye); og.stroke();
      og.setLineDash([]); og.fillStyle = "#888"; og.font = "11px system-ui, sans-serif";
      og.textAlign = "left"; og.fillText(dm.regions[0], left + 4, top + 12); og.fillText(dm.regions[2], left + 4, bottom - 5);
      og.textAlign = "right"; og.fillText(dm.regions[1], right - 4, top + 12);
      og.textAlign = "left";
      if (d < 0) {
        og.fillStyle = "#444"; og.font = "12px system-ui, sans-serif"; og.textAlign = "center";
        og.fillText(note, (left + right) / 2, (top + bottom) / 2); og.textAlign = "left";
        return;
      }
      og.strokeStyle = "#000"; og.lineWidth = 1;
      for (let i = 0; i < this.N; i++) {
        if (!this.A.noisy[i] || this.colours[4 * i + 3] === 0) continue;
        og.beginPath(); og.arc(screen[2 * i], screen[2 * i + 1], px / 2 + 2.5, 0, 2 * Math.PI); og.stroke();
      }
      og.font = "bold 11px system-ui, sans-serif";
      for (const [i, colour] of pins) this.drawPin(i, colour, this.path(i, d), dm.ids[i]);
      this.drawHover(hover);
    }
    // Image i's path: a vertex per dynamics checkpoint 0..d, then where it is drawn now (CSS px in the panel).
    path(i, d) {
      const out = Array.from({ length: d + 1 }, (_, k) => this.vertex(k, i));
      out.push([this.screen[2 * i], this.screen[2 * i + 1]]);
      return out;
    }
    // What dynamics checkpoint d says of image i (the hover card's lines, HTML).
    card(i, d, classNames, filmStep) {
      const A = this.A, dm = this.dm, k = d * this.N + i, label = A.labels[i], pred = A.pred[k];
      const x = this.XY[2 * k], y = this.XY[2 * k + 1];
      const now = x >= dm.ambiguous_variability ? dm.regions[1] : y > dm.easy_confidence ? dm.regions[0] : dm.regions[2];
      const name = (c) => escapeHTML(classNames[c] ?? String(c));
      const lines = [`<b>${escapeHTML(dm.ids[i])}</b> (training image)`, `given label: ${name(label)}`];
      if (A.noisy[i]) lines.push(`<span style="color:#a00">changed by label noise (was ${name(A.original[i])})</span>`);
      lines.push(`predicted: ${name(pred)}` + (pred !== label ? " ✗" : " ✓"));
      lines.push(`confidence: ${fmt(y)} · variability: ${fmt(x)}`);
      lines.push(`region now: ${now} · over all: ${dm.regions[A.region[i]]}`);
      lines.push(`label-error score: ${fmt(A.score[i])} · rank ${A.rank[i]} of ${dm.n_total}`);
      lines.push(`<span style="color:#666">step ${filmStep} · dynamics checkpoint ${d + 1} of ${dm.steps.length} (step ${dm.steps[d]}) · click to pin</span>`);
      return lines.join("<br>");
    }
    positionsAt(d) { // (variability, confidence) held for dynamics checkpoint d
      const x = new Array(this.N), y = new Array(this.N), base = d * 2 * this.N;
      for (let i = 0; i < this.N; i++) { x[i] = this.XY[base + 2 * i]; y[i] = this.XY[base + 2 * i + 1]; }
      return { x, y };
    }
  }

  // The panel's section, made only for a page with a data map: title, canvases, legend and note.
  function makeSection(dm, nNoisyShown) {
    const section = document.createElement("section");
    section.id = "datamap";
    const swatch = (rgb) => `<span class="swatch" style="background:${FilmCore.css(rgb)}"></span>`;
    const noise = dm.noise_on
      ? ` <span class="dm-key"><span class="swatch ring"></span>label changed by label noise (${nNoisyShown} shown of ${dm.noisy_total})</span>`
      : "";
    section.innerHTML = `<div class="dm-title"><b>Data map</b> of the training images
      <span id="dm-step"></span></div>
      <div class="dm-plot"><canvas id="dm-points"></canvas><canvas id="dm-overlay"></canvas></div>
      <div class="dm-legend"><span class="dm-key">${swatch(CORRECT)}predicted = given label</span>
      <span class="dm-key">${swatch(WRONG)}predicted ≠ given</span>${noise}</div>
      <div id="dm-note">${escapeHTML(dm.note || "")}</div>`;
    $("plot").after(section);
    document.querySelector("main").classList.add("with-map");
    return section;
  }

  async function spriteFromBytes(bytes) { // the training thumbnails' WebP sheet, carried in the payload
    const img = new Image();
    img.src = URL.createObjectURL(new Blob([bytes], { type: "image/webp" }));
    await img.decode();
    return img;
  }

  return { MapPanel, makeSection, spriteFromBytes };
})();
