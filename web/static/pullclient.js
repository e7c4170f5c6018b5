/*
 * pullclient.js — the pushpull browser client. No dependencies, no build step.
 *
 * Use as a classic script (it defines the global PullClient):
 *   <script src="https://push.example.com/pullclient.js"></script>
 *   <script>
 *     const pull = new PullClient({ baseUrl: "https://push.example.com", getToken: fetchToken });
 *     pull.onPullEvent = (module_id, command, params, extra) => { ... };
 *     pull.start();
 *   </script>
 * or as an ES module: import { PullClient } from "https://push.example.com/pullclient.mjs";
 *
 * Transports: WebSocket first; after repeated WebSocket failures (or when it
 * is blocked) long polling, retrying WebSocket later; transport: "poll" runs
 * the server's 60-20-10 short-poll schedule. Reconnects use jittered
 * exponential backoff and resume from the last event id, so nothing that is
 * still in the server's history is missed; recent ids are de-duplicated.
 */
(function (root) {
  "use strict";

  // ---- pure helpers (unit-tested in Node) --------------------------------

  /**
   * Delay before reconnect attempt n (1-based): the first retry is fast, then
   * the delay doubles up to max; "full jitter" spreads a crowd of clients
   * reconnecting after a restart.
   */
  function backoffDelay(attempt, opts, random) {
    const o = Object.assign({ first: 250, base: 1000, max: 30000 }, opts || {});
    const rnd = random || Math.random;
    if (attempt <= 1) return Math.floor(o.first * (0.5 + rnd() / 2));
    const cap = Math.min(o.max, o.base * Math.pow(2, attempt - 2));
    return Math.floor(cap / 2 + (rnd() * cap) / 2);
  }

  /**
   * Delay before reconnecting after the server closed with 1012 (restart).
   * Every client of a node gets that close in the same instant, so the delay
   * is spread uniformly over a window: the one the server advises in the
   * close reason ("reconnect_within_ms=N"), else the client's own.
   */
  function restartDelay(reason, windowMs, random) {
    const rnd = random || Math.random;
    const m = /reconnect_within_ms=(\d+)/.exec(reason || "");
    let w = m ? parseInt(m[1], 10) : windowMs;
    if (!(w >= 0)) w = 5000;
    w = Math.min(w, 60000); // a hostile or broken hint cannot park clients for long
    return Math.floor(w * rnd());
  }

  /** Remembers the last `size` event ids to drop duplicates. */
  class MidDeduper {
    constructor(size) {
      this.size = size || 200;
      this.ring = [];
      this.set = new Set();
    }
    /** Returns true the first time id is seen, false for a duplicate. */
    add(id) {
      if (!id) return true;
      if (this.set.has(id)) return false;
      this.set.add(id);
      this.ring.push(id);
      if (this.ring.length > this.size) this.set.delete(this.ring.shift());
      return true;
    }
  }

  /**
   * The 60-20-10 short-poll schedule, used when the server gives no
   * next_poll_in: 10 s after a poll that returned events, 20 s for the next
   * four polls, then 60 s while nothing arrives.
   */
  class PollSchedule {
    constructor() {
      this.quiet = 5; // polls since the last events; starts "long quiet"
    }
    next(gotEvents, serverHint) {
      if (gotEvents) this.quiet = 0;
      else this.quiet++;
      if (typeof serverHint === "number" && serverHint >= 0) return serverHint * 1000;
      if (this.quiet === 0) return 10000;
      if (this.quiet <= 4) return 20000;
      return 60000;
    }
  }

  /** Splits a WebSocket text frame into the JSON objects it carries. */
  function parseFrame(text) {
    const out = [];
    for (const line of String(text).split("\n")) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line));
      } catch (e) {
        /* a broken line must not lose the rest of the frame */
      }
    }
    return out;
  }

  // ---- the client ---------------------------------------------------------

  const STATUS_CONNECTING = "connecting";
  const STATUS_ONLINE = "online";
  const STATUS_OFFLINE = "offline";

  class PullClient {
    /**
     * options:
     *   baseUrl        the client listener, e.g. "https://push.example.com" (default: this page's origin)
     *   token          a client token, or
     *   getToken       async () => token; called at start and whenever the token is rejected or expires
     *   transport      "auto" (default) | "websocket" | "longpoll" | "poll"
     *   autoAck        ack each event after the page's handlers ran (for "live first, push if unread")
     *   offlineGrace   ms before a lost connection is reported "offline" (default 5000)
     *   pauseWhenHidden  disconnect while the tab is hidden (default false)
     *   wsFailuresBeforeFallback  WebSocket failures in a row before long polling (default 3)
     *   wsRetryAfter   ms on long polling before WebSocket is tried again (default 120000)
     *   backoff        {first, base, max} in ms
     *   restartWindow  ms over which reconnects after a server restart (1012) are spread
     *                  when the server gives no advice (default 5000)
     *   debug          log to the console
     */
    constructor(options) {
      const o = Object.assign(
        {
          baseUrl: root.location ? root.location.origin : "",
          transport: "auto",
          autoAck: false,
          offlineGrace: 5000,
          pauseWhenHidden: false,
          wsFailuresBeforeFallback: 3,
          wsRetryAfter: 120000,
          backoff: {},
          restartWindow: 5000,
          debug: false,
        },
        options || {}
      );
      this.options = o;
      this.baseUrl = String(o.baseUrl).replace(/\/+$/, "");
      this.token = o.token || "";
      this.lastId = "";
      this.epoch = "";
      this.status = STATUS_OFFLINE;
      this.onPullEvent = null;
      this._handlers = {};
      this._subs = [];
      this._dedupe = new MidDeduper(200);
      this._watch = new Map(); // tag -> timer
      this._running = false;
      this._attempt = 0;
      this._wsFailures = 0;
      this._mode = o.transport === "auto" ? "websocket" : o.transport;
      this._schedule = new PollSchedule();
      this._timers = new Set();
      this._ws = null;
      this._abort = null;
      this._offlineTimer = null;
      this._gen = 0; // connection generation: stale callbacks check it
      this._onVisibility = this._onVisibility.bind(this);
    }

    // -- events --
    on(type, fn) {
      (this._handlers[type] = this._handlers[type] || []).push(fn);
      return () => this.off(type, fn);
    }
    off(type, fn) {
      const l = this._handlers[type];
      if (l) this._handlers[type] = l.filter((f) => f !== fn);
    }
    _emit(type, arg) {
      for (const fn of (this._handlers[type] || []).slice()) {
        try {
          fn(arg);
        } catch (e) {
          this._log("handler error", e);
        }
      }
    }
    /** subscribe({moduleId, command?, callback(params, extra, command, event)}) -> unsubscribe */
    subscribe(s) {
      const sub = { moduleId: String(s.moduleId || "").toLowerCase(), command: s.command, callback: s.callback };
      this._subs.push(sub);
      return () => {
        this._subs = this._subs.filter((x) => x !== sub);
      };
    }

    // -- lifecycle --
    start() {
      if (this._running) return;
      this._running = true;
      if (root.document && root.document.addEventListener) {
        root.document.addEventListener("visibilitychange", this._onVisibility);
      }
      this._connect();
    }
    stop() {
      this._running = false;
      this._gen++;
      if (root.document && root.document.removeEventListener) {
        root.document.removeEventListener("visibilitychange", this._onVisibility);
      }
      for (const t of this._timers) clearTimeout(t);
      this._timers.clear();
      for (const t of this._watch.values()) clearTimeout(t);
      this._watch.clear();
      this._closeTransport(1000, "stopped");
      clearTimeout(this._offlineTimer);
      this._setStatus(STATUS_OFFLINE, true);
    }

    /** Keeps extending a watch on tag (granted by the backend or listed in the token) until clearWatch. */
    extendWatch(tag, everyMs) {
      if (this._watch.has(tag)) return;
      const every = everyMs || 25 * 60 * 1000; // before the server's 31-minute TTL
      const tick = () => {
        this._sendWatch([tag]);
        this._watch.set(tag, this._later(tick, every));
      };
      this._watch.set(tag, this._later(tick, 0));
    }
    clearWatch(tag) {
      clearTimeout(this._watch.get(tag));
      this._watch.delete(tag);
    }
    /** Acknowledges an event id (see ack_timeout in the API: push if unread). */
    ack(id) {
      if (this._ws && this._ws.readyState === 1) {
        this._ws.send(JSON.stringify({ op: "ack", id: id }));
      }
    }

    // -- internals --
    _log() {
      if (this.options.debug && root.console) root.console.log.apply(root.console, ["[pullclient]"].concat([].slice.call(arguments)));
    }
    _later(fn, ms) {
      const t = setTimeout(() => {
        this._timers.delete(t);
        fn();
      }, ms);
      this._timers.add(t);
      return t;
    }
    _setStatus(s, force) {
      if (s === this.status && !force) return;
      if (s === STATUS_OFFLINE && !force) {
        // Report offline only after a grace: a quick reconnect is invisible.
        if (this._offlineTimer) return;
        this._offlineTimer = setTimeout(() => {
          this._offlineTimer = null;
          if (this.status !== STATUS_ONLINE) {
            this.status = STATUS_OFFLINE;
            this._emit("status", STATUS_OFFLINE);
          }
        }, this.options.offlineGrace);
        if (this.status !== STATUS_CONNECTING) {
          this.status = STATUS_CONNECTING;
          this._emit("status", STATUS_CONNECTING);
        }
        return;
      }
      if (s === STATUS_ONLINE) {
        clearTimeout(this._offlineTimer);
        this._offlineTimer = null;
      }
      if (s === this.status) return;
      this.status = s;
      this._emit("status", s);
    }
    async _ensureToken(refresh) {
      if ((refresh || !this.token) && this.options.getToken) {
        this.token = await this.options.getToken();
      }
      if (!this.token) throw new Error("pullclient: no token (give token or getToken)");
      return this.token;
    }
    _url(path, params, base) {
      const q = Object.keys(params)
        .filter((k) => params[k] !== undefined && params[k] !== "")
        .map((k) => encodeURIComponent(k) + "=" + encodeURIComponent(params[k]))
        .join("&");
      return (base === undefined ? this.baseUrl : base) + path + (q ? "?" + q : "");
    }
    _onVisibility() {
      if (!this.options.pauseWhenHidden || !this._running) return;
      if (root.document.hidden) {
        this._gen++;
        this._closeTransport(1000, "hidden");
      } else {
        this._connect();
      }
    }
    _closeTransport(code, reason) {
      if (this._ws) {
        try {
          this._ws.onclose = this._ws.onmessage = this._ws.onerror = this._ws.onopen = null;
          this._ws.close(code, reason);
        } catch (e) {
          /* already closed */
        }
        this._ws = null;
      }
      if (this._abort) {
        this._abort.abort();
        this._abort = null;
      }
    }
    _retry(refreshToken) {
      if (!this._running) return;
      this._attempt++;
      const d = backoffDelay(this._attempt, this.options.backoff);
      this._log("reconnect in", d, "ms");
      this._setStatus(STATUS_OFFLINE);
      const gen = ++this._gen;
      this._later(() => {
        if (gen === this._gen) this._connect(refreshToken);
      }, d);
    }
    _retryAfterRestart(reason) {
      if (!this._running) return;
      // Later failures (the new process not up yet) back off from here.
      this._attempt = 1;
      const d = restartDelay(reason, this.options.restartWindow);
      this._log("server restart: reconnect in", d, "ms");
      this._setStatus(STATUS_OFFLINE);
      const gen = ++this._gen;
      this._later(() => {
        if (gen === this._gen) this._connect(false);
      }, d);
    }
    async _connect(refreshToken) {
      if (!this._running) return;
      const gen = ++this._gen;
      this._closeTransport(1000, "reconnect");
      if (this.status !== STATUS_ONLINE) this._setStatus(STATUS_CONNECTING);
      try {
        await this._ensureToken(refreshToken);
      } catch (e) {
        this._log("token", e);
        if (gen === this._gen) this._retry(false);
        return;
      }
      if (gen !== this._gen) return;
      if (this._mode === "websocket" && typeof root.WebSocket === "function") this._connectWS(gen);
      else this._poll(gen);
    }

    _connectWS(gen) {
      const wsBase = this.baseUrl.replace(/^http/, "ws");
      let opened = false;
      let ws;
      try {
        ws = new root.WebSocket(this._url("/sub/ws", { token: this.token, since: this.lastId }, wsBase));
      } catch (e) {
        this._wsFailed(gen);
        return;
      }
      this._ws = ws;
      ws.onopen = () => {
        opened = true;
      };
      ws.onmessage = (m) => {
        if (gen !== this._gen) return;
        for (const msg of parseFrame(m.data)) this._handle(msg, "websocket");
      };
      ws.onclose = (ev) => {
        if (gen !== this._gen) return;
        this._ws = null;
        if (ev.code === 1012) {
          this._retryAfterRestart(ev.reason);
        } else if (ev.code === 4001) {
          this._retry(true); // token rejected or expired: refresh, then reconnect
        } else if (ev.code === 4003) {
          this._emit("error", { code: 4003, reason: ev.reason });
          this._retry(true);
        } else if (!opened || ev.code === 1006 || ev.code === 1015) {
          this._wsFailed(gen);
        } else {
          this._retry(false);
        }
      };
      ws.onerror = () => {};
    }
    _wsFailed(gen) {
      if (gen !== this._gen) return;
      this._wsFailures++;
      if (this.options.transport === "auto" && this._wsFailures >= this.options.wsFailuresBeforeFallback) {
        this._log("WebSocket keeps failing: falling back to long polling");
        this._mode = "longpoll";
        this._emit("transport", "longpoll");
        this._later(() => {
          // Try WebSocket again later; polling continues until it works.
          if (this._running && this._mode === "longpoll") {
            this._wsFailures = this.options.wsFailuresBeforeFallback - 1;
            this._mode = "websocket";
          }
        }, this.options.wsRetryAfter);
      }
      this._retry(false);
    }

    async _poll(gen, held) {
      const short = this._mode === "poll";
      // The first request of a long-polling session answers at once, so the
      // client knows it is online (and resumes) without a 40 s hold.
      const ctl = typeof AbortController === "function" ? new AbortController() : null;
      this._abort = ctl;
      let res;
      try {
        res = await fetch(this._url("/sub/poll", { since: this.lastId, wait: short || !held ? 0 : 40 }), {
          headers: { Authorization: "Bearer " + this.token },
          signal: ctl ? ctl.signal : undefined,
          cache: "no-store",
        });
      } catch (e) {
        if (gen === this._gen) this._retry(false);
        return;
      }
      if (gen !== this._gen) return;
      if (res.status === 401) {
        this._retry(true);
        return;
      }
      if (!res.ok) {
        this._retry(false);
        return;
      }
      let body;
      try {
        body = await res.json();
      } catch (e) {
        this._retry(false);
        return;
      }
      if (gen !== this._gen) return;
      this._attempt = 0;
      this._setStatus(STATUS_ONLINE);
      if (this.lastId && body.resumed === false) this._emit("resync", { reason: "history_lost" });
      const events = body.events || [];
      for (const ev of events) this._handle(ev, short ? "poll" : "longpoll");
      if (body.last_id) this.lastId = body.last_id;
      if (this._mode === "websocket") {
        this._connect(); // WebSocket retry is due
        return;
      }
      const delay = short ? this._schedule.next(events.length > 0, body.next_poll_in) : 0;
      this._later(() => {
        if (gen === this._gen) this._poll(gen, true);
      }, delay);
    }

    _sendWatch(tags) {
      if (this._ws && this._ws.readyState === 1) {
        this._ws.send(JSON.stringify({ op: "watch", tags: tags }));
        return;
      }
      if (!this.token) return;
      fetch(this.baseUrl + "/sub/watch", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + this.token },
        body: JSON.stringify({ tags: tags }),
      })
        .then((r) => {
          if (r.status === 403) this._emit("error", { code: 403, reason: "watch not allowed", tags: tags });
        })
        .catch(() => {});
    }

    _handle(msg, transport) {
      switch (msg.type) {
        case "welcome":
          this._attempt = 0;
          this._wsFailures = 0;
          this.epoch = msg.epoch;
          this._setStatus(STATUS_ONLINE);
          if (msg.last_id) this.lastId = msg.last_id;
          for (const tag of this._watch.keys()) this._sendWatch([tag]);
          return;
        case "resync":
          this._emit("resync", { reason: msg.reason });
          return;
        case "event":
          break;
        case "pong":
          return;
        case "error":
          this._emit("error", msg);
          return;
        default:
          if (!msg.id || !msg.module_id) return;
      }
      if (!this._dedupe.add(msg.id)) return;
      if (msg.id && msg.id > this.lastId) this.lastId = msg.id;
      const ev = {
        id: msg.id,
        channel: msg.channel,
        moduleId: msg.module_id,
        command: msg.command,
        params: msg.params,
        extra: msg.extra || {},
        transport: transport,
      };
      this._emit("event", ev);
      for (const s of this._subs.slice()) {
        if (s.moduleId === ev.moduleId && (!s.command || s.command === ev.command)) {
          try {
            s.callback(ev.params, ev.extra, ev.command, ev);
          } catch (e) {
            this._log("subscriber error", e);
          }
        }
      }
      if (typeof this.onPullEvent === "function") {
        try {
          this.onPullEvent(ev.moduleId, ev.command, ev.params, ev.extra);
        } catch (e) {
          this._log("onPullEvent error", e);
        }
      }
      if (this.options.autoAck && ev.id) this.ack(ev.id);
    }
  }

  PullClient._internal = { backoffDelay: backoffDelay, restartDelay: restartDelay, MidDeduper: MidDeduper, PollSchedule: PollSchedule, parseFrame: parseFrame };
  root.PullClient = PullClient;
  if (typeof module === "object" && module && module.exports) module.exports = PullClient;
})(typeof globalThis !== "undefined" ? globalThis : this);
