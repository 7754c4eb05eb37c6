/* One dashboard: each panel's data from GET /api/dashboards/{id}/panels/{panelId}/data (readable
   without a key when the dashboard is public), all panels refreshed together by ONE 30 s timer;
   the range buttons (1h, 6h, 24h, 7d) reload them all. uPlot draws time series. */
(function () {
  "use strict";
  const C = window.Chimera;
  const page = C.pageData();
  const REFRESH_MS = 30 * 1000;
  const CHART_HEIGHT = 240;
  const COLOURS = ["#5cc8ff", "#6fdc8c", "#ffd166", "#ff7a7a", "#c39bff", "#ff9f5c", "#9ff0e6", "#e8edf3"];
  const charts = {}; // panel id -> uPlot
  let range = page.range || "1h";
  let loading = null;

  function format(unit, value) {
    if (value === null || value === undefined) return C.DASH;
    if (typeof value !== "number") return String(value);
    if (unit === "hashrate") return C.fmt.hashrate(value);
    if (unit === "percent") return C.fmt.percent(value, 1);
    if (unit === "count") return C.fmt.count(value);
    return Number.isInteger(value) ? C.fmt.count(value) : C.fmt.number(value, 2);
  }

  function drawStat(panel, data) {
    const node = C.field("panel-value-" + panel.id);
    C.setText(node, format(panel.unit, data.value));
    node.setAttribute("data-value", data.value === null || data.value === undefined ? "" : String(data.value));
  }

  function drawTable(panel, data) {
    const head = C.field("panel-head-" + panel.id);
    const body = C.field("panel-rows-" + panel.id);
    C.clear(head);
    C.clear(body);
    head.appendChild(C.el("tr", {}, data.columns.map(function (name) {
      return C.el("th", { text: name, attrs: { scope: "col" } });
    })));
    for (const row of data.rows) {
      body.appendChild(C.el("tr", {}, row.map(function (cell) {
        return C.el("td", { text: format(panel.unit, cell), cls: typeof cell === "number" ? "num" : "" });
      })));
    }
    return data.rows.length ? "" : "no rows in this range";
  }

  /* uPlot wants one x column: the union of every line's times, each line null where it has no point. */
  function columns(series) {
    const times = new Set();
    for (const line of series) for (const point of line.points) times.add(point[0]);
    const xs = Array.from(times).sort(function (a, b) { return a - b; });
    const index = new Map(xs.map(function (x, i) { return [x, i]; }));
    const data = [xs];
    for (const line of series) {
      const ys = new Array(xs.length).fill(null);
      for (const point of line.points) ys[index.get(point[0])] = point[1];
      data.push(ys);
    }
    return data;
  }

  function chartOptions(panel, series, width) {
    const value = function (_, v) { return format(panel.unit, v); };
    return {
      width: width,
      height: CHART_HEIGHT,
      scales: { x: { time: true } },
      axes: [
        { stroke: "#a9b4c0", grid: { stroke: "#2c3a48" }, ticks: { stroke: "#2c3a48" } },
        {
          stroke: "#a9b4c0", grid: { stroke: "#2c3a48" }, ticks: { stroke: "#2c3a48" }, size: 80,
          values: function (_, ticks) { return ticks.map(function (t) { return format(panel.unit, t); }); },
        },
      ],
      series: [{}].concat(series.map(function (line, i) {
        // uPlot writes labels into its legend with textContent: a hostile series name stays text.
        return { label: line.name, stroke: COLOURS[i % COLOURS.length], width: 2, value: value, spanGaps: false };
      })),
    };
  }

  function drawChart(panel, data) {
    const holder = document.getElementById("chart-" + panel.id);
    const columnsData = columns(data.series);
    if (charts[panel.id]) charts[panel.id].destroy();
    delete charts[panel.id];
    holder.setAttribute("data-points", String(columnsData[0].length));
    holder.setAttribute("data-first", columnsData[0].length ? String(columnsData[0][0]) : "");
    if (!data.series.length) return "no data in this range";
    charts[panel.id] = new uPlot(chartOptions(panel, data.series, holder.clientWidth || 600), columnsData, holder);
    return columnsData[0].length ? "" : "no data in this range";
  }

  async function loadPanel(panel) {
    const status = C.field("panel-status-" + panel.id);
    let data;
    try {
      data = await C.api("/api/dashboards/" + encodeURIComponent(page.id) + "/panels/" +
                         encodeURIComponent(panel.id) + "/data", { query: { range: range } });
    } catch (error) {
      C.setText(status, error.status === 503 ? "data source not available" : "could not load: " + error.message);
      return;
    }
    let note = "";
    if (panel.type === "stat") drawStat(panel, data);
    else if (panel.type === "table") note = drawTable(panel, data);
    else note = drawChart(panel, data);
    if (data.truncated) note = (note ? note + " · " : "") + "showing the first part only";
    if (data.range !== range) note = (note ? note + " · " : "") + "last " + data.range;
    status.textContent = note;
  }

  async function loadAll() {
    const drawable = (page.panels || []).filter(function (p) { return p.id && !p.problem; });
    await Promise.allSettled(drawable.map(loadPanel));
    C.setText(C.field("refresh-status"), "updated " + new Date().toLocaleTimeString() + " · every 30 s");
  }

  /* One refresh at a time: a click during a slow refresh waits for it, then loads the new range. */
  function refresh() {
    loading = (loading || Promise.resolve()).then(loadAll);
    return loading;
  }

  function choose(button) {
    range = button.getAttribute("data-range");
    for (const other of document.querySelectorAll(".range-picker button")) {
      other.setAttribute("aria-pressed", other === button ? "true" : "false");
    }
    const url = new URL(window.location.href);
    url.searchParams.set("range", range);
    window.history.replaceState(null, "", url.pathname + url.search);
    document.body.setAttribute("data-range", range);
    document.body.setAttribute("data-ready", "0");
    refresh().then(C.markReady);
  }

  function resizeCharts() {
    for (const id of Object.keys(charts)) {
      const holder = document.getElementById("chart-" + id);
      charts[id].setSize({ width: holder.clientWidth || 600, height: CHART_HEIGHT });
    }
  }

  async function start() {
    document.body.setAttribute("data-range", range);
    for (const button of document.querySelectorAll(".range-picker button")) {
      button.addEventListener("click", function () { choose(button); });
    }
    await refresh();
    C.markReady();
    setInterval(refresh, REFRESH_MS);
    window.addEventListener("resize", resizeCharts);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
