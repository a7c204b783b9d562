/**
 * Direct writes to a TCP handle (src/realtime/tcp-direct-write.ts) and WsTransport over real sockets, in both
 * SOCKET_WRITES modes: bytes arrive in call order across direct and stream writes, a write libuv had to queue
 * completes, a client that stops reading is cut at the cap, and ws's own frames (pings) interleave cleanly.
 */
import { once } from 'node:events'
import { createServer, connect, type Socket } from 'node:net'
import t from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { directWritesAvailable, useDirectWrites, writeDirect } from '../../src/realtime/tcp-direct-write.js'
import { WsTransport } from '../../src/realtime/ws-transport.js'

async function tcpPair (): Promise<{ server: Socket, client: Socket, close: () => void }> {
  const listener = createServer()
  listener.listen(0, '127.0.0.1')
  await once(listener, 'listening')
  const port = (listener.address() as { port: number }).port
  const client = connect(port, '127.0.0.1')
  const [server] = await once(listener, 'connection') as [Socket]
  await once(client, 'connect').catch(() => {})
  return { server, client, close: () => { server.destroy(); client.destroy(); listener.close() } }
}

async function readAll (client: Socket, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let got = 0
  client.resume()
  for await (const chunk of client) {
    chunks.push(chunk as Buffer)
    got += (chunk as Buffer).length
    if (got >= bytes) break
  }
  return Buffer.concat(chunks)
}

t.test('this Node.js offers direct writes (Node 20, 22 and 24 do)', async (t) => {
  t.ok(directWritesAvailable)
})

t.test('direct and stream writes keep call order, also when libuv has to queue', async (t) => {
  const { server, client, close } = await tcpPair()
  t.teardown(close)
  client.pause()
  const frames: Buffer[] = []
  const results: string[] = []
  let completions = 0
  // Big frames to a client that does not read: the kernel buffers fill and libuv queues the rest.
  for (let i = 0; i < 12; i++) {
    const frame = Buffer.alloc(512 * 1024, 65 + i)
    const result = writeDirect(server, frame, { directWritten: (ok, bytes) => { if (ok && bytes === frame.length) completions++ } })
    results.push(result)
    if (result === 'unavailable') server.write(frame)
    frames.push(frame)
  }
  t.equal(results[0], 'done', 'the first frame fits in the kernel buffers')
  t.ok(results.includes('pending'), 'a later frame was queued by libuv')
  const tail = Buffer.from('written through the stream')
  server.write(tail)
  frames.push(tail)
  t.equal(writeDirect(server, Buffer.from('x'), { directWritten: () => {} }), 'unavailable', 'while the stream has a write in flight, the direct path steps aside')
  const expected = Buffer.concat(frames)
  const received = await readAll(client, expected.length)
  t.ok(received.subarray(0, expected.length).equals(expected), `all ${expected.length} bytes arrived in call order`)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(completions, results.filter((r) => r === 'pending').length, 'every queued write reported its completion')
})

t.test('SOCKET_WRITES=stream turns the direct path off; a destroyed socket is refused', async (t) => {
  const { server, close } = await tcpPair()
  t.teardown(close)
  t.teardown(() => { useDirectWrites(true) })
  t.equal(useDirectWrites(false), false)
  t.equal(writeDirect(server, Buffer.from('a'), { directWritten: () => {} }), 'unavailable')
  t.equal(useDirectWrites(true), true)
  server.destroy()
  t.equal(writeDirect(server, Buffer.from('a'), { directWritten: () => {} }), 'unavailable', 'no handle: the caller falls back (and finds the socket closed)')
})

async function wsPair (): Promise<{ serverSocket: WebSocket, client: WebSocket, close: () => Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false })
  await once(wss, 'listening')
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`, { perMessageDeflate: false })
  const [serverSocket] = await once(wss, 'connection') as [WebSocket]
  if (client.readyState !== WebSocket.OPEN) await once(client, 'open')
  return {
    serverSocket,
    client,
    close: async () => {
      client.terminate()
      serverSocket.terminate()
      await new Promise((resolve) => { wss.close(resolve) })
    }
  }
}

for (const mode of ['direct', 'stream'] as const) {
  t.test(`WsTransport (${mode}): frames and ws's pings reach a ws client whole and in order`, async (t) => {
    useDirectWrites(mode === 'direct')
    t.teardown(() => { useDirectWrites(true) })
    const { serverSocket, client, close } = await wsPair()
    t.teardown(close)
    const transport = new WsTransport(serverSocket, 8 << 20, () => { t.fail('not a slow consumer') })
    const got: string[] = []
    let pings = 0
    client.on('ping', () => { pings++ })
    const all = new Promise<void>((resolve) => {
      client.on('message', (data) => {
        got.push(String(data))
        if (got.length === 2000) resolve()
      })
    })
    for (let i = 0; i < 2000; i++) {
      transport.send(Buffer.from(`{"n":${i},"pad":"${'p'.repeat(i % 300)}"}`), i % 3 === 0 ? 'sync' : undefined)
      if (i % 100 === 0) serverSocket.ping()
    }
    await all
    t.same(got.map((m) => (JSON.parse(m) as { n: number }).n), Array.from({ length: 2000 }, (_v, i) => i), 'every frame, in order')
    t.equal(pings, 20, 'and every ping between them')
  })

  t.test(`WsTransport (${mode}): a client that stops reading is terminated at the cap, not before`, async (t) => {
    useDirectWrites(mode === 'direct')
    t.teardown(() => { useDirectWrites(true) })
    const { serverSocket, client, close } = await wsPair()
    t.teardown(close)
    const cap = 1 << 20
    const slow: number[] = []
    const transport = new WsTransport(serverSocket, cap, (unsent) => { slow.push(unsent) })
    ;(client as unknown as { _socket: Socket })._socket.pause()
    const frame = Buffer.from(`{"pad":"${'q'.repeat(16 * 1024)}"}`)
    let sent = 0
    while (slow.length === 0 && sent < 100_000) {
      transport.send(frame)
      sent++
      if (sent % 64 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    t.equal(slow.length, 1, 'the slow consumer was reported once')
    t.ok(slow[0]! > cap, `it had more than the cap unsent (${slow[0]} bytes)`)
    t.ok(sent * frame.length > cap, `after ${sent} frames of ${frame.length} bytes`)
    await once(serverSocket, 'close')
    t.pass('and its socket was terminated')
  })
}
