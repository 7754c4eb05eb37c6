/* One alert: its state, labels and annotations (GET /api/alerts/{id}), its delivery log
   (GET /api/notifications?alert=id), and for an admin key "Resolve" and a silence form whose
   matchers start as the alert's labels. Writes go through Chimera.api (the CSRF header). */
(function () {
  "use strict";
  const C = window.Chimera;
  const page = C.pageData();
  const alertId = page.alert_id;
  const OPERATORS = ["=", "!=", "=~", "!~"];
  const DELIVERY_LIMIT = 500;
  const DELIVERY_REFRESH_MS = 30 * 1000;
  let prefilled = false;

  function pairs(body, object) {
    C.clear(body);
    for (const name of Object.keys(object || {}).sort()) {
      body.appendChild(C.el("tr", {}, [C.el("th", { attrs: { scope: "row" }, text: name }),
                                       C.el("td", { text: object[name] })]));
    }
    if (!body.firstChild) body.appendChild(C.el("tr", {}, [C.el("td", { text: "none", attrs: { colspan: 2 } })]));
  }

  function show(alert) {
    C.setText(C.field("alert-name"), alert.name);
    document.title = alert.name + " · Chimera";
    const status = C.field("alert-status");
    C.setText(status, alert.status);
    status.className = "alert-status-" + String(alert.status).replace(/[^a-z]/g, "");
    const severity = C.field("alert-severity");
    C.setText(severity, alert.severity);
    severity.className = "severity-" + String(alert.severity).replace(/[^a-z]/g, "");
    C.setText(C.field("alert-value"), C.fmt.number(alert.value, 2));
    C.setText(C.field("alert-threshold"), C.fmt.number(alert.threshold, 2));
    C.setText(C.field("alert-starts-at"), C.fmt.time(alert.starts_at));
    C.setText(C.field("alert-fired-at"), C.fmt.time(alert.fired_at));
    C.setText(C.field("alert-ends-at"), C.fmt.time(alert.ends_at));
    C.setText(C.field("alert-end-reason"), alert.end_reason);
    C.setText(C.field("alert-fingerprint"), alert.fingerprint);
    const rule = C.field("alert-rule");
    C.clear(rule);
    if (alert.rule_id === null || alert.rule_id === undefined) rule.textContent = "raised by hand";
    else rule.appendChild(C.el("a", {
      text: "rule " + alert.rule_id, attrs: { href: "/rules#rule-" + alert.rule_id } }));
    pairs(C.field("alert-labels"), alert.labels);
    pairs(C.field("alert-annotations"), alert.annotations);
    const resolve = C.field("resolve");
    if (resolve) resolve.hidden = alert.status === "resolved";
    if (!prefilled && C.field("matchers")) {
      prefilled = true;
      const names = Object.keys(alert.labels || {}).sort();
      for (const name of names) addMatcher({ name: name, op: "=", value: alert.labels[name] });
      if (!names.length) addMatcher({ name: "", op: "=", value: "" });
    }
  }

  async function loadAlert() {
    try {
      show(await C.api("/api/alerts/" + encodeURIComponent(alertId)));
      C.field("alert-error").textContent = "";
      return true;
    } catch (error) {
      C.field("alert-error").textContent = error.status === 404
        ? "There is no alert " + alertId + " this key may see."
        : "Could not load the alert: " + error.message;
      return false;
    }
  }

  function attemptOf(row) { return row.attempt; }

  /* The attempts of each delivery, newest delivery first: one row per delivery. */
  function deliveries(attempts) {
    const groups = new Map();
    for (const attempt of attempts) {
      if (!groups.has(attempt.delivery_id)) groups.set(attempt.delivery_id, []);
      groups.get(attempt.delivery_id).push(attempt); // newest first, as the API answers
    }
    return Array.from(groups.values());
  }

  async function loadDeliveries() {
    const status = C.field("deliveries-status");
    let answer;
    try {
      answer = await C.api("/api/notifications", { query: { alert: alertId, limit: DELIVERY_LIMIT } });
    } catch (error) {
      C.setText(status, error.status === 404 ? "not available" : "could not load: " + error.message);
      return;
    }
    const body = C.field("deliveries");
    C.clear(body);
    const groups = deliveries(answer.notifications || []);
    for (const group of groups) {
      const newest = group[0];
      const oldest = group[group.length - 1];
      const failure = group.find(function (a) { return a.error; });
      const channel = (newest.channel_name || "deleted channel") + " (" + newest.channel_type + ")";
      body.appendChild(C.el("tr", { attrs: { "data-delivery-id": newest.delivery_id } }, [
        C.el("td", { text: channel }),
        C.el("td", { text: newest.status, cls: "delivery-" + String(newest.status).replace(/[^a-z]/g, "") }),
        C.el("td", { cls: "num", text: C.fmt.count(Math.max.apply(null, group.map(attemptOf))) }),
        C.el("td", { cls: "num", text: newest.response_code === null ? C.DASH : String(newest.response_code) }),
        C.el("td", { text: failure ? failure.error : C.DASH }),
        C.el("td", { text: C.fmt.time(oldest.at) }),
        C.el("td", { text: C.fmt.time(newest.at) }),
      ]));
    }
    status.textContent = groups.length ? "" : "no notification sent for this alert yet";
  }

  /* --- resolve --------------------------------------------------------------------------- */

  async function resolve(event) {
    const button = event.currentTarget;
    const result = C.field("resolve-result");
    button.disabled = true;
    try {
      show(await C.api("/api/alerts/" + encodeURIComponent(alertId) + "/resolve", { method: "PUT" }));
      result.textContent = "Resolved.";
    } catch (error) {
      result.textContent = "Could not resolve: " + error.message;
    } finally {
      button.disabled = false;
    }
  }

  /* --- silence --------------------------------------------------------------------------- */

  function addMatcher(matcher) {
    const list = C.field("matchers");
    const number = list.children.length + 1;
    const select = C.el("select", { attrs: { "aria-label": "Operator of matcher " + number, "data-part": "op" } },
      OPERATORS.map(function (op) { return C.el("option", { text: op, attrs: { value: op } }); }));
    select.value = OPERATORS.indexOf(matcher.op) >= 0 ? matcher.op : "=";
    const name = C.el("input", { attrs: { "aria-label": "Label of matcher " + number, maxlength: 128,
                                          "data-part": "name" } });
    name.value = matcher.name;
    const value = C.el("input", { attrs: { "aria-label": "Value of matcher " + number, maxlength: 1024,
                                           "data-part": "value" } });
    value.value = matcher.value;
    const remove = C.el("button", { text: "Remove",
                                    attrs: { type: "button", "aria-label": "Remove matcher " + number } });
    const row = C.el("div", { cls: "matcher-row", attrs: { "data-field": "matcher" } },
      [name, select, value, remove, C.el("p", { cls: "field-error" })]);
    remove.addEventListener("click", function () { row.remove(); });
    list.appendChild(row);
  }

  function matchersOfForm() {
    return Array.from(C.field("matchers").querySelectorAll(".matcher-row")).map(function (row) {
      return {
        name: row.querySelector('[data-part="name"]').value,
        op: row.querySelector('[data-part="op"]').value,
        value: row.querySelector('[data-part="value"]').value,
      };
    });
  }

  function clearErrors(form) {
    for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
    C.field("silence-error").textContent = "";
  }

  /* A 422's details next to their fields: body.duration, body.matchers[2].value, ... */
  function showErrors(form, error) {
    const details = (error.body && error.body.details) || [];
    const rows = C.field("matchers").querySelectorAll(".matcher-row");
    const unplaced = [];
    for (const detail of details) {
      const where = String(detail.field || "").replace(/^body\./, "");
      const matcher = /^matchers\[(\d+)\](?:\.(\w+))?/.exec(where);
      let target = null;
      if (matcher && rows[Number(matcher[1])]) target = rows[Number(matcher[1])].querySelector(".field-error");
      else target = form.querySelector('[data-error-for="' + CSS.escape(where) + '"]');
      const text = (matcher && matcher[2] ? matcher[2] + ": " : "") + detail.message;
      if (target) target.textContent = target.textContent ? target.textContent + "; " + text : text;
      else unplaced.push(where + ": " + detail.message);
    }
    C.field("silence-error").textContent = unplaced.length || !details.length
      ? "Not created: " + (unplaced.join("; ") || error.message) : "Not created: see the fields marked.";
  }

  function showSilence(silence) {
    C.setText(C.field("silence-id"), silence.id);
    C.setText(C.field("silence-state"), silence.state);
    C.setText(C.field("silence-matchers"), silence.matchers.map(function (m) {
      return m.name + m.op + JSON.stringify(m.value);
    }).join(", "));
    C.setText(C.field("silence-starts-at"), C.fmt.time(silence.starts_at));
    C.setText(C.field("silence-ends-at"), C.fmt.time(silence.ends_at));
    C.setText(C.field("silence-created-by"), silence.created_by);
    C.setText(C.field("silence-comment-shown"), silence.comment);
    C.field("silence-created").hidden = false;
  }

  async function createSilence(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const submit = C.field("silence-submit");
    clearErrors(form);
    const body = {
      matchers: matchersOfForm(),
      duration: C.field("silence-duration").value.trim(),
      comment: C.field("silence-comment").value,
    };
    submit.disabled = true;
    try {
      showSilence(await C.api("/api/silences", { method: "POST", body: body }));
    } catch (error) {
      showErrors(form, error);
    } finally {
      submit.disabled = false;
    }
  }

  function setLive(text, cls) {
    const node = C.field("live-status");
    node.textContent = text;
    node.className = "live " + cls;
  }

  async function start() {
    const resolveButton = C.field("resolve");
    if (resolveButton) resolveButton.addEventListener("click", resolve);
    const form = C.field("silence-form");
    if (form) {
      form.addEventListener("submit", createSilence);
      C.field("add-matcher").addEventListener("click", function () { addMatcher({ name: "", op: "=", value: "" }); });
    }
    await Promise.allSettled([loadAlert(), loadDeliveries()]);
    C.markReady();
    const params = page.live_miner ? { pool: "main", miner: page.live_miner } : { pool: "main" };
    C.live(params, {
      // The record says something changed; the API says it in the page's own shape.
      alert: function (record) { if (record && record.alert_id === alertId) { loadAlert(); loadDeliveries(); } },
      open: function () { setLive("live", "connected"); },
      error: function () { setLive("reconnecting…", "disconnected"); },
    });
    setInterval(loadDeliveries, DELIVERY_REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
