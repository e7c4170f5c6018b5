// Harness for the conformance suite: starts a pushpull with Bitrix enabled on
// free ports, builds PHP-style publish requests (as BITRIX.md §3 describes the
// pull module building them), and creates official PullClients.
//
// The SDK is imported before the window shim exists, as it must be.
import { B24PullClientManager } from '@bitrix24/b24jssdk'
import WebSocket from 'ws'
import XMLHttpRequest from 'xhr2'
import { spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// A minimal browser: the client looks for window.WebSocket to choose
// WebSocket over long polling, and registers window listeners.
globalThis.window = { addEventListener () {}, removeEventListener () {}, WebSocket }
globalThis.document = { location: { href: 'http://localhost/' } }
globalThis.WebSocket = WebSocket
// xhr2's abort() leaves readyState at OPENED/LOADING; browsers move it to
// DONE (firing readystatechange) and then UNSENT, and the client's long
// polling relies on that to issue its next request after a disconnect.
class BrowserXHR extends XMLHttpRequest {
  abort () {
    const active = this.readyState > XMLHttpRequest.UNSENT && this.readyState < XMLHttpRequest.DONE
    super.abort()
    if (active) this._setReadyState(XMLHttpRequest.DONE)
    this.readyState = XMLHttpRequest.UNSENT
  }
}
globalThis.XMLHttpRequest = BrowserXHR

export const KEY = 'conformance-signature-key-0123456789'
export const HOST_ID = 'conformancehost0000000000000000a'

async function freePort () {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

export async function waitFor (cond, what, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await cond()) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error('timed out waiting for ' + what)
}

// startServer runs the server under test: GATEWAY_KIND=pushpull runs the
// real binary with a [bitrix] section; testserver runs
// web/bitrix/internal/testserver (until cmd/pushpull wires the routes).
export async function startServer ({ pollHold = '2s' } = {}) {
  const bin = process.env.GATEWAY_BIN
  if (!bin) throw new Error('GATEWAY_BIN is not set (run ./run-tests.sh)')
  const kind = process.env.GATEWAY_KIND || 'pushpull'
  const pubPort = await freePort()
  const subPort = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'bxconf-'))
  let args
  if (kind === 'testserver') {
    args = ['-pub', `127.0.0.1:${pubPort}`, '-sub', `127.0.0.1:${subPort}`, '-key', KEY, '-hold', pollHold]
  } else {
    const cfg = join(dir, 'pushpull.toml')
    writeFileSync(cfg, [
      '[server]', `data_dir = ${JSON.stringify(join(dir, 'data'))}`, 'shutdown_timeout = "5s"',
      '[log]', 'level = "warn"',
      '[api]', `addr = "127.0.0.1:${pubPort}"`, `keys = ["conformance-api-key-0123456789"]`,
      '[client]', `addr = "127.0.0.1:${subPort}"`, `public_url = "http://127.0.0.1:${subPort}"`,
      '[bitrix]', 'enabled = true', `signature_key = "${KEY}"`, `poll_hold = "${pollHold}"`, ''
    ].join('\n'))
    args = ['serve', '-config', cfg]
  }
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', d => { out += d })
  proc.stderr.on('data', d => { out += d })
  const exited = new Promise(resolve => proc.once('exit', resolve))
  const pub = `http://127.0.0.1:${pubPort}`
  const sub = `http://127.0.0.1:${subPort}`
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error('server exited: ' + out)
    try {
      const r = await fetch(`${pub}/server-stat/`)
      return r.ok
    } catch { return false }
  }, 'server start')
  return {
    pub,
    sub,
    apiKey: 'conformance-api-key-0123456789',
    output: () => out,
    async stop () {
      if (proc.exitCode === null) proc.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

// getConfig is what a plain PHP app does: ask pushpull for the user's
// pull.config.get-shaped config.
export async function getConfig (srv, user, version) {
  const r = await fetch(`${srv.pub}/api/v1/bitrix/config?user=${user}&version=${version}&host_id=${HOST_ID}`, {
    headers: { Authorization: `Bearer ${srv.apiKey}`, 'X-API-Key': srv.apiKey }
  })
  if (!r.ok) throw new Error(`config: ${r.status} ${await r.text()}`)
  return (await r.json()).result
}

// rawId strips the signature and public part of a signed channel.
export const rawId = signed => signed.split('.')[0].split(':')[0]

// newClient returns an official PullClient whose REST calls are answered by
// the config endpoint (the fake b24 object of BITRIX.md).
export function newClient (srv, user, version, { longPolling = false } = {}) {
  const b24 = {
    actions: {
      v2: {
        call: {
          async make ({ method }) {
            if (method !== 'pull.config.get') return { getData: () => ({ result: [] }) }
            const config = await getConfig(srv, user, version)
            return { getData: () => ({ result: config }) }
          }
        }
      }
    }
  }
  const saved = globalThis.window.WebSocket
  if (longPolling) globalThis.window.WebSocket = undefined
  const client = new B24PullClientManager({ b24, userId: user, siteId: 's1', skipStorageInit: true })
  const events = []
  client.subscribe({ moduleId: 'test', callback: (data) => events.push(data) })
  const clientEvents = []
  client.subscribe({ type: 'client', moduleId: 'test', callback: (data) => clientEvents.push(data) })
  const started = client.start().finally(() => { globalThis.window.WebSocket = saved })
  return { client, events, clientEvents, started }
}

export function event (command, params) {
  const now = Date.now() / 1000
  return {
    module_id: 'test',
    command,
    params,
    extra: { server_time: new Date().toISOString(), server_time_unix: now, server_name: 'conformance', revision_web: 19, revision_mobile: 3 }
  }
}

// --- PHP-style publishing (BITRIX.md §3) ---

// publishText is CPullChannel::Send for versions 1–3.
export async function publishText (srv, channels, ev, expiry = 86400) {
  const headers = { 'Content-Type': 'text/plain' }
  if (expiry) headers['Message-Expiry'] = String(expiry)
  const r = await fetch(`${srv.pub}/bitrix/pub/?CHANNEL_ID=${channels.join('/')}`, { method: 'POST', headers, body: JSON.stringify(ev) })
  if (r.status !== 200) throw new Error(`publishText: ${r.status} ${await r.text()}`)
}

// Minimal protobuf writer (proto3 wire format) for the RequestBatch PHP
// builds in ProtobufTransport.
function varint (n) {
  const out = []
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return Buffer.from(out)
}
const field = (num, bytes) => Buffer.concat([varint(num * 8 + 2), varint(bytes.length), bytes])
const uintField = (num, n) => Buffer.concat([varint(num * 8), varint(n)])

export function requestBatch ({ messages, channelStats }) {
  let request
  if (messages) {
    const msgs = messages.map(m => Buffer.concat([
      ...m.receivers.map(id => field(1, Buffer.concat([field(1, Buffer.from(id, 'hex')), uintField(2, 1)]))),
      field(3, Buffer.from(JSON.stringify(m.body))),
      m.expiry ? uintField(4, m.expiry) : Buffer.alloc(0),
      field(5, Buffer.from(m.type || 'test'))
    ]))
    request = field(1, Buffer.concat(msgs.map(m => field(1, m))))
  } else {
    const ids = channelStats.map(id => field(1, Buffer.concat([field(1, Buffer.from(id, 'hex')), uintField(2, 1)])))
    request = field(2, Buffer.concat(ids))
  }
  return field(1, request)
}

// publishProtobuf is ProtobufTransport::sendMessages for version 4.
export async function publishProtobuf (srv, channels, ev, expiry = 86400) {
  const body = requestBatch({ messages: [{ receivers: channels, body: ev, expiry }] })
  const r = await fetch(`${srv.pub}/bitrix/pub/?binaryMode=true`, { method: 'POST', body })
  if (r.status !== 200) throw new Error(`publishProtobuf: ${r.status} ${await r.text()}`)
}

// publishJsonRpc is JsonRpcTransport::sendMessages for version 5: an array
// of publish notifications, signed over the raw body.
export async function publishJsonRpc (srv, { userList, channelList, ev, expiry = 86400 }) {
  const params = { body: { ...ev, expiry }, expiry }
  if (userList?.length) params.userList = userList
  if (channelList?.length) params.channelList = channelList
  const body = JSON.stringify([{ jsonrpc: '2.0', method: 'publish', params }])
  const signature = createHmac('sha1', KEY).update(body).digest('hex')
  const r = await fetch(`${srv.pub}/bitrix/api/?signature=${signature}&hostId=${HOST_ID}`, { method: 'POST', body })
  const text = await r.text()
  if (r.status !== 200 || !text) throw new Error(`publishJsonRpc: ${r.status} ${text}`)
  return JSON.parse(text)
}

export async function jsonRpcCall (srv, method, params) {
  const body = JSON.stringify({ jsonrpc: '2.0', method, params })
  const signature = createHmac('sha1', KEY).update(body).digest('hex')
  const r = await fetch(`${srv.pub}/bitrix/api/?signature=${signature}`, { method: 'POST', body, headers: { 'X-HostId': HOST_ID } })
  return { status: r.status, body: await r.json() }
}

export { WebSocket }
