// Conformance: the official Bitrix PullClient (@bitrix24/b24jssdk,
// unmodified) against a real pushpull, for server versions 3, 4 and 5.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import {
  startServer, getConfig, newClient, rawId, event, waitFor, KEY,
  publishText, publishProtobuf, publishJsonRpc, jsonRpcCall, requestBatch, WebSocket
} from './harness.mjs'

const USER = 42

// publishAs publishes ev to user USER the way the PHP module does for
// version v.
async function publishAs (srv, v, ev) {
  if (v === 5) {
    // PHP puts a user recipient in userList and (as its channel) in
    // channelList; the shared channel here reaches the same connection, which
    // must still get the message once.
    const cfg = await getConfig(srv, USER, 5)
    return publishJsonRpc(srv, { userList: [USER], channelList: [rawId(cfg.channels.shared.id)], ev })
  }
  const cfg = await getConfig(srv, USER, v)
  const priv = rawId(cfg.channels.private.id)
  if (v === 3) return publishText(srv, [priv], ev)
  return publishProtobuf(srv, [priv], ev)
}

const count = (events, command) => events.filter(e => e.command === command).length

for (const version of [3, 4, 5]) {
  describe(`server version ${version}`, () => {
    let srv
    before(async () => { srv = await startServer() })
    after(async () => { await srv?.stop() })

    test('WebSocket: live events, then replay after reconnect with mid exactly once', async () => {
      const { client, events, started } = newClient(srv, USER, version)
      try {
        await started
        assert.equal(client.isConnected(), true)
        await publishAs(srv, version, event('live', { n: 1, text: 'line\nbreak \u2028 sep' }))
        await waitFor(() => count(events, 'live') === 1, 'live event')
        const got = events.find(e => e.command === 'live')
        assert.deepEqual(got.params, { n: 1, text: 'line\nbreak \u2028 sep' })
        assert.equal(got.extra.revision_web, 19)
        assert.match(client.session.mid, /^\d{26}$/)

        client.disconnect(1000, 'conformance: offline')
        await waitFor(() => !client.isConnected(), 'disconnect')
        await publishAs(srv, version, event('missed', { n: 2 }))
        await publishAs(srv, version, event('missed', { n: 3 }))
        await client.connect()
        await waitFor(() => count(events, 'missed') === 2, 'replayed events')
        assert.deepEqual(events.filter(e => e.command === 'missed').map(e => e.params.n), [2, 3])
        await publishAs(srv, version, event('after', { n: 4 }))
        await waitFor(() => count(events, 'after') === 1, 'event after replay')
        assert.equal(count(events, 'live'), 1, 'nothing delivered twice')
        assert.equal(count(events, 'missed'), 2, 'nothing delivered twice')
      } finally {
        client.destroy()
      }
    })

    test('long polling: 304 with Last-Message-Id, events, replay after reconnect exactly once', async () => {
      const { client, events, started } = newClient(srv, USER, version, { longPolling: true })
      try {
        await started
        assert.equal(client.connector.constructor.name, 'LongPollingConnector')
        // The first poll has no mid; its 304 hands one over in Last-Message-Id.
        await waitFor(() => /^\d{26}$/.test(client.session.mid || ''), '304 with Last-Message-Id', 8000)
        await publishAs(srv, version, event('lp', { n: 1 }))
        await waitFor(() => count(events, 'lp') === 1, 'long-polled event')

        client.disconnect(1000, 'conformance: offline')
        await publishAs(srv, version, event('lpmissed', { n: 2 }))
        await publishAs(srv, version, event('lpmissed', { n: 3 }))
        await client.connect()
        await waitFor(() => count(events, 'lpmissed') === 2, 'replayed events')
        assert.deepEqual(events.filter(e => e.command === 'lpmissed').map(e => e.params.n), [2, 3])
        assert.equal(count(events, 'lp'), 1)
      } finally {
        client.destroy()
      }
    })
  })
}

describe('protocol edges', () => {
  let srv
  before(async () => { srv = await startServer() })
  after(async () => { await srv?.stop() })

  test('a bad channel signature is accepted, then closed with 4010', async () => {
    const cfg = await getConfig(srv, USER, 4)
    const bad = cfg.channels.private.id.replace(/.$/, c => (c === '0' ? '1' : '0'))
    const ws = new WebSocket(`${srv.sub.replace('http', 'ws')}/bitrix/subws/?CHANNEL_ID=${encodeURIComponent(bad)}&binaryMode=true`)
    const opened = new Promise(resolve => ws.once('open', () => resolve(true)))
    const closed = new Promise(resolve => ws.once('close', code => resolve(code)))
    assert.equal(await opened, true, 'the upgrade is accepted')
    assert.equal(await closed, 4010)
  })

  test('a bad channel on long polling is 400 "4010: Wrong Channel Id."', async () => {
    const r = await fetch(`${srv.sub}/bitrix/sub/?CHANNEL_ID=nothex`)
    assert.equal(r.status, 400)
    assert.equal(await r.text(), '4010: Wrong Channel Id.')
  })

  test('version 4: the client publishes to a public channel (sender CLIENT)', async () => {
    const { client, clientEvents, started } = newClient(srv, USER, 4)
    try {
      await started
      const cfg = client.getConfig()
      const pc = cfg.publicChannels[String(USER)]
      await client.sendMessageToChannels([`${pc.public_id}.${pc.signature}`], 'test', 'fromclient', { hi: 1 })
      await waitFor(() => clientEvents.some(e => e.command === 'fromclient'), 'client event')
      const ev = clientEvents.find(e => e.command === 'fromclient')
      assert.equal(ev.extra.sender.type, 1)
      assert.equal(ev.extra.sender.id, pc.public_id)
    } finally {
      client.destroy()
    }
  })

  test('version 4: channelStats reports online channels as PHP reads them', async () => {
    const { client, started } = newClient(srv, USER, 4)
    try {
      await started
      const priv = rawId(client.getConfig().channels.private.id)
      const r = await fetch(`${srv.pub}/bitrix/pub/?binaryMode=true`, { method: 'POST', body: requestBatch({ channelStats: [priv, 'f'.repeat(32)] }) })
      assert.equal(r.status, 200)
      const body = Buffer.from(await r.arrayBuffer())
      assert.ok(body.includes(Buffer.from(priv, 'hex')), 'the online channel is listed')
      const text = await (await fetch(`${srv.pub}/bitrix/pub/?CHANNEL_ID=${priv}/${'f'.repeat(32)}`)).json()
      assert.deepEqual(text.infos, [{ channel: priv, subscribers: 1 }])
    } finally {
      client.destroy()
    }
  })

  test('version 5: getUsersLastSeen says 0 for a connected user, and the signature is checked', async () => {
    const { client, started } = newClient(srv, USER, 5)
    try {
      await started
      const res = await jsonRpcCall(srv, 'getUsersLastSeen', { userList: [USER, 7] })
      assert.equal(res.status, 200)
      assert.deepEqual(res.body.result, { [USER]: 0 })
      assert.deepEqual(await client.ping(), {}, 'the client ping is answered')
    } finally {
      client.destroy()
    }
    const body = JSON.stringify({ jsonrpc: '2.0', method: 'getUsersLastSeen', params: { userList: [1] } })
    const wrong = createHmac('sha1', KEY + 'x').update(body).digest('hex')
    const r = await fetch(`${srv.pub}/bitrix/api/?signature=${wrong}`, { method: 'POST', body })
    assert.equal(r.status, 401)
  })
})

describe('server_restart on graceful shutdown', () => {
  for (const version of [3, 4, 5]) {
    test(`version ${version}: the client gets pull/server_restart`, async () => {
      const srv = await startServer()
      const { client, started } = newClient(srv, USER, version)
      try {
        await started
        await srv.stop()
        await waitFor(() => client.session.history?.pull?.server_restart === 1, 'server_restart')
      } finally {
        client.destroy()
        await srv.stop()
      }
    })
  }
})
