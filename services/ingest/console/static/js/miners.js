/* The miners list: one GET /api/miners per view (search, sort, page), never the whole list.
   The view lives in the URL's query, so a link shares it and a reload keeps it. */
(function () {
  "use strict";
  const C = window.Chimera;
  const page = C.pageData();
  const DEFAULTS = { pool: "main", q: "", sort: "hashrate_1h", order: "desc", limit: 50, offset: 0 };
  const SEARCH_DELAY_MS = 300;
  const REFRESH_MS = 30 * 1000;
  const maxOffset = typeof page.max_offset === "number" ? page.max_offset : 1000000;
  let view = Object.assign({}, DEFAULTS, page);
  let total = 0;
  let requestSeq = 0; // answers to an older view are dropped: a fast typist sends several
  let searchTimer = null;

  function asInt(text, fallback, low, high) {
    const n = Number.parseInt(text, 10);
    return Number.isFinite(n) && n >= low && n <= high ? n : fallback;
  }

  /* The view named by a query string: what popstate brings back. */
  function viewOf(search) {
    const params = new URLSearchParams(search);
    return {
      pool: params.get("pool") || DEFAULTS.pool,
      q: params.get("q") || "",
      sort: params.get("sort") || DEFAULTS.sort,
      order: params.get("order") === "asc" ? "asc" : "desc",
      limit: asInt(params.get("limit"), DEFAULTS.limit, 1, 500),
      offset: asInt(params.get("offset"), 0, 0, maxOffset),
    };
  }

  /* Only what differs from the defaults: short links. */
  function queryOf(state) {
    const params = new URLSearchParams();
    for (const name of ["pool", "q", "sort", "order", "limit", "offset"]) {
      if (state[name] !== DEFAULTS[name] && state[name] !== "") params.set(name, String(state[name]));
    }
    const text = params.toString();
    return text ? "?" + text : "";
  }

  function apiQuery(state) {
    const query = { pool: state.pool, sort: state.sort, order: state.order, limit: state.limit, offset: state.offset };
    if (state.q) query.q = state.q;
    return query;
  }

  function minerHref(miner) {
    const suffix = view.pool === DEFAULTS.pool ? "" : "?pool=" + encodeURIComponent(view.pool);
    return "/miners/" + encodeURIComponent(miner) + suffix;
  }

  function at(figures, window) {
    return figures && typeof figures === "object" ? figures[window] : null;
  }

  function row(miner) {
    const lower = at(miner.hashrate_lower, "1h");
    const upper = at(miner.hashrate_upper, "1h");
    const lastShare = miner.last_share_at;
    return C.el("tr", { attrs: { "data-miner": miner.miner } }, [
      C.el("th", { attrs: { scope: "row" } }, [
        C.el("a", { text: miner.miner, attrs: { href: minerHref(miner.miner), "data-field": "miner-name" } }),
      ]),
      C.el("td", { cls: "num", text: C.fmt.hashrate(at(miner.hashrate, "1h")), attrs: { "data-field": "hashrate-1h" } }),
      C.el("td", { cls: "num interval", attrs: { "data-field": "interval-1h" },
                   text: C.fmt.hashrate(lower) + " – " + C.fmt.hashrate(upper) }),
      C.el("td", { cls: "num", text: C.fmt.hashrate(at(miner.hashrate, "24h")), attrs: { "data-field": "hashrate-24h" } }),
      C.el("td", { cls: "num", attrs: { "data-field": "workers" },
                   text: C.fmt.count(miner.workers_online) + " / " + C.fmt.count(miner.workers_total) }),
      C.el("td", { cls: "num", text: C.fmt.percent(at(miner.efficiency, "24h"), 1), attrs: { "data-field": "efficiency-24h" } }),
      C.el("td", { cls: "num", text: C.fmt.ago(lastShare),
                   attrs: { "data-field": "last-share", title: lastShare ? C.fmt.time(lastShare) : "no share yet" } }),
    ]);
  }

  function showHeaders() {
    for (const th of document.querySelectorAll(".miners-table th[data-sort]")) {
      const here = th.getAttribute("data-sort") === view.sort;
      th.setAttribute("aria-sort", here ? (view.order === "asc" ? "ascending" : "descending") : "none");
    }
  }

  function showPager(shown) {
    const range = C.field("page-range");
    if (total === 0) range.textContent = "0 of 0";
    else if (shown === 0) range.textContent = "none of " + C.fmt.count(total) + " on this page";
    else {
      range.textContent = C.fmt.count(view.offset + 1) + "\u2013" + C.fmt.count(view.offset + shown) +
        " of " + C.fmt.count(total);
    }
    C.field("page-previous").disabled = view.offset === 0;
    C.field("page-next").disabled = view.offset + view.limit >= total || view.offset + view.limit > maxOffset;
  }

  function problem(error) {
    const details = error.body && Array.isArray(error.body.details) ? error.body.details : [];
    if (error.status === 422 && details.length) {
      return details.map(function (d) { return String(d.field) + ": " + String(d.message); }).join("; ");
    }
    return error.status === 404 ? "not available" : "could not load: " + error.message;
  }

  async function load() {
    const seq = ++requestSeq;
    const status = C.field("list-status");
    let answer;
    try {
      answer = await C.api("/api/miners", { query: apiQuery(view) });
    } catch (error) {
      if (seq !== requestSeq) return;
      C.setText(status, problem(error));
      return;
    }
    if (seq !== requestSeq) return;
    const body = C.field("miners");
    C.clear(body);
    const miners = Array.isArray(answer.miners) ? answer.miners : [];
    for (const miner of miners) body.appendChild(row(miner));
    total = typeof answer.total === "number" ? answer.total : 0;
    showPager(miners.length);
    showHeaders();
    C.setText(C.field("as-of"), C.fmt.time(answer.as_of));
    if (total === 0) status.textContent = view.q ? "no miner name contains \u201c" + view.q + "\u201d" : "no miners yet";
    else status.textContent = "";
  }

  /* A new view: into the address bar (a new history entry, or the same one while typing), then loaded. */
  function go(changes, replace) {
    view = Object.assign({}, view, changes);
    const url = location.pathname + queryOf(view);
    if (replace) history.replaceState(view, "", url);
    else history.pushState(view, "", url);
    return load();
  }

  function syncControls() {
    C.field("search").value = view.q;
    const size = C.field("page-size");
    if (Array.from(size.options).some(function (o) { return o.value === String(view.limit); })) {
      size.value = String(view.limit);
    }
  }

  function onSort(event) {
    const th = event.currentTarget.closest("th");
    const sort = th.getAttribute("data-sort");
    const order = sort === view.sort ? (view.order === "asc" ? "desc" : "asc") : th.getAttribute("data-first");
    go({ sort: sort, order: order, offset: 0 }, false);
  }

  function onSearchInput() {
    if (searchTimer !== null) clearTimeout(searchTimer);
    searchTimer = setTimeout(function () {
      searchTimer = null;
      const q = C.field("search").value.trim();
      if (q !== view.q) go({ q: q, offset: 0 }, true);
    }, SEARCH_DELAY_MS);
  }

  function onSearchSubmit(event) {
    event.preventDefault();
    if (searchTimer !== null) { clearTimeout(searchTimer); searchTimer = null; }
    go({ q: C.field("search").value.trim(), offset: 0 }, false);
  }

  async function start() {
    for (const button of document.querySelectorAll(".miners-table .sort-button")) {
      button.addEventListener("click", onSort);
    }
    C.field("search").addEventListener("input", onSearchInput);
    C.field("search-form").addEventListener("submit", onSearchSubmit);
    C.field("page-size").addEventListener("change", function (event) {
      go({ limit: asInt(event.target.value, DEFAULTS.limit, 1, 500), offset: 0 }, false);
    });
    C.field("page-previous").addEventListener("click", function () {
      go({ offset: Math.max(0, view.offset - view.limit) }, false);
    });
    C.field("page-next").addEventListener("click", function () {
      go({ offset: Math.min(maxOffset, view.offset + view.limit) }, false);
    });
    window.addEventListener("popstate", function () {
      view = viewOf(location.search);
      syncControls();
      load();
    });
    history.replaceState(view, "", location.pathname + queryOf(view));
    await load();
    C.markReady();
    // Figures move with every snapshot; a wall screen keeps its view fresh without a stream per row.
    setInterval(function () { if (document.visibilityState === "visible") load(); }, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
