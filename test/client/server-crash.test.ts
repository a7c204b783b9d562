/**
 * The server process is killed with SIGKILL (no close frame: 1006) and comes back later on the same database
 * and port: the clients retry with backoff while it is down, reconnect once it is back, and their rooms are
 * current again with nothing lost that the server had acknowledged.
 */
import t from 'tap'
import { serverDatabase, startServer } from '../helpers/server-process.js'
import { member, rejoined, watch } from './helpers/watch-party.js'

const ENV = { DISCONNECT_GRACE_MS: '60000' }

t.test('kill -9: clients retry while the server is down and reconnect when it is back', async (t) => {
  const database = await serverDatabase(t)
  const first = await startServer(t, { database, env: ENV })
  const options = { backoff: { minDelayMs: 100, maxDelayMs: 800 } }
  const aliceClient = member(t, first.wsUrl, 'alice', options)
  const bobClient = member(t, first.wsUrl, 'bob', options)
  await Promise.all([aliceClient.connect(), bobClient.connect()])
  const aliceRoom = await aliceClient.createRoom('crash night')
  const alice = watch(aliceClient, aliceRoom)
  const bob = watch(bobClient, await bobClient.joinRoom(aliceRoom.id))
  await alice.room.sendChat('acknowledged before the crash')
  await bobClient.request('ping', {})

  const bothRejoined = Promise.all([rejoined(alice.room), rejoined(bob.room)])
  // Wait until each client has failed at least twice against the dead port: it keeps trying on its own.
  const retried = Promise.all([aliceClient, bobClient].map(async (client) => {
    await new Promise<void>((resolve) => {
      let attempts = 0
      const off = client.on('reconnecting', () => { if (++attempts === 3) { off(); resolve() } })
    })
  }))
  first.kill('SIGKILL')
  t.equal((await first.exited).signal, 'SIGKILL')
  await retried
  t.same([...new Set(alice.closes)], [1006], 'no close frame: 1006, retried with backoff')
  t.equal(bobClient.state, 'reconnecting')

  const second = await startServer(t, { database, env: { ...ENV, PORT: String(first.port) } })
  t.equal(second.port, first.port)
  const outcomes = await bothRejoined
  t.ok(outcomes.every((o) => o === 'recovered'), `both rooms rejoined and recovered (${outcomes.join(', ')})`)
  await bob.room.sendChat('after the crash')
  await Promise.all([aliceClient.request('ping', {}), bobClient.request('ping', {})])
  for (const who of [alice, bob]) {
    t.same(who.room.chat.map((l) => l.message), ['acknowledged before the crash', 'after the crash'], `${who.client.userId}: each line once`)
    t.equal(who.client.state, 'connected')
  }
  t.same(bob.room.participants, ['alice', 'bob'], 'both still members (within the grace)')
})
