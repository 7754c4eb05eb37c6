/* Shared helpers of every console page (docs/console.md): window.Chimera.
   Text reaches the page only through textContent and createElement: names come
   from miners and pool nodes, so nothing here ever parses a string as HTML. */
(function () {
  "use strict";

  const DASH = "\u2013";

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || "HTTP " + status);
      this.status = status;
      this.body = body;
    }
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  function withQuery(path, query) {
    if (!query) return path;
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null) params.set(name, String(value));
    }
    const text = params.toString();
    return text ? path + (path.includes("?") ? "&" : "?") + text : path;
  }

  /* fetch on this origin, JSON both ways; rejects with ApiError on any status >= 400. */
  async function api(path, options) {
    const opts = options || {};
    const method = (opts.method || "GET").toUpperCase();
    const headers = { Accept: "application/json" };
    const init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    const response = await fetch(withQuery(path, opts.query), init);
    const text = await response.text();
    let body = null;
    if (text) {
      try { body = JSON.parse(text); } catch (_) { body = { error: text.slice(0, 200) }; }
    }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  /* One EventSource on /live; re-created with back-off after an error (server restart,
     network), so a page heals by itself. handlers: {pool, miner, worker, alert, open, error}. */
  function live(params, handlers) {
    const url = withQuery("/live", params);
    let source = null;
    let delayMs = 1000;
    let timer = null;
    let closed = false;

    function connect() {
      timer = null;
      if (closed) return;
      source = new EventSource(url, { withCredentials: true });
      source.addEventListener("open", function () {
        delayMs = 1000;
        if (handlers.open) handlers.open();
      });
      for (const name of ["pool", "miner", "worker", "alert"]) {
        if (!handlers[name]) continue;
        source.addEventListener(name, function (event) {
          let record;
          try { record = JSON.parse(event.data); } catch (_) { return; }
          handlers[name](record);
        });
      }
      source.addEventListener("error", function () {
        // EventSource retries by itself only while the server keeps answering 200;
        // after a restart or a 5xx it gives up (CLOSED): start a new one, later each time.
        if (handlers.error) handlers.error();
        if (source) source.close();
        source = null;
        if (!closed && timer === null) {
          timer = setTimeout(connect, delayMs);
          delayMs = Math.min(delayMs * 2, 30000);
        }
      });
    }

    connect();
    return {
      close: function () {
        closed = true;
        if (timer !== null) clearTimeout(timer);
        if (source) source.close();
      },
    };
  }

  function isNumber(x) { return typeof x === "number" && isFinite(x); }

  const HASH_UNITS = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s"];

  const fmt = {
    hashrate: function (x) {
      if (!isNumber(x)) return DASH;
      let value = x;
      let unit = 0;
      while (Math.abs(value) >= 1000 && unit < HASH_UNITS.length - 1) { value /= 1000; unit += 1; }
      const digits = Math.abs(value) >= 100 ? 1 : 2;
      return value.toFixed(unit === 0 ? 0 : digits) + " " + HASH_UNITS[unit];
    },
    percent: function (x, digits) {
      return isNumber(x) ? (x * 100).toFixed(digits === undefined ? 1 : digits) + " %" : DASH;
    },
    count: function (n) {
      return isNumber(n) ? Math.round(n).toLocaleString("en-US") : DASH;
    },
    number: function (x, digits) {
      return isNumber(x) ? x.toFixed(digits === undefined ? 2 : digits) : DASH;
    },
    time: function (iso) {
      if (!iso) return DASH;
      const date = new Date(iso);
      return isNaN(date.getTime()) ? DASH : date.toLocaleString();
    },
    ago: function (iso) {
      if (!iso) return DASH;
      const date = new Date(iso);
      if (isNaN(date.getTime())) return DASH;
      const seconds = Math.max(0, Math.round((Date.now() - date.getTime()) / 1000));
      if (seconds < 60) return seconds + " s ago";
      if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
      if (seconds < 86400) return Math.round(seconds / 3600) + " h ago";
      return Math.round(seconds / 86400) + " d ago";
    },
  };

  function setText(element, text) {
    if (!element) return;
    element.textContent = text === null || text === undefined || text === "" ? DASH : String(text);
  }

  function field(name, root) {
    return (root || document).querySelector('[data-field="' + CSS.escape(name) + '"]');
  }

  /* el("td", {text: name, cls: "num", attrs: {"data-field": "x"}}, [children]) */
  function el(tag, options, children) {
    const element = document.createElement(tag);
    const opts = options || {};
    if (opts.cls) element.className = opts.cls;
    if (opts.text !== undefined && opts.text !== null) element.textContent = String(opts.text);
    for (const [name, value] of Object.entries(opts.attrs || {})) {
      if (/^on/i.test(name) || name.toLowerCase() === "style") continue; // no handlers or styles from data
      element.setAttribute(name, String(value));
    }
    for (const child of children || []) element.appendChild(child);
    return element;
  }

  function clear(element) {
    while (element && element.firstChild) element.removeChild(element.firstChild);
  }

  function pageData() {
    const node = document.getElementById("page-data");
    if (!node) return {};
    try { return JSON.parse(node.textContent || "{}"); } catch (_) { return {}; }
  }

  function markReady() { document.body.setAttribute("data-ready", "1"); }

  /* An edit form's save: field errors cleared and the submit button disabled while `save()` runs;
     a refusal's details go beside the fields they name (`[data-error-for="<name>"]`, where
     `nameOf(field without "body.")` gives the name, or null to leave it to the summary), the rest
     into `summary`. */
  async function saveForm(form, summary, save, nameOf) {
    for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
    summary.textContent = "";
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      await save();
    } catch (error) {
      const unplaced = [];
      for (const detail of (error.body && error.body.details) || []) {
        const name = nameOf(String(detail.field || "").replace(/^body\./, ""));
        const target = name && form.querySelector('[data-error-for="' + CSS.escape(name) + '"]');
        if (target) target.textContent = detail.message;
        else unplaced.push(String(detail.field) + ": " + detail.message);
      }
      summary.textContent = "Not saved: " + (unplaced.length ? unplaced.join("; ") : error.message);
      button.disabled = false;
    }
  }

  window.Chimera = {
    ApiError: ApiError, api: api, live: live, fmt: fmt, setText: setText, field: field, el: el,
    clear: clear, pageData: pageData, markReady: markReady, saveForm: saveForm, DASH: DASH,
  };
})();
