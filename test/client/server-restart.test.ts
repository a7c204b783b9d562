/**
 * The server process stops with SIGTERM (1012 to every socket) and starts again on the same database and
 * port: the clients reconnect on their own, rejoin with since and recover; a chat sent while the server was
 * down goes out after the rejoin; nobody sees a line twice or misses one, and nobody is seen leaving.
 */
import t from 'tap'
import { serverDatabase, startServer } from '../helpers/server-process.js'
import { member, rejoined, watch } from './helpers/watch-party.js'

const ENV = { DISCONNECT_GRACE_MS: '60000' }

t.test('SIGTERM and restart: clients reconnect, rejoin, recover; no duplicates, no missed chat', async (t) => {
  const database = await serverDatabase(t)
  const first = await startServer(t, { database, env: ENV })
  const url = first.wsUrl
  const aliceClient = member(t, url, 'alice', { backoff: { minDelayMs: 200, maxDelayMs: 1000 } })
  const bobClient = member(t, url, 'bob', { backoff: { minDelayMs: 200, maxDelayMs: 1000 } })
  await Promise.all([aliceClient.connect(), bobClient.connect()])
  const aliceRoom = await aliceClient.createRoom('restart night')
  const alice = watch(aliceClient, aliceRoom)
  const bob = watch(bobClient, await bobClient.joinRoom(aliceRoom.id))
  await alice.room.sendChat('before 1')
  await bob.room.sendChat('before 2')
  await bobClient.request('ping', {})
  await aliceClient.request('ping', {})

  const bothRejoined = Promise.all([rejoined(alice.room), rejoined(bob.room)])
  const bothDropped = Promise.all([aliceClient, bobClient].map(async (client) => { await new Promise((resolve) => client.once('reconnecting', resolve)) }))
  first.kill('SIGTERM')
  await bothDropped
  t.same([alice.closes, bob.closes], [[1012], [1012]], 'both were told the server restarts')
  const exit = await first.exited
  t.equal(exit.code, 0, 'the server stopped cleanly')
  t.equal(aliceClient.state, 'reconnecting')
  const whileDown = alice.room.sendChat('sent while the server was down')

  const second = await startServer(t, { database, env: { ...ENV, PORT: String(first.port) } })
  t.equal(second.port, first.port)
  t.same(await bothRejoined, ['recovered', 'recovered'], 'both rooms recovered from their position')
  const line = await whileDown
  t.equal(line.message, 'sent while the server was down')
  await bob.room.sendChat('after')
  await Promise.all([aliceClient.request('ping', {}), bobClient.request('ping', {})]) // every frame before the pongs is in

  const lines = ['before 1', 'before 2', 'sent while the server was down', 'after']
  for (const who of [alice, bob]) {
    t.same(who.room.chat.map((l) => l.message), lines, `${who.client.userId}: every line once, in order`)
    t.same(who.log.filter((e) => e.startsWith('left:') || e.startsWith('joined:') || e.startsWith('reset:')), who === alice ? ['joined:bob'] : [], `${who.client.userId}: nobody left, no reset`)
    t.equal(who.client.state, 'connected')
  }
  t.same(bob.room.participants, ['alice', 'bob'])
  t.equal(bob.room.hostId, 'alice', 'the host is still the host')
  const seqs = bob.room.chat.map((l) => l.seq!)
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'positions only rise')
  t.equal(new Set(seqs).size, seqs.length, 'no position twice')
})
