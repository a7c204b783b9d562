import { once } from 'node:events'
import t from 'tap'
import WebSocket from 'ws'
import { createTestApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'

const { wsUrl } = await createTestApp(t, { listen: true, env: { HEARTBEAT_MS: '250' } })

/** A client that answers pings itself (autoPong off) with `answer(pingPayload)`; resolves with its close code. */
async function pongingClient (userId: string, answer: (ping: Buffer) => Buffer): Promise<{ socket: WebSocket, closed: Promise<number>, pings: Buffer[] }> {
  const url = new URL(wsUrl)
  url.searchParams.set('userId', userId)
  const socket = new WebSocket(url, { autoPong: false })
  socket.on('error', () => {})
  t.teardown(() => { socket.terminate() })
  const pings: Buffer[] = []
  socket.on('ping', (data: Buffer) => {
    pings.push(data)
    socket.pong(answer(data))
  })
  const closed = once(socket, 'close').then(([code]) => code as number)
  await once(socket, 'message') // the connected hello
  return { socket, closed, pings }
}

/** Rejects when `promise` has not settled within `ms`: the behaviour under test is then missing. */
async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what}: not within ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

t.test('a client answering every ping stays connected', async (t) => {
  const client = await TestClient.connect(wsUrl, { userId: 'alive' }, t)
  let pings = 0
  const third = new Promise<void>((resolve) => {
    client.socket.on('ping', () => { if (++pings === 3) resolve() })
  })
  await third
  t.equal((await client.request('ping', {})).type, 'pong', 'still open after three heartbeats')
})

t.test('each ping carries a payload that changes from one heartbeat to the next', async (t) => {
  const client = await pongingClient('echo', (ping) => ping)
  while (client.pings.length < 3) await once(client.socket, 'ping')
  t.ok(client.pings.every((p) => p.length > 0), 'the server says which ping it is')
  t.equal(new Set(client.pings.map((p) => p.toString('hex'))).size, client.pings.length, 'no payload repeats')
  t.equal(client.socket.readyState, WebSocket.OPEN, 'a client echoing the payload stays connected')
})

t.test('pongs that do not echo the latest ping do not keep a client alive', async (t) => {
  const wrong = await pongingClient('unsolicited', () => Buffer.from('still here'))
  // Answers the first ping correctly, then always with the ping before the latest one.
  let previous: Buffer | undefined
  const stale = await pongingClient('stale', (ping) => {
    const answer = previous ?? ping
    previous = ping
    return answer
  })
  t.equal(await within(wrong.closed, 10_000, 'the client sending made-up pongs was terminated'), 1006)
  t.equal(await within(stale.closed, 10_000, 'the client echoing the previous ping was terminated'), 1006)
})
