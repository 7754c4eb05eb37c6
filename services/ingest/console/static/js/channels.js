/* The channels page: every channel from GET /api/alert-channels (secrets masked by the API);
   with a key that may write, each can be edited in place (PUT, the whole channel as GET gave it,
   masked secrets included: the API keeps the stored ones) and tested (POST .../test). */
(function () {
  "use strict";
  const C = window.Chimera;
  const page = C.pageData();
  const canWrite = page.can_write === true;
  const channels = new Map(); // channel id -> channel, as the API answered it last

  function configText(config) {
    return Object.keys(config || {}).sort().map(function (key) {
      const value = config[key];
      return key + ": " + (Array.isArray(value) ? value.join(", ") : String(value));
    }).join(" · ");
  }

  function channelIn(channel) {
    return {
      name: channel.name, type: channel.type, config: Object.assign({}, channel.config),
      matchers: channel.matchers, label_matchers: channel.label_matchers, min_severity: channel.min_severity,
      send_resolved: channel.send_resolved, group_by: channel.group_by, group_wait: channel.group_wait,
      group_interval: channel.group_interval, repeat_interval: channel.repeat_interval, enabled: channel.enabled,
      rate_limit_per_minute: channel.rate_limit_per_minute, miner: channel.miner,
    };
  }

  function row(channel) {
    const tr = C.el("tr", { attrs: { id: "channel-" + channel.id, "data-channel-id": channel.id } }, [
      C.el("th", { attrs: { scope: "row", "data-field": "channel-name" }, text: channel.name }),
      C.el("td", { attrs: { "data-field": "channel-type" }, text: channel.type }),
      C.el("td", { cls: "destination", attrs: { "data-field": "channel-destination" },
                   text: configText(channel.config) }),
      C.el("td", { attrs: { "data-field": "channel-min-severity" }, text: channel.min_severity }),
      C.el("td", { attrs: { "data-field": "channel-miner" }, text: channel.miner || C.DASH }),
      C.el("td", { attrs: { "data-field": "channel-enabled" }, text: channel.enabled ? "yes" : "no" }),
    ]);
    if (canWrite) {
      const edit = C.el("button", { text: "Edit", attrs: { type: "button", "data-field": "channel-edit",
                                                           "aria-label": "Edit channel " + channel.name } });
      const test = C.el("button", { text: "Send test", attrs: { type: "button", "data-field": "channel-test" } });
      const outcome = C.el("span", { cls: "outcome",
                                     attrs: { "data-field": "channel-test-result", "aria-live": "polite" } });
      edit.addEventListener("click", function () { openEditor(channel.id); });
      test.addEventListener("click", function () { sendTest(channel.id, test, outcome); });
      tr.appendChild(C.el("td", { cls: "actions" }, [edit, test, outcome]));
    }
    return tr;
  }

  function draw() {
    const body = C.field("channels");
    C.clear(body);
    const list = Array.from(channels.values()).sort(function (a, b) { return a.name.localeCompare(b.name); });
    for (const channel of list) body.appendChild(row(channel));
    C.setText(C.field("channels-count"), C.fmt.count(list.length));
    C.field("channels-status").textContent = list.length ? "" : "no channels yet";
  }

  async function sendTest(id, button, outcome) {
    button.disabled = true;
    outcome.className = "outcome";
    outcome.textContent = "sending…";
    try {
      const result = await C.api("/api/alert-channels/" + encodeURIComponent(id) + "/test", { method: "POST" });
      const code = result.status_code === null ? "" : ", status " + result.status_code;
      const took = ", " + C.fmt.number(result.latency_ms, 0) + " ms";
      outcome.textContent = result.ok ? "sent" + code + took : "failed" + code + took + ": " + (result.error || "");
      outcome.className = "outcome " + (result.ok ? "ok" : "error");
    } catch (error) {
      outcome.textContent = "not sent: " + error.message;
      outcome.className = "outcome error";
    } finally {
      button.disabled = false;
    }
  }

  /* --- the edit form, a row under the channel's ----------------------------------------- */

  function field(label, id, control, errorFor) {
    return C.el("div", { cls: "form-row" }, [
      C.el("label", { text: label, attrs: { for: id } }), control,
      C.el("p", { cls: "field-error", attrs: { "data-error-for": errorFor } }),
    ]);
  }

  function checkbox(name, id, checked) {
    const box = C.el("input", { attrs: { type: "checkbox", name: name, id: id } });
    box.checked = checked === true;
    return box;
  }

  function text(name, id, value, maxlength) {
    const box = C.el("input", { attrs: { name: name, id: id, maxlength: maxlength } });
    box.value = value === null || value === undefined ? "" : String(value);
    return box;
  }

  function openEditor(id) {
    const channel = channels.get(id);
    if (document.getElementById("channel-editor-" + id)) return;
    const prefix = "channel-" + id + "-";
    const form = C.el("form", { cls: "channel-form", attrs: { "data-field": "channel-form", novalidate: "" } });
    form.appendChild(field("name", prefix + "name", text("name", prefix + "name", channel.name, 200), "name"));
    const severity = C.el("select", { attrs: { name: "min_severity", id: prefix + "min_severity" } },
      (page.severities || []).map(function (s) { return C.el("option", { text: s, attrs: { value: s } }); }));
    severity.value = channel.min_severity;
    form.appendChild(field("min severity", prefix + "min_severity", severity, "min_severity"));
    for (const [name, label] of [["enabled", "enabled"], ["send_resolved", "send resolved"]]) {
      form.appendChild(field(label, prefix + name, checkbox(name, prefix + name, channel[name]), name));
    }
    for (const key of Object.keys(channel.config || {}).sort()) {
      const value = channel.config[key];
      const name = "config." + key;
      const control = typeof value === "boolean" ? checkbox(name, prefix + name, value)
        : text(name, prefix + name, Array.isArray(value) ? value.join(", ") : value, 1000);
      form.appendChild(field(key, prefix + name, control, name));
    }
    const errors = C.el("p", { cls: "error", attrs: { role: "alert", "data-field": "channel-form-error" } });
    const cancel = C.el("button", { text: "Cancel", attrs: { type: "button" } });
    form.appendChild(C.el("div", { cls: "actions" }, [
      C.el("button", { text: "Save", attrs: { type: "submit", "data-field": "channel-save" } }), cancel, errors]));
    const colspan = document.querySelector("table.channels thead tr").children.length;
    const editor = C.el("tr", { cls: "editor", attrs: { id: "channel-editor-" + id } },
                        [C.el("td", { attrs: { colspan: colspan } }, [form])]);
    cancel.addEventListener("click", function () { editor.remove(); });
    form.addEventListener("submit", function (event) { event.preventDefault(); submit(id, form, errors); });
    document.getElementById("channel-" + id).after(editor);
    form.querySelector("input, select").focus();
  }

  function trimmed(text) { return text.trim(); }
  function isNumberText(text) { return text.trim() !== "" && isFinite(Number(text)); }

  /* The form's values over the stored channel; each config value keeps the type GET gave it. */
  function formBody(channel, form) {
    const body = channelIn(channel);
    body.name = form.elements.namedItem("name").value;
    body.min_severity = form.elements.namedItem("min_severity").value;
    body.enabled = form.elements.namedItem("enabled").checked;
    body.send_resolved = form.elements.namedItem("send_resolved").checked;
    for (const key of Object.keys(body.config)) {
      const node = form.elements.namedItem("config." + key);
      const was = body.config[key];
      if (typeof was === "boolean") body.config[key] = node.checked;
      else if (Array.isArray(was)) body.config[key] = node.value.split(",").map(trimmed).filter(Boolean);
      else if (typeof was === "number" && isNumberText(node.value)) body.config[key] = Number(node.value);
      else body.config[key] = node.value; // as typed: the API's 422 names a wrong one
    }
    return body;
  }

  function submit(id, form, errors) {
    return C.saveForm(form, errors, async function () {
      const answer = await C.api("/api/alert-channels/" + encodeURIComponent(id),
                                 { method: "PUT", body: formBody(channels.get(id), form) });
      channels.set(answer.id, answer);
      document.getElementById("channel-editor-" + id).remove();
      document.getElementById("channel-" + id).replaceWith(row(answer));
    }, function (field) { return field.split("[")[0]; });  // config.url stays config.url
  }

  async function start() {
    try {
      const answer = await C.api("/api/alert-channels");
      for (const channel of answer.channels || []) channels.set(channel.id, channel);
      draw();
    } catch (error) {
      C.setText(C.field("channels-status"),
                error.status === 404 ? "not available" : "could not load: " + error.message);
    }
    C.markReady();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
