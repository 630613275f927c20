const W = 800, H = 600;
const COLORS = ["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
window.LIBS = {
  "deck.gl": {
    async init(el, d) {
      const { Deck, OrthographicView, ScatterplotLayer } = deck;
      this.SL = ScatterplotLayer;
      this.col = new Uint8Array(4 * d.N);
      const rgb = COLORS.map((h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16)));
      for (let i = 0; i < d.N; i++) { this.col.set([...rgb[d.cls[i]], 200], 4 * i); }
      this.deck = new Deck({ parent: el, width: W, height: H, views: new OrthographicView(), initialViewState: { target: [0, 0, 0], zoom: 8 }, controller: false, layers: [] });
      this.v = 0;
      await new Promise((r) => setTimeout(r, 500));
    },
    update(cur, d) {
      this.v++;
      this.deck.setProps({ layers: [new this.SL({ id: "p", data: { length: d.N, attributes: { getPosition: { value: cur, size: 2 }, getFillColor: { value: this.col, size: 4 } } }, radiusUnits: "pixels", getRadius: 2, updateTriggers: { getPosition: this.v } })] });
    },
  },
  "echarts": {
    async init(el, d) {
      el.style.width = W + "px"; el.style.height = H + "px";
      this.chart = echarts.init(el, null, { renderer: "canvas" });
      this.data = Array.from({ length: d.N }, (_, i) => [d.pos[2*i], d.pos[2*i+1], d.cls[i]]);
      this.chart.setOption({ animation: false, xAxis: { min: -1.2, max: 1.2 }, yAxis: { min: -1.2, max: 1.2 },
        series: [{ type: "scatter", symbolSize: 4, large: true, largeThreshold: 2000, data: this.data, itemStyle: { color: (p) => COLORS[p.data[2]] } }] });
    },
    update(cur, d) {
      for (let i = 0; i < d.N; i++) { this.data[i][0] = cur[2*i]; this.data[i][1] = cur[2*i+1]; }
      this.chart.setOption({ series: [{ data: this.data }] });
    },
  },
  "plotly-gl2d": {
    async init(el, d) {
      el.style.width = W + "px"; el.style.height = H + "px";
      this.x = new Float32Array(d.N); this.y = new Float32Array(d.N);
      await Plotly.newPlot(el, [{ type: "scattergl", mode: "markers", x: this.x, y: this.y, marker: { size: 4, color: Array.from(d.cls, (c) => COLORS[c]) } }],
        { width: W, height: H, xaxis: { range: [-1.2, 1.2] }, yaxis: { range: [-1.2, 1.2] } }, { staticPlot: false });
      this.el = el;
    },
    update(cur, d) {
      const x = new Float32Array(d.N), y = new Float32Array(d.N);
      for (let i = 0; i < d.N; i++) { x[i] = cur[2*i]; y[i] = cur[2*i+1]; }
      Plotly.restyle(this.el, { x: [x], y: [y] });
    },
  },
  "canvas2d (hand)": {
    async init(el, d) {
      const c = document.createElement("canvas"); c.width = W; c.height = H; el.appendChild(c); this.ctx = c.getContext("2d");
      this.byClass = COLORS.map((_, k) => Array.from(d.cls.keys()).filter((i) => d.cls[i] === k));
    },
    update(cur, d) {
      const g = this.ctx; g.clearRect(0, 0, W, H); g.globalAlpha = 0.8;
      this.byClass.forEach((idx, k) => { g.fillStyle = COLORS[k]; g.beginPath();
        for (const i of idx) { const x = (cur[2*i] + 1.2) / 2.4 * W, y = (1.2 - cur[2*i+1]) / 2.4 * H; g.rect(x - 2, y - 2, 4, 4); }
        g.fill(); });
    },
  },
  "webgl (hand)": {
    async init(el, d) {
      const c = document.createElement("canvas"); c.width = W; c.height = H; el.appendChild(c);
      const gl = (this.gl = c.getContext("webgl", { antialias: false }));
      const sh = (t, s) => { const o = gl.createShader(t); gl.shaderSource(o, s); gl.compileShader(o); return o; };
      const p = gl.createProgram();
      gl.attachShader(p, sh(gl.VERTEX_SHADER, "attribute vec2 p; attribute vec3 c; varying vec3 v; void main(){ gl_Position=vec4(p/1.2,0.,1.); gl_PointSize=4.; v=c; }"));
      gl.attachShader(p, sh(gl.FRAGMENT_SHADER, "precision mediump float; varying vec3 v; void main(){ vec2 q=gl_PointCoord-.5; if(dot(q,q)>.25) discard; gl_FragColor=vec4(v,1.); }"));
      gl.linkProgram(p); gl.useProgram(p);
      this.pb = gl.createBuffer(); const cb = gl.createBuffer();
      const col = new Float32Array(3 * d.N); const rgb = COLORS.map((h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16) / 255));
      for (let i = 0; i < d.N; i++) col.set(rgb[d.cls[i]], 3 * i);
      gl.bindBuffer(gl.ARRAY_BUFFER, cb); gl.bufferData(gl.ARRAY_BUFFER, col, gl.STATIC_DRAW);
      const lc = gl.getAttribLocation(p, "c"); gl.enableVertexAttribArray(lc); gl.vertexAttribPointer(lc, 3, gl.FLOAT, false, 0, 0);
      this.lp = gl.getAttribLocation(p, "p"); gl.enableVertexAttribArray(this.lp);
    },
    update(cur, d) {
      const gl = this.gl; gl.clearColor(1, 1, 1, 1); gl.clear(gl.COLOR_BUFFER_BIT);
      gl.bindBuffer(gl.ARRAY_BUFFER, this.pb); gl.bufferData(gl.ARRAY_BUFFER, cur, gl.DYNAMIC_DRAW);
      gl.vertexAttribPointer(this.lp, 2, gl.FLOAT, false, 0, 0); gl.drawArrays(gl.POINTS, 0, d.N);
    },
  },
};
const REGL_BASE = {
    async init(el, d) {
      const c = document.createElement("canvas"); c.width = W; c.height = H; c.style.width = W + "px"; c.style.height = H + "px"; el.appendChild(c);
      this.sp = createScatterplot({ canvas: c, width: W, height: H, pointSize: 4, colorBy: "valueA", pointColor: COLORS });
      this.x = new Float32Array(d.N); this.y = new Float32Array(d.N); this.z = Array.from(d.cls);
      for (let i = 0; i < d.N; i++) { this.x[i] = d.pos[2*i]; this.y[i] = d.pos[2*i+1]; }
      await this.sp.draw({ x: this.x, y: this.y, z: this.z }, { zDataType: "categorical" });
    },
    update(cur, d) {
      for (let i = 0; i < d.N; i++) { this.x[i] = cur[2*i]; this.y[i] = cur[2*i+1]; }
      this.sp.draw({ x: this.x, y: this.y, z: this.z }, { zDataType: "categorical", preventFilterReset: true });
    },
};
LIBS["regl-scatterplot (await)"] = Object.assign({}, REGL_BASE, {
  update(cur, d) {
    if (this.busy) { this.skipped = (this.skipped || 0) + 1; return; }
    for (let i = 0; i < d.N; i++) { this.x[i] = cur[2*i]; this.y[i] = cur[2*i+1]; }
    this.busy = true;
    this.sp.draw({ x: this.x, y: this.y, z: this.z }, { zDataType: "categorical", preventFilterReset: true }).then(() => { this.busy = false; });
  },
});
