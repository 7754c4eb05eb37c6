/* The pool page: figures from GET /api/pool/stats, then live from /live `pool` records;
   two charts with their 95% band from /api/pool/history; blocks; firing alerts. */
(function () {
  "use strict";
  const C = window.Chimera;
  const page = C.pageData();
  const pool = page.pool || "main";
  const windows = page.windows || ["1m", "5m", "15m", "1h", "24h"];
  const HOUR_S = 3600;
  const DAY_S = 86400;
  const BLOCKS_SHOWN = 10;
  const STATS_POLL_MS = 30 * 1000;
  const windowMs = page.window_ms || {};
  let firstDataMs = null; // the pool's first minute with data, from the stats API
  const firing = new Map(); // fingerprint -> alert
  const charts = {};

  function byWindow(value, window) {
    // The stats API gives some figures as one number, the snapshot by window.
    return value !== null && typeof value === "object" ? value[window] : value;
  }

  /* A window reaching back before the pool's first data reads low: the stats API says so;
     a live record's window is judged from its as_of_ms and the first data the API gave. */
  function isFilling(figures, w) {
    if (figures.filling) return figures.filling[w] === true;
    if (firstDataMs === null || typeof figures.as_of_ms !== "number" || !windowMs[w]) return false;
    return figures.as_of_ms - windowMs[w] < firstDataMs;
  }

  function showFigures(figures) {
    for (const w of windows) {
      C.setText(C.field("hashrate-" + w), C.fmt.hashrate(byWindow(figures.hashrate, w)));
      C.setText(C.field("hashrate-lower-" + w), C.fmt.hashrate(byWindow(figures.hashrate_lower, w)));
      C.setText(C.field("hashrate-upper-" + w), C.fmt.hashrate(byWindow(figures.hashrate_upper, w)));
      C.setText(C.field("shares-" + w), C.fmt.count(byWindow(figures.shares, w)));
      const filling = C.field("filling-" + w);
      if (filling) filling.hidden = !isFilling(figures, w);
    }
    C.setText(C.field("shares-per-second"), C.fmt.number(byWindow(figures.shares_per_second, "5m"), 2));
    C.setText(C.field("efficiency"), C.fmt.percent(byWindow(figures.efficiency, "24h"), 2));
    C.setText(C.field("active-miners"), C.fmt.count(figures.active_miners));
    C.setText(C.field("active-workers"), C.fmt.count(figures.active_workers));
    C.setText(C.field("blocks-found"), C.fmt.count(figures.blocks_found));
    C.setText(C.field("round-effort"), C.fmt.percent(figures.round_effort, 1));
    const luck = figures.luck || {};
    for (const n of ["64", "128", "256"]) C.setText(C.field("luck-" + n), C.fmt.percent(luck[n], 1));
  }

  async function loadStats() {
    const stats = await C.api("/api/pool/stats", { query: { pool: pool } });
    firstDataMs = stats.first_data_at ? Date.parse(stats.first_data_at) : null;
    showFigures(stats);
    C.setText(C.field("as-of"), C.fmt.time(stats.as_of));
  }

  function chartOptions(width, title) {
    return {
      title: title,
      width: width,
      height: 240,
      scales: { x: { time: true } },
      axes: [
        { stroke: "#a9b4c0", grid: { stroke: "#2c3a48" }, ticks: { stroke: "#2c3a48" } },
        {
          stroke: "#a9b4c0", grid: { stroke: "#2c3a48" }, ticks: { stroke: "#2c3a48" }, size: 80,
          values: function (_, ticks) { return ticks.map(C.fmt.hashrate); },
        },
      ],
      series: [
        {},
        { label: "95% low", stroke: "rgba(92,200,255,0.35)", width: 1, value: function (_, v) { return C.fmt.hashrate(v); } },
        { label: "Hashrate", stroke: "#5cc8ff", width: 2, value: function (_, v) { return C.fmt.hashrate(v); } },
        { label: "95% high", stroke: "rgba(92,200,255,0.35)", width: 1, value: function (_, v) { return C.fmt.hashrate(v); } },
      ],
      // The band between the interval's bounds: upper (series 3) filled down to lower (series 1).
      bands: [{ series: [3, 1], fill: "rgba(92,200,255,0.15)" }],
    };
  }

  function toColumns(rows) {
    const xs = [], lows = [], mids = [], highs = [];
    for (const row of rows) {
      xs.push(Date.parse(row.ts) / 1000);
      lows.push(row.hashrate_lower);
      mids.push(row.hashrate);
      highs.push(row.hashrate_upper);
    }
    return [xs, lows, mids, highs];
  }

  async function loadChart(name, spanS, step) {
    const status = C.field("chart-" + name + "-status");
    const holder = document.getElementById("chart-" + name);
    const to = new Date();
    const from = new Date(to.getTime() - spanS * 1000);
    let rows;
    try {
      rows = await C.api("/api/pool/history", {
        query: { pool: pool, from: from.toISOString(), to: to.toISOString(), step: step },
      });
    } catch (error) {
      C.setText(status, error.status === 404 ? "not available" : "could not load: " + error.message);
      return;
    }
    const data = toColumns(Array.isArray(rows) ? rows : rows.rows || []);
    status.textContent = data[0].length ? "" : "no data yet";
    if (charts[name]) charts[name].destroy();
    charts[name] = new uPlot(chartOptions(holder.clientWidth || 600, null), data, holder);
    charts[name].spanS = spanS;
  }

  /* A `pool` record whose minute is newer than the chart's last point completes a minute. */
  function appendMinute(figures) {
    const chart = charts.hour;
    if (!chart || typeof figures.as_of_ms !== "number") return;
    const minuteS = figures.as_of_ms / 1000 - 60;
    const data = chart.data.map(function (column) { return Array.from(column); });
    const last = data[0].length ? data[0][data[0].length - 1] : -Infinity;
    if (!(minuteS > last)) return;
    data[0].push(minuteS);
    data[1].push(byWindow(figures.hashrate_lower, "1m"));
    data[2].push(byWindow(figures.hashrate, "1m"));
    data[3].push(byWindow(figures.hashrate_upper, "1m"));
    while (data[0].length && data[0][0] < minuteS - HOUR_S + 60) data.forEach(function (c) { c.shift(); });
    chart.setData(data);
    C.setText(C.field("chart-hour-status"), "");
  }

  function effortText(effort) { return C.fmt.percent(effort, 1); }

  async function loadBlocks() {
    const status = C.field("blocks-status");
    const body = C.field("blocks");
    let blocks;
    try {
      blocks = await C.api("/api/pool/blocks", { query: { pool: pool, limit: BLOCKS_SHOWN } });
    } catch (error) {
      C.setText(status, error.status === 404 ? "not available" : "could not load: " + error.message);
      return;
    }
    const list = Array.isArray(blocks) ? blocks : blocks.blocks || [];
    C.clear(body);
    for (const block of list) {
      body.appendChild(C.el("tr", {}, [
        C.el("td", { cls: "num", text: C.fmt.count(block.height) }),
        C.el("td", { text: C.fmt.ago(block.found_at), attrs: { title: C.fmt.time(block.found_at) } }),
        C.el("td", { text: block.miner }),
        C.el("td", { text: block.worker }),
        C.el("td", { cls: "num", text: effortText(block.effort) }),
        C.el("td", { text: block.status }),
      ]));
    }
    status.textContent = list.length ? "" : "no blocks found yet";
  }

  function drawAlerts() {
    const list = C.field("alerts");
    C.clear(list);
    const alerts = Array.from(firing.values()).sort(function (a, b) {
      return String(b.fired_at || b.starts_at).localeCompare(String(a.fired_at || a.starts_at));
    });
    for (const alert of alerts) {
      const severity = String(alert.severity || "");
      const summary = (alert.annotations && (alert.annotations.summary || alert.annotations.description)) || "";
      list.appendChild(C.el("li", { attrs: { "data-fingerprint": alert.fingerprint } }, [
        C.el("span", { cls: "severity-" + severity.replace(/[^a-z]/g, ""), text: severity }),
        document.createTextNode(" "),
        C.el("a", { text: alert.name, attrs: { href: "/alerts?fingerprint=" + encodeURIComponent(alert.fingerprint) } }),
        document.createTextNode(" " + summary + " · " + C.fmt.ago(alert.fired_at || alert.starts_at)),
      ]));
    }
    C.setText(C.field("alerts-count"), C.fmt.count(alerts.length));
    C.field("alerts-status").textContent = alerts.length ? "" : "nothing firing";
  }

  async function loadAlerts() {
    const status = C.field("alerts-status");
    let answer;
    try {
      answer = await C.api("/api/alerts", { query: { status: "firing" } });
    } catch (error) {
      C.setText(status, error.status === 404 ? "not available" : "could not load: " + error.message);
      return;
    }
    firing.clear();
    for (const alert of answer.alerts || []) firing.set(alert.fingerprint, alert);
    drawAlerts();
  }

  function onAlert(record) {
    if (!record || typeof record.fingerprint !== "string") return;
    if (record.status === "firing") firing.set(record.fingerprint, record);
    else firing.delete(record.fingerprint);
    drawAlerts();
  }

  function onPool(record) {
    if (!record || record.pool !== pool || !record.figures) return;
    showFigures(record.figures);
    if (typeof record.figures.as_of_ms === "number") {
      C.setText(C.field("as-of"), C.fmt.time(new Date(record.figures.as_of_ms).toISOString()));
      appendMinute(record.figures);
    }
  }

  let liveOpen = false;

  function setLive(text, cls) {
    liveOpen = cls === "connected";
    const node = C.field("live-status");
    node.textContent = text;
    node.className = "live " + cls;
  }

  function resizeCharts() {
    for (const name of Object.keys(charts)) {
      const width = document.getElementById("chart-" + name).clientWidth || 600;
      // Only on a new width: setSize changes the holder's height, which would observe itself.
      if (charts[name].width !== width) charts[name].setSize({ width: width, height: 240 });
    }
  }

  async function start() {
    const statsLoaded = loadStats().catch(function (error) {
      C.setText(C.field("as-of"), "could not load: " + error.message);
    });
    await Promise.allSettled([statsLoaded, loadChart("hour", HOUR_S, "1m"), loadChart("day", DAY_S, "1h"),
                              loadBlocks(), loadAlerts()]);
    C.markReady();
    C.live({ pool: pool }, {
      pool: onPool,
      alert: onAlert,
      open: function () { setLive("live", "connected"); },
      error: function () { setLive("reconnecting…", "disconnected"); },
    });
    // The day chart gains a point an hour, blocks and alerts change rarely: refreshed, not streamed.
    setInterval(function () { loadChart("day", DAY_S, "1h"); loadBlocks(); }, 5 * 60 * 1000);
    // While the stream is away (server restarting, /live not served) the figures still move.
    setInterval(function () { if (!liveOpen) loadStats().catch(function () {}); }, STATS_POLL_MS);
    const observer = new ResizeObserver(resizeCharts);
    for (const name of ["hour", "day"]) observer.observe(document.getElementById("chart-" + name));
  }

  document.addEventListener("DOMContentLoaded", start);
})();
