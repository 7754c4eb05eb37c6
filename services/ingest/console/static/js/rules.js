/* The rules page: every rule from GET /api/alert-rules; with an admin key each row can be edited
   in place or enabled/disabled (PUT /api/alert-rules/{id}, the whole rule as GET gave it with the
   changes), the API's 422 messages shown next to the fields they name. */
(function () {
  "use strict";
  const C = window.Chimera;
  const page = C.pageData();
  const canWrite = page.can_write === true;
  const rules = new Map(); // rule id -> rule, as the API answered it last
  // The fields the edit form offers, in the table's order.
  const EDITED = ["name", "metric", "window", "operator", "threshold", "duration", "severity", "enabled"];

  function ruleIn(rule) {
    const body = Object.assign({}, rule);
    delete body.id; // the rest of RuleOut is RuleIn, field for field
    return body;
  }

  function cells(rule) {
    return [
      C.el("th", { attrs: { scope: "row", "data-field": "rule-name" }, text: rule.name }),
      C.el("td", { attrs: { "data-field": "rule-metric" }, text: rule.metric }),
      C.el("td", { attrs: { "data-field": "rule-window" }, text: rule.window || C.DASH }),
      C.el("td", { attrs: { "data-field": "rule-operator" }, text: rule.operator }),
      C.el("td", { cls: "num", attrs: { "data-field": "rule-threshold" }, text: String(rule.threshold) }),
      C.el("td", { attrs: { "data-field": "rule-duration" }, text: rule.duration }),
      C.el("td", { cls: "severity-" + String(rule.severity).replace(/[^a-z]/g, ""),
                   attrs: { "data-field": "rule-severity" }, text: rule.severity }),
      C.el("td", { attrs: { "data-field": "rule-enabled" }, text: rule.enabled ? "yes" : "no" }),
    ];
  }

  function row(rule) {
    const tr = C.el("tr", { attrs: { id: "rule-" + rule.id, "data-rule-id": rule.id } }, cells(rule));
    if (canWrite) {
      const edit = C.el("button", { text: "Edit", attrs: { type: "button", "data-field": "rule-edit",
                                                           "aria-label": "Edit rule " + rule.name } });
      const toggle = C.el("button", { text: rule.enabled ? "Disable" : "Enable",
                                      attrs: { type: "button", "data-field": "rule-toggle" } });
      const outcome = C.el("span", { cls: "field-error",
                                     attrs: { "data-field": "rule-outcome", "aria-live": "polite" } });
      edit.addEventListener("click", function () { openEditor(rule.id); });
      toggle.addEventListener("click", function () { toggleRule(rule.id, toggle, outcome); });
      tr.appendChild(C.el("td", { cls: "actions" }, [edit, toggle, outcome]));
    }
    return tr;
  }

  function draw() {
    const body = C.field("rules");
    C.clear(body);
    const list = Array.from(rules.values()).sort(function (a, b) { return a.name.localeCompare(b.name); });
    for (const rule of list) body.appendChild(row(rule));
    C.setText(C.field("rules-count"), C.fmt.count(list.length));
    C.field("rules-status").textContent = list.length ? "" : "no rules yet";
  }

  function replaceRow(rule) {
    rules.set(rule.id, rule);
    const old = document.getElementById("rule-" + rule.id);
    const editor = document.getElementById("rule-editor-" + rule.id);
    if (editor) editor.remove();
    if (old) old.replaceWith(row(rule));
    else draw();
  }

  async function save(rule, body) {
    const answer = await C.api("/api/alert-rules/" + encodeURIComponent(rule.id), { method: "PUT", body: body });
    replaceRow(answer);
    return answer;
  }

  async function toggleRule(id, button, outcome) {
    const rule = rules.get(id);
    button.disabled = true;
    outcome.textContent = "";
    try {
      await save(rule, Object.assign(ruleIn(rule), { enabled: !rule.enabled }));
    } catch (error) {
      outcome.textContent = "Not changed: " + error.message;
      button.disabled = false;
    }
  }

  /* --- the edit form, a row under the rule's -------------------------------------------- */

  function choice(name, options, value, label) {
    const select = C.el("select", { attrs: { name: name, id: label } },
      options.map(function (o) { return C.el("option", { text: o === "" ? "none" : o, attrs: { value: o } }); }));
    if (options.indexOf(value) < 0) select.appendChild(C.el("option", { text: value, attrs: { value: value } }));
    select.value = value;
    return select;
  }

  function input(rule, name, id) {
    const value = rule[name];
    if (name === "window") return choice(name, page.windows || [""], value || "", id);
    if (name === "operator") return choice(name, page.operators || [], value, id);
    if (name === "severity") return choice(name, page.severities || [], value, id);
    if (name === "enabled") {
      const box = C.el("input", { attrs: { type: "checkbox", name: name, id: id } });
      box.checked = value === true;
      return box;
    }
    const attrs = { name: name, id: id, maxlength: name === "name" || name === "metric" ? 200 : 32 };
    if (name === "threshold") attrs.inputmode = "decimal";
    const text = C.el("input", { attrs: attrs });
    text.value = value === null || value === undefined ? "" : String(value);
    return text;
  }

  function openEditor(id) {
    const rule = rules.get(id);
    if (document.getElementById("rule-editor-" + id)) return;
    const form = C.el("form", { cls: "rule-form", attrs: { "data-field": "rule-form", novalidate: "" } });
    for (const name of EDITED) {
      const inputId = "rule-" + id + "-" + name;
      form.appendChild(C.el("div", { cls: "form-row" }, [
        C.el("label", { text: name, attrs: { for: inputId } }),
        input(rule, name, inputId),
        C.el("p", { cls: "field-error", attrs: { "data-error-for": name } }),
      ]));
    }
    const errors = C.el("p", { cls: "error", attrs: { role: "alert", "data-field": "rule-form-error" } });
    const cancel = C.el("button", { text: "Cancel", attrs: { type: "button" } });
    form.appendChild(C.el("div", { cls: "actions" }, [
      C.el("button", { text: "Save", attrs: { type: "submit", "data-field": "rule-save" } }), cancel, errors]));
    const colspan = document.querySelector("table.rules thead tr").children.length;
    const editor = C.el("tr", { cls: "editor", attrs: { id: "rule-editor-" + id } },
                        [C.el("td", { attrs: { colspan: colspan } }, [form])]);
    cancel.addEventListener("click", function () { editor.remove(); });
    form.addEventListener("submit", function (event) { event.preventDefault(); submit(id, form, errors); });
    document.getElementById("rule-" + id).after(editor);
    form.querySelector("input, select").focus();
  }

  function formValues(form) {
    const values = {};
    for (const name of EDITED) {
      const node = form.elements.namedItem(name);
      if (name === "enabled") values.enabled = node.checked;
      else if (name === "window") values.window = node.value || null;
      else if (name === "threshold") {
        // A number as a number; anything else as typed, for the API to name in its 422.
        const text = node.value.trim();
        values.threshold = text !== "" && isFinite(Number(text)) ? Number(text) : text;
      } else values[name] = node.value;
    }
    return values;
  }

  function submit(id, form, errors) {
    return C.saveForm(form, errors, function () {
      return save(rules.get(id), Object.assign(ruleIn(rules.get(id)), formValues(form)));
    }, function (field) {
      const name = field.split(/[.[]/)[0];
      return EDITED.indexOf(name) >= 0 ? name : null;
    });
  }

  async function start() {
    try {
      const answer = await C.api("/api/alert-rules");
      for (const rule of answer.rules || []) rules.set(rule.id, rule);
      draw();
    } catch (error) {
      C.setText(C.field("rules-status"), error.status === 404 ? "not available" : "could not load: " + error.message);
    }
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      // The rows did not exist when the browser looked for the anchor: go to it now.
      if (target) { target.classList.add("highlight"); target.scrollIntoView({ block: "center" }); }
    }
    C.markReady();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
