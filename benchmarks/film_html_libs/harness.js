// Shared: random film data, an rAF loop that advances 0.2 checkpoints per frame and measures frame intervals.
window.makeData = function (N, S) {
  let seed = 1; const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const pos = new Float32Array(S * N * 2), cls = new Uint8Array(N);
  for (let i = 0; i < N; i++) { cls[i] = i % 10; pos[2 * i] = rnd() * 2 - 1; pos[2 * i + 1] = rnd() * 2 - 1; }
  for (let s = 1; s < S; s++) for (let j = 0; j < 2 * N; j++) pos[s * 2 * N + j] = pos[(s - 1) * 2 * N + j] * 0.97 + (rnd() - 0.5) * 0.1;
  return { N, S, pos, cls };
};
window.runBench = async function (lib, N, S, frames) {
  const d = makeData(N, S);
  const t0 = performance.now();
  await lib.init(document.getElementById("plot"), d);
  const initMs = performance.now() - t0;
  const cur = new Float32Array(2 * N);
  let t = 0; const deltas = [], work = [];
  let last = null;
  return new Promise((resolve) => {
    function frame(now) {
      if (last !== null) deltas.push(now - last);
      last = now;
      const w0 = performance.now();
      t = (t + 0.2) % (S - 1);
      const s = Math.floor(t), a = t - s, A = s * 2 * N, B = A + 2 * N;
      for (let j = 0; j < 2 * N; j++) cur[j] = d.pos[A + j] * (1 - a) + d.pos[B + j] * a;
      lib.update(cur, d);
      work.push(performance.now() - w0);
      if (deltas.length >= frames) {
        const med = (x) => x.slice().sort((p, q) => p - q)[Math.floor(x.length / 2)];
        const p95 = (x) => x.slice().sort((p, q) => p - q)[Math.floor(x.length * 0.95)];
        resolve({ initMs, medianFrame: med(deltas), p95Frame: p95(deltas), medianWork: med(work), updated: 1 - (lib.skipped || 0) / work.length });
      } else requestAnimationFrame(frame);
    }
    requestAnimationFrame(frame);
  });
};
