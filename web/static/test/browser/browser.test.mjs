// Browser tests: the real pullclient.js in headless Debian Chromium
// (playwright-core, executablePath /usr/bin/chromium; no browser download)
// against a real pushpull process. Run by run-tests.sh.
import test from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { Gateway, waitFor } from "./gateway.mjs";

const BIN = process.env.GATEWAY_BIN;
const OUT = process.env.GATEWAY_ARTIFACTS || join(process.cwd(), "out");
assert.ok(BIN, "GATEWAY_BIN must name the pushpull binary");
mkdirSync(OUT, { recursive: true });

let browser;
test.before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
test.after(async () => {
  await browser?.close();
});

// openDemo loads the demo page with a token and returns helpers reading
// what the page received.
async function openDemo(gw, user, { transport = "auto", tags, setup } = {}) {
  const page = await browser.newPage();
  if (setup) await setup(page);
  const token = await gw.token(user, tags);
  await page.goto(`${gw.client}/?autoconnect=1&transport=${transport}&token=${encodeURIComponent(token)}`);
  await page.evaluate(() => {
    window.__events = [];
    window.__resyncs = 0;
    window.pullClient.on("event", (e) => window.__events.push(e.params.n));
    window.pullClient.on("resync", () => window.__resyncs++);
  });
  await page.waitForFunction(() => window.pullClient.status === "online", null, { timeout: 15000 });
  const events = () => page.evaluate(() => window.__events.slice());
  return { page, events };
}

test("events arrive over WebSocket and the demo page shows them", async () => {
  const gw = new Gateway();
  await gw.start();
  try {
    const { page, events } = await openDemo(gw, "42");
    for (let i = 1; i <= 3; i++) await gw.publish("42", i);
    await waitFor("3 events", async () => (await events()).length === 3);
    assert.deepEqual(await events(), [1, 2, 3]);
    assert.equal(await page.evaluate(() => window.pullClient._mode), "websocket");
    await page.screenshot({ path: join(OUT, "demo-page.png"), fullPage: true });
    await page.close();
  } finally {
    await gw.kill();
  }
});

test("after the server is killed and restarted the client reconnects and reports resync", async () => {
  const gw = new Gateway();
  await gw.start();
  try {
    const { page, events } = await openDemo(gw, "7");
    await gw.publish("7", 1);
    await waitFor("first event", async () => (await events()).length === 1);
    await gw.kill("SIGKILL");
    await gw.start(); // same ports, same data dir, new epoch
    await waitFor("resync", () => page.evaluate(() => window.__resyncs > 0), 30000);
    await page.waitForFunction(() => window.pullClient.status === "online");
    await waitFor("event after restart", async () => {
      await gw.publish("7", 2);
      return (await events()).includes(2);
    });
    await page.close();
  } finally {
    await gw.kill();
  }
});

test("after a network drop, missed events are replayed in order without duplicates", async () => {
  const gw = new Gateway();
  await gw.start();
  try {
    // A WebSocket proxy in the page's network stack lets the test cut the
    // connection and keep reconnects out while it publishes.
    let dropped = false;
    const live = new Set();
    const { page, events } = await openDemo(gw, "9", {
      setup: (page) =>
        page.routeWebSocket(/\/sub\/ws/, (ws) => {
          if (dropped) {
            ws.close({ code: 1006, reason: "network down" });
            return;
          }
          const server = ws.connectToServer();
          live.add({ ws, server });
        }),
    });
    await gw.publish("9", 1);
    await waitFor("event 1", async () => (await events()).length === 1);
    dropped = true;
    for (const { ws, server } of live) {
      server.close();
      ws.close({ code: 1006, reason: "network down" });
    }
    live.clear();
    for (let i = 2; i <= 6; i++) await gw.publish("9", i);
    dropped = false;
    await waitFor("events 2..6", async () => (await events()).length >= 6, 30000);
    assert.deepEqual(await events(), [1, 2, 3, 4, 5, 6]);
    await gw.publish("9", 7);
    await waitFor("event 7", async () => (await events()).length === 7);
    assert.deepEqual(await events(), [1, 2, 3, 4, 5, 6, 7]);
    await page.close();
  } finally {
    await gw.kill();
  }
});

test("with WebSocket blocked the client falls back to long polling and still receives events", async () => {
  const gw = new Gateway();
  await gw.start();
  try {
    const { page, events } = await openDemo(gw, "5", {
      setup: (page) => page.routeWebSocket(/\/sub\/ws/, (ws) => ws.close({ code: 1006, reason: "blocked" })),
    });
    assert.equal(await page.evaluate(() => window.pullClient._mode), "longpoll");
    await gw.publish("5", 1);
    await gw.publish("5", 2);
    await waitFor("events over long polling", async () => (await events()).length === 2);
    assert.deepEqual(await events(), [1, 2]);
    await page.close();
  } finally {
    await gw.kill();
  }
});

test("extendWatch keeps a tag alive past its TTL", async () => {
  const gw = new Gateway({ PUSHPULL_LIVE_WATCH_TTL: "3s" });
  await gw.start();
  try {
    const tag = "CHAT_1";
    // User 11 extends its watch from the page; user 12 does not.
    const a = await openDemo(gw, "11", { tags: [tag] });
    const b = await openDemo(gw, "12", { tags: [tag] });
    await gw.call("POST", "/api/v1/watch", { users: ["11", "12"], tags: [tag], ttl: 3 });
    await a.page.evaluate((t) => window.pullClient.extendWatch(t, 1000), tag);
    await new Promise((r) => setTimeout(r, 4500)); // past the TTL on purpose
    await gw.call("POST", "/api/v1/events", {
      events: [{ tags: [tag], module_id: "test", command: "tick", params: { n: 1 } }],
    });
    await waitFor("tag event for the extending user", async () => (await a.events()).length === 1);
    assert.deepEqual(await b.events(), [], "the user who did not extend still watches the tag");
    await a.page.close();
    await b.page.close();
  } finally {
    await gw.kill();
  }
});
