// The pushpull process the browser suites run against (this one and
// web/admin's): the real binary (GATEWAY_BIN) on random loopback ports with
// a temporary data directory. Node built-ins only, so any suite can import
// it without this folder's node_modules.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";

export const KEY = "browser-test-key-0123456789";
export const SECRET = "browser-test-jwt-secret-0123456789abcdef";
const BIN = process.env.GATEWAY_BIN;

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export async function waitFor(what, fn, timeout = 15000) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

export class Gateway {
  constructor(env = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "pushpull-browser-"));
    this.env = env;
  }
  async start() {
    if (!this.apiPort) {
      this.apiPort = await freePort();
      this.clientPort = await freePort();
    }
    this.proc = spawn(BIN, [], {
      cwd: this.dir,
      env: {
        ...process.env,
        PUSHPULL_API_ADDR: `127.0.0.1:${this.apiPort}`,
        PUSHPULL_CLIENT_ADDR: `127.0.0.1:${this.clientPort}`,
        PUSHPULL_API_KEYS: KEY,
        PUSHPULL_CLIENT_JWT_SECRET: SECRET,
        PUSHPULL_CLIENT_ALLOWED_ORIGINS: "*",
        PUSHPULL_LOG_LEVEL: "warn",
        ...this.env,
      },
      stdio: ["ignore", "inherit", "inherit"],
    });
    this.exited = new Promise((r) => this.proc.on("exit", r));
    await waitFor("gateway ready", async () => (await fetch(`${this.api}/readyz`)).ok);
  }
  get api() {
    return `http://127.0.0.1:${this.apiPort}`;
  }
  get client() {
    return `http://127.0.0.1:${this.clientPort}`;
  }
  async kill(signal = "SIGKILL") {
    this.proc.kill(signal);
    await this.exited;
  }
  // stop ends the process (SIGTERM) and removes its data directory.
  async stop() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGTERM");
      await this.exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
  async call(method, path, body) {
    const res = await fetch(this.api + path, {
      method,
      headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
  async token(user, tags) {
    return (await this.call("POST", "/api/v1/tokens", { user, tags })).token;
  }
  async publish(user, n, extra = {}) {
    return this.call("POST", "/api/v1/events", {
      events: [{ users: [user], module_id: "test", command: "tick", params: { n }, ...extra }],
    });
  }
}
