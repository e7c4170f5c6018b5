// Browser test of the admin dashboard: the real pushpull binary, the real
// page in headless Debian Chromium (playwright-core, executablePath
// /usr/bin/chromium; no browser download). Run by run-tests.sh.
//
// The steps share one gateway and one logged-in page, in order: log in,
// watch the counters move with traffic, look up a user and a push, handle
// a dead letter, send a test event, log out.
import test from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { Gateway, KEY, waitFor } from "../../../static/test/browser/gateway.mjs";

const BIN = process.env.GATEWAY_BIN;
const OUT = process.env.GATEWAY_ARTIFACTS || join(process.cwd(), "out");
const USER = "u-admin-1";
const TAG = "IM_CHAT_ADMIN";
assert.ok(BIN, "GATEWAY_BIN must name the pushpull binary");
mkdirSync(OUT, { recursive: true });

// The gateway under test (the harness of the JS client's browser suite):
// no push provider is configured, so every push is dead-lettered "no
// provider" — the test's source of dead letters.
const gw = new Gateway();

let browser, page, wsPage;

test.before(async () => {
  await gw.start();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
  // Fail on anything the page logs as an error (a CSP violation included).
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") page.errors.push(m.text()); });
});

test.after(async () => {
  await browser?.close();
  await gw.stop();
});

// tile returns the numeric value a counter tile shows (null for "–").
async function tile(id) {
  const v = await page.getAttribute(`#tile-${id} .value`, "data-value");
  return v === "" || v === null ? null : Number(v);
}

test("the page asks for the key and refuses a wrong one", async () => {
  const res = await page.goto(`${gw.api}/admin/?interval=500`);
  assert.equal(res.status(), 200);
  await page.fill("#key", "not-the-key-0123456789");
  await page.click("button[type=submit]");
  await page.waitForSelector("#login-error");
  assert.match(await page.textContent("#login-error"), /Invalid API key/);
  const cookies = await page.context().cookies();
  assert.equal(cookies.length, 0, "no cookie after a failed login");
  page.errors.length = 0; // the 401 of the refused login is expected
});

test("logging in with the key opens the dashboard with a session cookie", async () => {
  await page.fill("#key", KEY);
  await Promise.all([page.waitForURL(/\/admin\/$/), page.click("button[type=submit]")]);
  // The redirect drops ?interval; come back with it for quick refreshes.
  await page.goto(`${gw.api}/admin/?interval=500`);
  await page.waitForSelector("#tile-connections");
  await waitFor("first stats", async () => (await tile("connections")) === 0);
  const [ck] = await page.context().cookies();
  assert.equal(ck.name, "pushpull_admin");
  assert.equal(ck.httpOnly, true);
  assert.equal(ck.sameSite, "Strict");
  assert.ok(!ck.value.includes(KEY), "the cookie must not hold the key");
  assert.equal(await page.evaluate(() => document.cookie), "", "the cookie is not readable by scripts");
});

test("counters move when a WebSocket connects and events flow", async () => {
  // A real WebSocket, from a second page on the client listener.
  const { token } = await gw.call("POST", "/api/v1/tokens", { user: USER });
  wsPage = await browser.newPage();
  await wsPage.goto(`${gw.client}/healthz`);
  await wsPage.evaluate((url) => new Promise((resolve, reject) => {
    window.__frames = [];
    const ws = new WebSocket(url);
    ws.onmessage = (m) => window.__frames.push(m.data);
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("websocket failed"));
    window.__ws = ws;
  }), `ws://127.0.0.1:${gw.clientPort}/sub/ws?token=${encodeURIComponent(token)}`);
  await waitFor("connections = 1 on the dashboard", async () => (await tile("connections")) === 1);

  assert.equal(await tile("events"), 0, "no events yet");
  let n = 0;
  await waitFor("events/s > 0 on the dashboard", async () => {
    for (let i = 0; i < 5; i++) {
      await gw.call("POST", "/api/v1/events", { events: [{ users: [USER], module_id: "test", command: "tick", params: { n: n++ } }] });
    }
    return (await tile("events")) > 0;
  });
  await waitFor("events reached the socket", () => wsPage.evaluate(() => window.__frames.some((f) => f.includes('"tick"'))));
});

test("user look-up shows online state, watched tags and devices", async () => {
  await gw.call("POST", "/api/v1/devices", { user: USER, device_id: "phone-1", platform: "apns", token: "ab".repeat(32), app_id: "com.example" });
  await gw.call("POST", "/api/v1/watch", { users: [USER], tags: [TAG] });
  await page.fill("#user-id", USER);
  await page.click("#user-form button");
  await page.waitForSelector("#user-online");
  assert.equal(await page.textContent("#user-online"), "yes");
  assert.equal(await page.textContent("#user-connections"), "1");
  assert.equal(await page.textContent("#user-device-count"), "1");
  assert.match(await page.textContent("#user-tags"), new RegExp(TAG));
  const devRow = await page.textContent("#user-devices tbody");
  assert.match(devRow, /phone-1/);
  assert.match(devRow, /abababab…/, "the token is shown shortened");
  assert.ok(!devRow.includes("ab".repeat(32)), "the full token is not shown");

  await page.fill("#tag-id", TAG);
  await page.click("#tag-form button");
  await page.waitForSelector("#tag-users");
  assert.equal(await page.textContent("#tag-users"), USER);
});

let pushID;

test("a test push sent from the form can be looked up with its per-job states", async () => {
  await page.fill("#send-push-users", USER);
  await page.click("#send-push-form button");
  await waitFor("push result", async () => /"id": "n_/.test(await page.textContent("#send-push-result")));
  pushID = JSON.parse(await page.textContent("#send-push-result")).results[0].id;
  assert.equal(await page.inputValue("#push-id"), pushID, "the id is copied to the look-up form");
  // No provider: the job dies; wait for the dashboard's dead counter.
  await waitFor("dead letters = 1", async () => (await tile("dead")) === 1);
  await page.click("#push-form button");
  await page.waitForSelector("#push-states [data-state=dead]");
  assert.equal(await page.textContent("#push-states [data-state=dead]"), "1");
  assert.match(await page.textContent("#push-jobs tbody"), new RegExp(`${USER}[\\s\\S]*dead`));
});

test("dead letters can be listed, retried and deleted", async () => {
  await page.click("#dead-refresh");
  await page.waitForSelector("#dead tbody .dead-pick");
  assert.match(await page.textContent("#dead tbody"), /provider/);
  await page.check("#dead tbody .dead-pick");
  await page.click("#dead-retry");
  await waitFor("retried message", async () => (await page.textContent("#dead-msg")) === "retried 1");
  // Retried with still no provider: it dies again, with one more attempt.
  await waitFor("the retried job dead again", async () => {
    await page.click("#dead-refresh");
    return (await page.$$("#dead tbody .dead-pick")).length === 1;
  });
  await page.check("#dead tbody .dead-pick");
  await page.click("#dead-delete");
  await waitFor("deleted message", async () => (await page.textContent("#dead-msg")) === "deleted 1");
  await waitFor("the table empty", async () => (await page.$$("#dead tbody .dead-pick")).length === 0);
  const q = await gw.call("GET", "/api/v1/queue");
  assert.equal(q.dead, 0);
  await waitFor("dead letters = 0 on the dashboard", async () => (await tile("dead")) === 0);
});

test("a test event sent from the form reaches the user's socket", async () => {
  await page.fill("#event-users", USER);
  await page.fill("#event-form textarea[name=params]", '{"text":"from the admin form"}');
  await page.click("#event-form button");
  await waitFor("event result", async () => /"online"/.test(await page.textContent("#event-result")));
  assert.match(await page.textContent("#event-result"), new RegExp(USER));
  await waitFor("event on the socket", () => wsPage.evaluate(() => window.__frames.some((f) => f.includes("from the admin form"))));
  await waitFor("the sparklines drawn", () => page.evaluate(() =>
    (document.querySelector("#tile-events polyline").getAttribute("points") || "").split(" ").length > 2));
  await page.screenshot({ path: join(OUT, "admin.png"), fullPage: true });
  assert.deepEqual(page.errors, [], "the page logged errors");
});

test("logging out ends the session", async () => {
  await Promise.all([page.waitForSelector("#key"), page.click("#logout")]);
  const res = await page.request.get(`${gw.api}/admin/api/stats`);
  assert.equal(res.status(), 401);
  await wsPage.close();
});
