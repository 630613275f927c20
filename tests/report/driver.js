// Appended to a COPY of a Snakemake HTML report by tests/workflow/test_report.py, then run in headless Chromium.
// It reads the report as a person would, through its menus: Film > Animation (the GIF download and the
// inline player), Film > Training (the loss curve), Frames (browsable by checkpoint), and records what
// is on screen as JSON in the body attribute data-film-check. location.hash picks the view left on
// screen for a screenshot: #check (all, ends on the film), #film, #loss, #frame (?checkpoint=NN).
(function () {
  "use strict";
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const record = { errors: [] };
  window.addEventListener("error", (e) => record.errors.push(String(e.message)));
  const save = () => document.body.setAttribute("data-film-check", JSON.stringify(record));
  const text = (el) => (el.textContent || "").trim();
  const links = () => Array.from(document.querySelectorAll("a"));
  const rows = () => Array.from(document.querySelectorAll("tr"));

  async function clickText(label) {
    const a = links().find((el) => text(el) === label);
    if (!a) throw new Error(`no link '${label}' among: ${links().map(text).filter(Boolean).join(" | ")}`);
    a.click();
    await sleep(300);
  }
  async function home() {  // back to the results menu through the breadcrumbs, when inside a category
    if (links().some((el) => text(el) === "Results")) await clickText("Results");
  }
  function row(label) {  // the result row whose first cell (its label) is `label`
    const found = rows().find((tr) => tr.querySelector("td") && text(tr.querySelector("td")) === label);
    if (!found) throw new Error(`no result '${label}' among: ${rows().map(text).join(" | ")}`);
    return found;
  }
  async function shown() {  // the image or page now in the content pane
    await sleep(300);
    const frame = document.querySelector("iframe[src^='data:text/html']");
    if (frame) {
      const page = atob(frame.src.slice(frame.src.indexOf(",") + 1));
      const media = page.match(/id="film" src="data:([^;]+);base64,/);
      return { type: "text/html", embeds: media ? media[1] : null, bytes: page.length };
    }
    // the result, not the Snakemake logo (an SVG)
    const img = Array.from(document.querySelectorAll("img")).filter(
      (i) => i.src.startsWith("data:image/") && !i.src.startsWith("data:image/svg")).pop();
    if (!img) return null;
    // wait until decoded (img.decode() alone can stall under --virtual-time-budget)
    for (let i = 0; i < 50 && !(img.complete && img.naturalWidth > 0); i++) await sleep(100);
    return { type: img.src.slice(5, img.src.indexOf(";")), width: img.naturalWidth, height: img.naturalHeight };
  }

  async function film() {
    await home();
    await clickText("Film");
    record.film_subcategories = links().map(text).filter((t) => ["Animation", "Explorable film", "Metrics", "Training"].includes(t));
    await clickText("Animation");
    record.animation_formats = rows().map((tr) => tr.querySelector("td")).filter(Boolean).map(text);
    const gif = row("gif").querySelector("a");
    record.gif_download = { href: gif.getAttribute("href").slice(0, 22), download: gif.getAttribute("download") };
    row("player").querySelector("a").click();
    record.player = await shown();
    save();
  }
  async function loss() {
    await home();
    await clickText("Film");
    await clickText("Training");
    rows().find((tr) => tr.querySelector("a")).querySelector("a").click();
    record.loss_curve = await shown();
    save();
  }
  async function metrics() {
    await home();
    await clickText("Film");
    await clickText("Metrics");
    record.metrics = rows().map(text).filter(Boolean);
    save();
  }
  async function frame(checkpoint) {
    await home();
    await clickText("Frames");
    record.frame_header = Array.from(document.querySelectorAll("th")).map(text);
    record.frame_checkpoints = rows().map((tr) => tr.querySelector("td")).filter(Boolean).map(text);
    row(checkpoint).querySelector("a").click();
    record.frame = await shown();
    save();
  }

  async function main() {
    for (let i = 0; i < 100 && typeof app === "undefined"; i++) await sleep(100);
    record.categories = typeof categories === "undefined" ? null : Object.keys(categories);
    const mode = location.hash.slice(1) || "check";
    const checkpoint = new URLSearchParams(location.search).get("checkpoint") || "";
    try {
      if (mode === "check") { await metrics(); await loss(); await frame(checkpoint); await film(); }
      else if (mode === "film") await film();
      else if (mode === "loss") await loss();
      else await frame(checkpoint);
    } catch (e) {
      record.errors.push(String(e));
    }
    record.done = true;
    save();
  }
  window.addEventListener("load", () => { main(); });
})();
