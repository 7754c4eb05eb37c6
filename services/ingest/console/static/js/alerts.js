/* The alerts page: firing, pending and resolved alerts from GET /api/alerts, filtered as the URL
   says (status and severity by the API, rule name, labels and fingerprint here), then kept current
   from /live `alert` records: a new firing alert appears, a resolved one moves to "Resolved". */
(function () {
  "use strict";
  const C = window.Chimera;
  const page = C.pageData();
  const filters = page.filters || {};
  const STATUSES = ["firing", "pending", "resolved"];
  const shown = filters.status ? [filters.status] : STATUSES;
  const LIMITS = { firing: 500, pending: 500, resolved: 100 };
  const alerts = new Map(); // alert id -> alert, as GET /api/alerts/{id} answers it
  const failed = new Set(); // sections whose first load failed: their message stays until data comes

  function labelsText(labels) {
    return Object.keys(labels || {}).sort().map(function (name) { return name + "=" + labels[name]; }).join(", ");
  }

  /* The filters the API has no parameter for, applied to every alert, loaded or live. */
  function wanted(alert) {
    if (shown.indexOf(alert.status) < 0) return false;
    if (filters.severity && alert.severity !== filters.severity) return false;
    if (filters.fingerprint && alert.fingerprint !== filters.fingerprint) return false;
    if (filters.miner && (alert.labels || {}).miner !== filters.miner) return false;
    if (filters.rule && String(alert.name).toLowerCase().indexOf(filters.rule.toLowerCase()) < 0) return false;
    if (filters.label && labelsText(alert.labels).toLowerCase().indexOf(filters.label.toLowerCase()) < 0) {
      return false;
    }
    return true;
  }

  function sortTime(alert) {
    const at = alert.status === "resolved" ? alert.ends_at : alert.fired_at || alert.starts_at;
    return Date.parse(at || alert.starts_at) || 0;
  }

  function row(alert) {
    const severity = String(alert.severity || "");
    const summary = (alert.annotations && alert.annotations.summary) || "";
    const last = alert.status === "resolved" ? alert.ends_at : alert.fired_at;
    const nameCell = C.el("td", {}, [
      C.el("a", { text: alert.name,
                  attrs: { href: "/alerts/" + encodeURIComponent(alert.id), "data-field": "alert-name" } }),
    ]);
    if (summary && summary !== alert.name) nameCell.appendChild(C.el("div", { cls: "note", text: summary }));
    return C.el("tr", { attrs: { "data-alert-id": alert.id, "data-status": alert.status } }, [
      nameCell,
      C.el("td", { cls: "severity-" + severity.replace(/[^a-z]/g, ""), text: severity,
                   attrs: { "data-field": "alert-severity" } }),
      C.el("td", { cls: "labels", text: labelsText(alert.labels), attrs: { "data-field": "alert-labels" } }),
      C.el("td", { cls: "num", text: C.fmt.number(alert.value, 2), attrs: { "data-field": "alert-value" } }),
      C.el("td", { text: C.fmt.time(alert.starts_at), attrs: { "data-field": "alert-starts-at" } }),
      C.el("td", { text: C.fmt.time(last), attrs: { title: C.fmt.ago(last) } }),
    ]);
  }

  function draw() {
    for (const status of shown) {
      const body = C.field(status + "-alerts");
      const list = Array.from(alerts.values())
        .filter(function (a) { return a.status === status; })
        .sort(function (a, b) { return sortTime(b) - sortTime(a) || b.id - a.id; })
        .slice(0, LIMITS[status]);
      if (failed.has(status) && !list.length) continue;
      C.clear(body);
      for (const alert of list) body.appendChild(row(alert));
      C.setText(C.field(status + "-count"), C.fmt.count(list.length));
      C.field(status + "-status").textContent = list.length ? "" : "no " + status + " alerts";
    }
  }

  async function load(status) {
    const query = { status: status, severity: filters.severity, miner: filters.miner, limit: LIMITS[status] };
    try {
      const answer = await C.api("/api/alerts", { query: query });
      for (const alert of answer.alerts || []) if (wanted(alert)) alerts.set(alert.id, alert);
    } catch (error) {
      failed.add(status);
      C.setText(C.field(status + "-status"),
                error.status === 404 ? "not available" : "could not load: " + error.message);
      throw error;
    }
  }

  /* A chimera.alerts record (docs/alerter.md) in the shape of the API's alert. */
  function fromRecord(record, known) {
    return Object.assign({}, known || {}, {
      id: record.alert_id, rule_id: record.rule_id, name: record.name, severity: record.severity,
      status: record.status, labels: record.labels || {}, annotations: record.annotations || {},
      fingerprint: record.fingerprint, value: record.value, threshold: record.threshold,
      starts_at: record.starts_at, fired_at: record.fired_at || (known && known.fired_at) || null,
      ends_at: record.ends_at || null, end_reason: record.reason || null,
    });
  }

  function onAlert(record) {
    if (!record || typeof record.alert_id !== "number") return; // not stored: no page to link to
    const alert = fromRecord(record, alerts.get(record.alert_id));
    if (wanted(alert)) alerts.set(alert.id, alert);
    else alerts.delete(alert.id);
    draw();
  }

  function setLive(text, cls) {
    const node = C.field("live-status");
    node.textContent = text;
    node.className = "live " + cls;
  }

  async function start() {
    const loaded = await Promise.allSettled(shown.map(load));
    if (loaded.some(function (r) { return r.status === "fulfilled"; })) draw();
    C.markReady();
    const params = page.live_miner ? { pool: "main", miner: page.live_miner } : { pool: "main" };
    C.live(params, {
      alert: onAlert,
      open: function () { setLive("live", "connected"); },
      error: function () { setLive("reconnecting…", "disconnected"); },
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
