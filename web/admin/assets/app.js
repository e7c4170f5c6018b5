// pushpull admin dashboard. Plain browser JS, no build step. Everything it
// shows comes from /admin/api (the session-guarded copy of the publisher
// API, plus /stats); values from the server are inserted as text, never
// as HTML.
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  // ?interval=ms lets tests refresh faster than the default 2 s.
  const INTERVAL = Math.max(250, Number(params.get("interval")) || 2000);
  const WINDOW_MS = 5 * 60 * 1000; // sparklines show the last five minutes
  const POINTS = Math.ceil(WINDOW_MS / INTERVAL);

  // ---- API ---------------------------------------------------------------

  class APIError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || `HTTP ${status}`);
      this.status = status;
      this.code = body && body.error && body.error.code;
    }
  }

  async function api(method, path, body) {
    const headers = { "X-Pushpull-Admin": "1" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch("/admin/api/" + path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (res.status === 401) {
      // Session gone (expired, logged out elsewhere, key removed): the
      // page itself then serves the login form.
      location.replace("/admin/");
      throw new APIError(401, data);
    }
    if (!res.ok) throw new APIError(res.status, data);
    return data;
  }

  const enc = encodeURIComponent;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "dataset") Object.assign(e.dataset, v);
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function splitList(s) {
    return s.split(",").map((x) => x.trim()).filter(Boolean);
  }

  // ---- counters and sparklines -------------------------------------------

  const sumMap = (m, keys) => (m ? keys.reduce((t, k) => t + (m[k] || 0), 0) : null);

  // Each tile reads a gauge from the current snapshot, or a rate from the
  // difference of two snapshots. null means "not available".
  function rate(field) {
    return (cur, prev) => {
      if (!prev || cur[field] == null || prev[field] == null) return null;
      const dt = (cur.time - prev.time) / 1000;
      const d = cur[field] - prev[field];
      return dt > 0 && d >= 0 ? d / dt : null; // d < 0: the gateway restarted
    };
  }
  const pushTotal = (s) => (s.pushes_delivered == null ? null : s.pushes_delivered + s.pushes_failed);

  const TILES = [
    { id: "connections", name: "connections", get: (c) => c.connections, fmt: int },
    {
      id: "events", name: "events/s",
      get: (c, p) => (c.events_published != null ? rate("events_published")(c, p) : rate("event_requests")(c, p)),
      label: (c) => (c.events_published != null ? "events/s" : "event API calls/s"), fmt: dec,
    },
    { id: "delivered", name: "deliveries/s", get: rate("events_delivered"), fmt: dec },
    {
      id: "pushes", name: "pushes/s", fmt: dec,
      get: (c, p) => {
        if (!p || pushTotal(c) == null || pushTotal(p) == null) return null;
        const d = pushTotal(c) - pushTotal(p), dt = (c.time - p.time) / 1000;
        return dt > 0 && d >= 0 ? d / dt : null;
      },
    },
    {
      id: "push-errors", name: "push error rate", fmt: pct, bad: (v) => v > 0.05,
      get: (c, p) => {
        if (!p || pushTotal(c) == null || pushTotal(p) == null) return null;
        const total = pushTotal(c) - pushTotal(p), failed = c.pushes_failed - p.pushes_failed;
        return total > 0 && failed >= 0 ? failed / total : 0;
      },
    },
    { id: "queue", name: "queue depth", get: (c) => sumMap(c.queue, ["due", "deferred", "in_flight"]), fmt: int },
    { id: "dead", name: "dead letters", get: (c) => (c.queue ? c.queue.dead || 0 : null), fmt: int, bad: (v) => v > 0 },
    { id: "oldest", name: "oldest due (s)", get: (c) => c.queue_oldest_due_age_seconds, fmt: dec },
    {
      id: "http-errors", name: "API 5xx rate", fmt: pct, bad: (v) => v > 0,
      get: (c, p) => {
        if (!p || c.http_requests == null || p.http_requests == null) return null;
        const n = c.http_requests - p.http_requests, e = c.http_errors - p.http_errors;
        return n > 0 && e >= 0 ? e / n : 0;
      },
    },
    { id: "dropped", name: "events dropped/s", get: rate("events_dropped"), fmt: dec, bad: (v) => v > 0 },
    { id: "heap", name: "heap (MiB)", get: (c) => (c.heap_bytes == null ? null : c.heap_bytes / 1048576), fmt: dec },
    { id: "goroutines", name: "goroutines", get: (c) => c.goroutines, fmt: int },
  ];

  function int(v) { return String(Math.round(v)); }
  function dec(v) { return v >= 100 ? String(Math.round(v)) : v.toFixed(v >= 10 ? 1 : 2); }
  function pct(v) { return (v * 100).toFixed(1) + " %"; }

  const SVG = "http://www.w3.org/2000/svg";
  const tiles = new Map();

  function buildTiles() {
    const box = $("counters");
    for (const t of TILES) {
      const svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("preserveAspectRatio", "none");
      svg.setAttribute("aria-hidden", "true");
      const area = document.createElementNS(SVG, "polygon");
      const line = document.createElementNS(SVG, "polyline");
      svg.append(area, line);
      const name = el("div", { class: "name" }, t.name);
      const value = el("div", { class: "value", dataset: { value: "" } }, "–");
      const tile = el("div", { class: "tile", id: "tile-" + t.id }, name, value, svg);
      box.append(tile);
      tiles.set(t.id, { t, name, value, svg, line, area, points: [] });
    }
  }

  function drawSpark(s) {
    const pts = s.points;
    if (pts.length === 0) return;
    const vals = pts.filter((v) => v != null);
    const top = Math.max(1e-9, ...vals);
    // Until the window is full the history spans the whole width; then it
    // scrolls, new points entering at the right.
    s.svg.setAttribute("viewBox", `0 0 ${Math.max(1, pts.length - 1)} 100`);
    const xy = [];
    pts.forEach((v, i) => { if (v != null) xy.push(`${i},${(100 - (v / top) * 96).toFixed(1)}`); });
    s.line.setAttribute("points", xy.join(" "));
    if (xy.length > 1) {
      const first = xy[0].split(",")[0], last = xy[xy.length - 1].split(",")[0];
      s.area.setAttribute("points", `${first},100 ${xy.join(" ")} ${last},100`);
    }
  }

  let prev = null;

  function updateTiles(cur) {
    for (const s of tiles.values()) {
      const v = s.t.get(cur, prev);
      if (s.t.label) s.name.textContent = s.t.label(cur);
      s.value.textContent = v == null ? "–" : s.t.fmt(v);
      s.value.dataset.value = v == null ? "" : String(v);
      s.value.classList.toggle("bad", v != null && !!s.t.bad && s.t.bad(v));
      // Gauges chart from the first snapshot; rates from the second.
      if (v != null || prev) {
        s.points.push(v);
        if (s.points.length > POINTS) s.points.shift();
        drawSpark(s);
      }
    }
    prev = cur;
  }

  // ---- providers ---------------------------------------------------------

  function fmtCell(k, v) {
    if (v === null || v === undefined || v === "") return "";
    if (typeof v === "object") return JSON.stringify(v);
    if (/token/.test(k) && typeof v === "string" && v.length > 8) return v.slice(0, 8) + "…";
    if (typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v)) {
      const d = new Date(v);
      if (!isNaN(d)) return d.getFullYear() < 2 ? "" : d.toLocaleString();
    }
    return String(v);
  }

  // fillTable renders rows (objects) into table; columns default to the
  // union of the rows' keys, so fields added to the API show up unasked.
  function fillTable(table, rows, columns, lead) {
    const cols = columns || [...new Set(rows.flatMap((r) => Object.keys(r)))];
    // A table with a lead column (the dead letters' checkboxes) keeps the
    // header written in index.html.
    if (!lead) {
      const thead = table.tHead || table.createTHead();
      thead.replaceChildren(el("tr", null, ...cols.map((c) => el("th", null, c))));
    }
    const tbody = table.tBodies[0] || table.createTBody();
    tbody.replaceChildren(...rows.map((r) => {
      const tr = el("tr", null, ...(lead ? [lead(r)] : []),
        ...cols.map((c) => {
          const text = fmtCell(c, r[c]);
          // Long values are cut by CSS; the full text stays in the tooltip
          // (tokens are already shortened by fmtCell).
          return el("td", { class: typeof r[c] === "number" ? "num" : "", title: text }, text);
        }));
      return tr;
    }));
  }

  async function refreshProviders() {
    const q = await api("GET", "v1/queue");
    const rows = q.providers || [];
    $("providers-empty").hidden = rows.length > 0;
    $("providers").hidden = rows.length === 0;
    if (rows.length) fillTable($("providers"), rows);
  }

  // ---- polling -------------------------------------------------------------

  async function tick() {
    try {
      const cur = await api("GET", "stats");
      updateTiles(cur);
      await refreshProviders();
      $("status").textContent = "updated " + new Date(cur.time).toLocaleTimeString();
      $("status").classList.remove("bad");
    } catch (e) {
      $("status").textContent = "error: " + e.message;
      $("status").classList.add("bad");
    } finally {
      setTimeout(tick, INTERVAL);
    }
  }

  // ---- look-ups ------------------------------------------------------------

  function showError(box, e) {
    box.replaceChildren(el("p", { class: "error" }, e.message));
  }

  async function lookUpUser(user) {
    const box = $("user-result");
    box.replaceChildren(el("p", { class: "muted" }, "loading…"));
    try {
      const [devs, online, tags] = await Promise.all([
        api("GET", `v1/users/${enc(user)}/devices`),
        api("GET", `v1/online?users=${enc(user)}`),
        api("GET", `users/${enc(user)}/tags`),
      ]);
      const p = (online.users && online.users[user]) || { online: false, connections: 0 };
      const table = el("table", { id: "user-devices" });
      const devices = devs.devices || [];
      fillTable(table, devices, ["id", "platform", "app_id", "token", "sandbox", "name", "updated"]);
      box.replaceChildren(
        el("dl", null,
          el("dt", null, "online"), el("dd", { id: "user-online", class: p.online ? "ok" : "muted" }, p.online ? "yes" : "no"),
          el("dt", null, "connections"), el("dd", { id: "user-connections" }, p.connections || 0),
          el("dt", null, "clients"), el("dd", null, (p.clients || []).join(", ") || "–"),
          el("dt", null, "last seen"), el("dd", null, p.last_seen ? new Date(p.last_seen).toLocaleString() : "–"),
          el("dt", null, "watched tags"),
          el("dd", { id: "user-tags" }, ...(tags.tags.length ? tags.tags.map((t) => el("span", { class: "tag" }, t)) : ["–"])),
          el("dt", null, "devices"), el("dd", { id: "user-device-count" }, devices.length)),
        devices.length ? table : el("p", { class: "muted" }, "No registered device."));
    } catch (e) {
      showError(box, e);
    }
  }

  async function lookUpTag(tag) {
    const box = $("tag-result");
    try {
      const r = await api("GET", `v1/watch/${enc(tag)}`);
      const users = r.users || [];
      box.replaceChildren(users.length
        ? el("p", { id: "tag-users" }, ...users.map((u) => el("span", { class: "tag" }, u)))
        : el("p", { class: "muted" }, "Nobody watches this tag."));
    } catch (e) {
      showError(box, e);
    }
  }

  async function lookUpPush(id) {
    const box = $("push-result");
    box.replaceChildren(el("p", { class: "muted" }, "loading…"));
    try {
      const st = await api("GET", `v1/push/${enc(id)}`);
      const states = Object.entries(st.states || {});
      const table = el("table", { id: "push-jobs" });
      fillTable(table, st.jobs || [], ["job_id", "user", "platform", "app_id", "state", "attempts", "next_attempt", "last_error", "updated_at"]);
      box.replaceChildren(
        el("dl", { id: "push-states" }, ...states.flatMap(([k, v]) => [el("dt", null, k), el("dd", { dataset: { state: k } }, v)])),
        table);
    } catch (e) {
      showError(box, e.status === 404 ? new Error("Unknown notification id (or its status has expired).") : e);
    }
  }

  // ---- dead letters --------------------------------------------------------

  const DEAD_COLS = ["id", "notification_id", "user", "platform", "app_id", "reason", "last_error", "attempts", "died_at"];

  async function refreshDead() {
    const msg = $("dead-msg");
    try {
      const r = await api("GET", "v1/queue/dead?limit=100");
      const jobs = r.jobs || [];
      fillTable($("dead"), jobs, DEAD_COLS,
        (j) => el("td", null, el("input", { type: "checkbox", class: "dead-pick", value: j.id, "aria-label": "select " + j.id })));
      $("dead-empty").hidden = jobs.length > 0;
      $("dead-all").checked = false;
      if (r.next_cursor) msg.textContent = "showing the first 100";
    } catch (e) {
      msg.textContent = e.message;
    }
  }

  function picked() {
    return [...document.querySelectorAll(".dead-pick:checked")].map((c) => c.value);
  }

  async function deadAction(method, path, verb) {
    const ids = picked();
    const msg = $("dead-msg");
    if (!ids.length) { msg.textContent = "select some jobs first"; return; }
    try {
      const r = await api(method, path, { ids });
      msg.textContent = `${verb} ${r.retried ?? r.deleted ?? 0}`;
    } catch (e) {
      msg.textContent = e.message;
    }
    await refreshDead();
  }

  // ---- test sends ----------------------------------------------------------

  async function sendEvent(form) {
    const out = $("event-result");
    try {
      const f = new FormData(form);
      let p = {};
      const raw = String(f.get("params") || "").trim();
      if (raw) p = JSON.parse(raw);
      const r = await api("POST", "v1/events", {
        events: [{ users: splitList(String(f.get("users"))), module_id: f.get("module_id"), command: f.get("command"), params: p }],
      });
      out.textContent = JSON.stringify(r, null, 2);
      out.className = "result ok";
    } catch (e) {
      out.textContent = e.message;
      out.className = "result error";
    }
  }

  async function sendPush(form) {
    const out = $("send-push-result");
    try {
      const f = new FormData(form);
      const r = await api("POST", "v1/push", {
        notifications: [{ users: splitList(String(f.get("users"))), title: f.get("title"), body: f.get("body") }],
      });
      out.textContent = JSON.stringify(r, null, 2);
      out.className = "result ok";
      const id = r.results && r.results[0] && r.results[0].id;
      if (id) $("push-id").value = id;
    } catch (e) {
      out.textContent = e.message;
      out.className = "result error";
    }
  }

  // ---- wiring --------------------------------------------------------------

  function onSubmit(id, fn) {
    $(id).addEventListener("submit", (ev) => { ev.preventDefault(); fn(ev.target); });
  }

  document.addEventListener("DOMContentLoaded", () => {
    buildTiles();
    onSubmit("user-form", (f) => lookUpUser(f.user.value.trim()));
    onSubmit("push-form", (f) => lookUpPush(f.id.value.trim()));
    onSubmit("tag-form", (f) => lookUpTag(f.tag.value.trim()));
    onSubmit("event-form", sendEvent);
    onSubmit("send-push-form", sendPush);
    $("dead-refresh").addEventListener("click", refreshDead);
    $("dead-retry").addEventListener("click", () => deadAction("POST", "v1/queue/dead/retry", "retried"));
    $("dead-delete").addEventListener("click", () => deadAction("DELETE", "v1/queue/dead", "deleted"));
    $("dead-all").addEventListener("change", (ev) => {
      for (const c of document.querySelectorAll(".dead-pick")) c.checked = ev.target.checked;
    });
    $("logout").addEventListener("click", async () => {
      try {
        await fetch("/admin/logout", { method: "POST", headers: { "X-Pushpull-Admin": "1" }, credentials: "same-origin" });
      } catch { /* the reload shows the state either way */ }
      location.replace("/admin/");
    });
    refreshDead();
    tick();
  });
})();
