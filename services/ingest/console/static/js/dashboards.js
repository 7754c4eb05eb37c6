/* The dashboards list: GET /api/dashboards (public ones, and this key's own with `read`), a link to each. */
(function () {
  "use strict";
  const C = window.Chimera;
  const LIMIT = 1000;

  function row(board) {
    const link = C.el("a", { text: board.name, attrs: { href: "/dashboards/" + encodeURIComponent(board.id) } });
    const visibility = (board.is_public ? "public" : "private") + (board.is_owner ? " · yours" : "");
    return C.el("tr", { attrs: { "data-dashboard": board.id } }, [
      C.el("th", { attrs: { scope: "row" } }, [link]),
      C.el("td", { text: board.description }),
      C.el("td", { text: visibility }),
      C.el("td", { text: C.fmt.ago(board.updated_at), attrs: { title: C.fmt.time(board.updated_at) } }),
    ]);
  }

  async function start() {
    const status = C.field("dashboards-status");
    const body = C.field("dashboards");
    try {
      const answer = await C.api("/api/dashboards", { query: { limit: LIMIT } });
      const boards = answer.dashboards || [];
      C.clear(body);
      for (const board of boards) body.appendChild(row(board));
      status.textContent = boards.length ? "" : "no dashboards yet";
    } catch (error) {
      C.setText(status, "could not load: " + error.message);
    }
    C.markReady();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
