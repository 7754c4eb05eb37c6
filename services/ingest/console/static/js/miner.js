/* One miner's page: figures and workers from GET /api/miners/{miner}/stats, then live from
   /live?miner= (`miner` and `worker` records); history charts from /api/miners/{miner}/history. */
(function () {
  "use strict";
  const C = window.Chimera;
  const page = C.pageData();
  const pool = page.pool || "main";
  const miner = String(page.miner || "");
  const windows = page.windows || ["1m", "5m", "15m", "1h", "24h"];
  const base = "/api/miners/" + encodeURIComponent(miner);
  const HOUR_S = 3600;
  const DAY_S = 86400;
  const CHART_HEIGHT = 240;
  const AGO_TICK_MS = 5 * 1000;
  // Counts over 24 h (accepted, rejected, stale, best share) are not in the snapshot records.
  const STATS_REFRESH_MS = 60 * 1000;
  const HOUR_CHART_REFRESH_MS = 60 * 1000; // a point a minute
  const DAY_CHART_REFRESH_MS = 5 * 60 * 1000; // a point an hour: the current one fills slowly
  const workers = new Map(); // worker name -> what the page knows of it (the API's shape)
  const rows = new Map(); // worker name -> its <tr>
  const history = { hour: null, day: null }; // {xs, perWorker: Map(name -> [hashrate per x])}
  const charts = {};
  let workerWindow = "1h";
  let minerLastShare = null;

  function byWindow(value, window) {
    // The stats API gives the miner's efficiency as one number (24 h), a snapshot by window.
    return value !== null && typeof value === "object" ? value[window] : value;
  }

  function isoOfMs(ms) {
    return typeof ms === "number" ? new Date(ms).toISOString() : null;
  }

  /* ---- the miner's figures ---- */

  function showMinerFigures(figures) {
    for (const w of windows) {
      if (figures.hashrate) C.setText(C.field("hashrate-" + w), C.fmt.hashrate(byWindow(figures.hashrate, w)));
      if (figures.hashrate_lower) C.setText(C.field("hashrate-lower-" + w), C.fmt.hashrate(byWindow(figures.hashrate_lower, w)));
      if (figures.hashrate_upper) C.setText(C.field("hashrate-upper-" + w), C.fmt.hashrate(byWindow(figures.hashrate_upper, w)));
      if (figures.shares) C.setText(C.field("shares-" + w), C.fmt.count(byWindow(figures.shares, w)));
    }
    if (figures.hashrate) C.setText(C.field("hashrate-headline"), C.fmt.hashrate(byWindow(figures.hashrate, "1h")));
    if (figures.efficiency !== undefined) {
      C.setText(C.field("efficiency"), C.fmt.percent(byWindow(figures.efficiency, "24h"), 2));
    }
  }

  /* Workers online and total: from the worker rows (stats) or the miner record (live). */
  function showWorkerCounts(online, total) {
    C.setText(C.field("workers-online"), C.fmt.count(online));
    C.setText(C.field("workers-total"), C.fmt.count(total));
  }

  function showLastShare() {
    const node = C.field("last-share");
    C.setText(node, C.fmt.ago(minerLastShare));
    node.title = minerLastShare ? C.fmt.time(minerLastShare) : "";
  }

  /* ---- the workers table ---- */

  function cell(name, text, cls) {
    return C.el("td", { cls: cls || "num", text: text, attrs: { "data-field": name } });
  }

  function workerRow(name) {
    const chartButton = C.el("button", { cls: "link-button", text: "Chart",
                                         attrs: { type: "button", "aria-label": "Chart of worker " + name } });
    chartButton.addEventListener("click", function () { chooseChartWorker(name); });
    const last = C.el("time", { attrs: { "data-field": "worker-last-share" } });
    const tr = C.el("tr", { attrs: { "data-worker": name } }, [
      C.el("th", { text: name, attrs: { scope: "row", "data-field": "worker-name" } }),
      C.el("td", {}, [C.el("span", { cls: "state", attrs: { "data-field": "worker-state" } })]),
      C.el("td", {}, [last]),
      cell("worker-hashrate", C.DASH),
      cell("worker-interval", C.DASH),
      cell("worker-shares", C.DASH),
      cell("worker-accepted", C.DASH),
      cell("worker-rejected", C.DASH),
      cell("worker-stale", C.DASH),
      cell("worker-best", C.DASH),
      C.el("td", {}, [chartButton]),
    ]);
    return tr;
  }

  function fillRow(tr, worker) {
    const state = C.field("worker-state", tr);
    const known = typeof worker.online === "boolean";
    state.textContent = known ? (worker.online ? "online" : "offline") : C.DASH;
    state.className = "state " + (known ? (worker.online ? "online" : "offline") : "");
    tr.setAttribute("data-online", known ? String(worker.online) : "");
    const last = C.field("worker-last-share", tr);
    C.setText(last, C.fmt.ago(worker.last_share_at));
    if (worker.last_share_at) {
      last.setAttribute("datetime", worker.last_share_at);
      last.title = C.fmt.time(worker.last_share_at);
    }
    C.setText(C.field("worker-hashrate", tr), C.fmt.hashrate(byWindow(worker.hashrate, workerWindow)));
    C.setText(C.field("worker-interval", tr), C.fmt.hashrate(byWindow(worker.hashrate_lower, workerWindow)) +
              " – " + C.fmt.hashrate(byWindow(worker.hashrate_upper, workerWindow)));
    C.setText(C.field("worker-shares", tr), C.fmt.count(byWindow(worker.shares, workerWindow)));
    C.setText(C.field("worker-accepted", tr), C.fmt.count(worker.accepted));
    C.setText(C.field("worker-rejected", tr), C.fmt.count(worker.rejected));
    C.setText(C.field("worker-stale", tr), C.fmt.count(worker.stale));
    C.setText(C.field("worker-best", tr), C.fmt.count(worker.best_difficulty));
  }

  function orderedNames() {
    return Array.from(workers.keys()).sort(function (a, b) { return a < b ? -1 : a > b ? 1 : 0; });
  }

  /* Rows kept per worker, so a live record touches only its own row. */
  function drawWorkers() {
    const body = C.field("workers");
    const names = orderedNames();
    for (const name of names) {
      let tr = rows.get(name);
      if (!tr) { tr = workerRow(name); rows.set(name, tr); }
      fillRow(tr, workers.get(name));
      body.appendChild(tr); // moves an existing row into name order
    }
    let online = 0;
    for (const worker of workers.values()) if (worker.online === true) online += 1;
    C.setText(C.field("workers-count"), C.fmt.count(names.length));
    C.field("workers-status").textContent = names.length ? "" : "no worker sent a share in the last 24 hours";
    return online;
  }

  function syncChartChoices() {
    const select = C.field("chart-worker");
    const have = new Set(Array.from(select.options).map(function (o) { return o.value; }));
    for (const name of orderedNames()) {
      if (!have.has(name)) select.appendChild(C.el("option", { text: name, attrs: { value: name } }));
    }
  }

  async function loadStats() {
    const stats = await C.api(base + "/stats", { query: { pool: pool } });
    showMinerFigures(stats);
    const listed = new Set();
    for (const worker of stats.workers || []) {
      listed.add(worker.worker);
      workers.set(worker.worker, Object.assign({}, worker));
    }
    // A refresh drops the workers that left the 24 h the API covers.
    for (const name of Array.from(workers.keys())) {
      if (listed.has(name)) continue;
      workers.delete(name);
      const tr = rows.get(name);
      if (tr) tr.remove();
      rows.delete(name);
    }
    const online = drawWorkers();
    showWorkerCounts(online, workers.size);
    let newest = null;
    for (const worker of workers.values()) {
      if (worker.last_share_at && (newest === null || worker.last_share_at > newest)) newest = worker.last_share_at;
    }
    minerLastShare = newest;
    showLastShare();
    syncChartChoices();
    // The API's windows end at the start of the current minute.
    C.setText(C.field("as-of"), C.fmt.time(new Date(Math.floor(Date.now() / 60000) * 60000).toISOString()));
  }

  /* ---- live records ---- */

  function onMiner(record) {
    if (!record || record.miner !== miner || record.pool !== pool || !record.figures) return;
    const figures = record.figures;
    showMinerFigures(figures);
    if (typeof figures.workers_online === "number") showWorkerCounts(figures.workers_online, figures.workers_total);
    if (typeof figures.last_share_at_ms === "number") {
      minerLastShare = isoOfMs(figures.last_share_at_ms);
      showLastShare();
    }
    if (typeof figures.as_of_ms === "number") C.setText(C.field("as-of"), C.fmt.time(isoOfMs(figures.as_of_ms)));
  }

  function onWorker(record) {
    if (!record || record.miner !== miner || record.pool !== pool || typeof record.worker !== "string") return;
    const figures = record.figures || {};
    const worker = workers.get(record.worker) || { worker: record.worker };
    for (const name of ["hashrate", "hashrate_lower", "hashrate_upper", "shares"]) {
      if (figures[name] && typeof figures[name] === "object") worker[name] = figures[name];
    }
    if (typeof figures.online === "boolean") worker.online = figures.online;
    if (typeof figures.last_share_at_ms === "number") worker.last_share_at = isoOfMs(figures.last_share_at_ms);
    const isNew = !workers.has(record.worker);
    workers.set(record.worker, worker);
    if (isNew) { drawWorkers(); syncChartChoices(); return; }
    fillRow(rows.get(record.worker), worker);
  }

  function setLive(text, cls) {
    const node = C.field("live-status");
    node.textContent = text;
    node.className = "live " + cls;
  }

  /* ---- history charts ---- */

  /* [from, to) of complete steps: a step still filling would read low (its shares over the whole step). */
  function columnsOf(answer, spanS, stepS, toS) {
    // Every step of the span, so a worker without shares in a step draws 0, not a gap.
    const xs = [];
    for (let x = toS - spanS; x < toS; x += stepS) xs.push(x);
    const index = new Map(xs.map(function (x, i) { return [x, i]; }));
    const perWorker = new Map();
    for (const row of Array.isArray(answer) ? answer : []) {
      const i = index.get(Math.floor(Date.parse(row.ts) / 1000));
      if (i === undefined) continue;
      let series = perWorker.get(row.worker);
      if (!series) { series = xs.map(function () { return 0; }); perWorker.set(row.worker, series); }
      series[i] = row.hashrate;
    }
    return { xs: xs, perWorker: perWorker };
  }

  function chartOptions(width, series) {
    const axis = { stroke: "#a9b4c0", grid: { stroke: "#2c3a48" }, ticks: { stroke: "#2c3a48" } };
    return {
      width: width,
      height: CHART_HEIGHT,
      scales: { x: { time: true } },
      axes: [axis, Object.assign({}, axis, { size: 80, values: function (_, ticks) { return ticks.map(C.fmt.hashrate); } })],
      series: [{}].concat(series),
    };
  }

  function drawChart(name) {
    const data = history[name];
    const holder = document.getElementById("chart-" + name);
    const status = C.field("chart-" + name + "-status");
    if (!data) return;
    const chosen = C.field("chart-worker").value;
    const total = data.xs.map(function (_, i) {
      let sum = 0;
      for (const series of data.perWorker.values()) sum += series[i];
      return sum;
    });
    const value = function (_, v) { return C.fmt.hashrate(v); };
    const series = [{ label: "Miner " + miner, stroke: "#5cc8ff", width: 2, value: value }];
    const columns = [data.xs, total];
    if (chosen) {
      series.push({ label: "Worker " + chosen, stroke: "#ffd166", width: 2, value: value });
      columns.push(data.perWorker.get(chosen) || data.xs.map(function () { return 0; }));
    }
    status.textContent = data.perWorker.size ? "" : "no shares in this span";
    if (charts[name]) charts[name].destroy();
    charts[name] = new uPlot(chartOptions(holder.clientWidth || 600, series), columns, holder);
  }

  async function loadChart(name, spanS, step, stepS) {
    const status = C.field("chart-" + name + "-status");
    const toS = Math.floor(Date.now() / 1000 / stepS) * stepS;
    let answer;
    try {
      answer = await C.api(base + "/history", {
        query: { pool: pool, from: new Date((toS - spanS) * 1000).toISOString(),
                 to: new Date(toS * 1000).toISOString(), step: step },
      });
    } catch (error) {
      C.setText(status, error.status === 404 ? "not available" : "could not load: " + error.message);
      return;
    }
    history[name] = columnsOf(answer, spanS, stepS, toS);
    drawChart(name);
  }

  function chooseChartWorker(name) {
    const select = C.field("chart-worker");
    select.value = name;
    drawChart("hour");
    drawChart("day");
    document.getElementById("history-heading").scrollIntoView({ block: "start" });
  }

  function resizeCharts() {
    for (const name of Object.keys(charts)) {
      const holder = document.getElementById("chart-" + name);
      charts[name].setSize({ width: holder.clientWidth || 600, height: CHART_HEIGHT });
    }
  }

  function refreshAgo() {
    showLastShare();
    for (const [name, tr] of rows) C.setText(C.field("worker-last-share", tr), C.fmt.ago(workers.get(name).last_share_at));
  }

  async function start() {
    C.field("worker-window").addEventListener("change", function (event) {
      workerWindow = windows.includes(event.target.value) ? event.target.value : "1h";
      C.setText(C.field("worker-window-label"), workerWindow);
      for (const [name, tr] of rows) fillRow(tr, workers.get(name));
    });
    C.field("chart-worker").addEventListener("change", function () { drawChart("hour"); drawChart("day"); });
    const statsLoaded = loadStats().catch(function (error) {
      C.setText(C.field("workers-status"), error.status === 404 ? "not available" : "could not load: " + error.message);
    });
    await Promise.allSettled([statsLoaded, loadChart("hour", HOUR_S, "1m", 60), loadChart("day", DAY_S, "1h", 3600)]);
    C.markReady();
    C.live({ pool: pool, miner: miner }, {
      miner: onMiner,
      worker: onWorker,
      open: function () { setLive("live", "connected"); },
      error: function () { setLive("reconnecting…", "disconnected"); },
    });
    setInterval(refreshAgo, AGO_TICK_MS);
    setInterval(function () { loadStats().catch(function () { /* the next refresh tries again */ }); }, STATS_REFRESH_MS);
    setInterval(function () { loadChart("hour", HOUR_S, "1m", 60); }, HOUR_CHART_REFRESH_MS);
    setInterval(function () { loadChart("day", DAY_S, "1h", 3600); }, DAY_CHART_REFRESH_MS);
    window.addEventListener("resize", resizeCharts);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
