// Unit tests for the pure logic of pullclient.js: node --test web/static/test/
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const PullClient = require("../../pullclient.js");
const { backoffDelay, MidDeduper, PollSchedule, parseFrame } = PullClient._internal;

test("backoff: first retry fast, then doubling to the cap, jittered within [cap/2, cap]", () => {
  const opts = { first: 250, base: 1000, max: 30000 };
  assert.ok(backoffDelay(1, opts, () => 0) >= 125 && backoffDelay(1, opts, () => 0.999) <= 250);
  const caps = [1000, 2000, 4000, 8000, 16000, 30000, 30000];
  caps.forEach((cap, i) => {
    const lo = backoffDelay(i + 2, opts, () => 0);
    const hi = backoffDelay(i + 2, opts, () => 0.999999);
    assert.equal(lo, cap / 2, `attempt ${i + 2} low`);
    assert.ok(hi <= cap && hi >= cap - 1, `attempt ${i + 2} high ${hi}`);
  });
});

test("dedupe: drops repeats, forgets beyond its window", () => {
  const d = new MidDeduper(3);
  assert.equal(d.add("a"), true);
  assert.equal(d.add("a"), false);
  d.add("b");
  d.add("c");
  d.add("d"); // evicts a
  assert.equal(d.add("b"), false);
  assert.equal(d.add("a"), true);
  assert.equal(d.add(""), true, "events without id are never dropped");
});

test("60-20-10: 10 s after events, 20 s for four polls, then 60 s; server hint wins", () => {
  const s = new PollSchedule();
  assert.equal(s.next(false), 60000, "nothing yet: slow");
  assert.equal(s.next(true), 10000);
  assert.deepEqual([s.next(false), s.next(false), s.next(false), s.next(false)], [20000, 20000, 20000, 20000]);
  assert.equal(s.next(false), 60000);
  assert.equal(s.next(false), 60000);
  assert.equal(s.next(true), 10000);
  assert.equal(s.next(false, 7), 7000);
});

test("parseFrame splits newline-batched frames and survives a broken line", () => {
  const msgs = parseFrame('{"type":"event","id":"1"}\n{broken\n\n{"type":"event","id":"2"}');
  assert.deepEqual(msgs.map((m) => m.id), ["1", "2"]);
});

test("short polling follows next_poll_in and de-duplicates, with fake timers", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const answers = [
    { events: [{ type: "event", id: "00000000010000000000000001", module_id: "im", command: "m", params: { n: 1 } }], last_id: "00000000010000000000000001", resumed: true, next_poll_in: 10 },
    { events: [{ type: "event", id: "00000000010000000000000001", module_id: "im", command: "m", params: { n: 1 } }], last_id: "00000000010000000000000001", resumed: true, next_poll_in: 20 },
    { events: [], last_id: "00000000010000000000000001", resumed: true, next_poll_in: 60 },
  ];
  const urls = [];
  global.fetch = async (url) => {
    urls.push(url);
    const body = answers.shift() || { events: [], last_id: "", resumed: true, next_poll_in: 60 };
    return { ok: true, status: 200, json: async () => body };
  };
  const c = new PullClient({ baseUrl: "http://x", token: "t", transport: "poll" });
  const got = [];
  c.onPullEvent = (mod, cmd, params) => got.push(params.n);
  const settle = () => new Promise((r) => setImmediate(r));
  c.start();
  await settle();
  assert.equal(urls.length, 1);
  assert.match(urls[0], /\/sub\/poll\?wait=0$/);
  t.mock.timers.tick(9999);
  await settle();
  assert.equal(urls.length, 1, "polled before next_poll_in");
  t.mock.timers.tick(1);
  await settle();
  assert.equal(urls.length, 2);
  assert.match(urls[1], /since=00000000010000000000000001/);
  t.mock.timers.tick(20000);
  await settle();
  assert.equal(urls.length, 3);
  assert.deepEqual(got, [1], "duplicate event delivered twice");
  c.stop();
  delete global.fetch;
});

test("restart delay: spread over the server's advised window, else the client's, capped", () => {
  const { restartDelay } = PullClient._internal;
  assert.equal(restartDelay("server restart; reconnect_within_ms=4000", 5000, () => 0.5), 2000);
  assert.equal(restartDelay("server restart; reconnect_within_ms=4000", 5000, () => 0), 0);
  assert.ok(restartDelay("server restart; reconnect_within_ms=4000", 5000, () => 0.9999) < 4000);
  assert.equal(restartDelay("server restart", 5000, () => 0.5), 2500, "no advice: the client's window");
  assert.equal(restartDelay("reconnect_within_ms=99999999", 5000, () => 0.5), 30000, "capped at 60 s");
});

test("a 1012 close reconnects after the jittered restart delay, not the fast first retry", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  t.mock.method(Math, "random", () => 0.5);
  const sockets = [];
  global.WebSocket = class {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      sockets.push(this);
    }
    close() {}
  };
  const settle = () => new Promise((r) => setImmediate(r));
  const c = new PullClient({ baseUrl: "http://x", token: "t", transport: "websocket" });
  c.start();
  await settle();
  assert.equal(sockets.length, 1);
  sockets[0].readyState = 1;
  sockets[0].onopen();
  sockets[0].onclose({ code: 1012, reason: "server restart; reconnect_within_ms=4000" });
  t.mock.timers.tick(1999);
  await settle();
  assert.equal(sockets.length, 1, "reconnected before the jittered delay");
  t.mock.timers.tick(1);
  await settle();
  assert.equal(sockets.length, 2, "did not reconnect after the delay");
  c.stop();
  delete global.WebSocket;
});
