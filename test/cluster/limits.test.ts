/**
 * Per-user limits across the nodes (cluster mode): MAX_CONNECTIONS_PER_USER counts a user's connections on every
 * node, a dead node's connections stop counting, and the message budget and the flood counter are one per user
 * for the whole cluster, so spreading connections over nodes or reconnecting to another node gains nothing.
 * Real server processes on one PostgreSQL database and the machine's Redis, under a Redis prefix of this file's own.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import t from 'tap'
import { ClusterBudgets } from '../../src/cluster/cluster-budgets.js'
import { connectRedis } from '../../src/cluster/redis-link.js'
import { userKey, type BudgetLimits } from '../../src/realtime/user-budgets.js'
import type { Logger } from '../../src/rooms/room-ports.js'
import { serverDatabase, startServer, type ServerProcess } from '../helpers/server-process.js'
import { TestClient, type CloseInfo, type ReceivedEvent, type Teardown } from '../helpers/ws-client.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const skip = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === ''
  ? 'cluster mode needs PostgreSQL: set DATABASE_URL (several processes cannot share the embedded database)'
  : false

t.setTimeout(300_000)

async function cluster (t: Teardown, names: string[], env: Record<string, string>): Promise<{ nodes: ServerProcess[], prefix: string }> {
  const database = await serverDatabase(t)
  const prefix = `wp-limits-${process.pid}-${randomBytes(3).toString('hex')}:`
  const nodes = await Promise.all(names.map(async (name) => await startServer(t, {
    database,
    env: { REDIS_URL, REDIS_PREFIX: prefix, NODE_ID: name, ROOM_LEASE_MS: '2000', ...env }
  })))
  return { nodes, prefix }
}

/** Opens a connection as `userId`: the client once `connected` arrived, or how the server closed it before. */
async function attempt (t: Teardown, wsUrl: string, userId: string): Promise<TestClient | CloseInfo> {
  const client = TestClient.open(wsUrl, { userId })
  t.teardown(() => { client.terminate() })
  return await client.next((e) => e.type === 'connected', 15_000).then(() => client, async () => await client.closed)
}

/** Retries `attempt` (as a client does after 1013) until it connects; undefined if it never did within `withinMs`. */
async function connectWhenAllowed (t: Teardown, wsUrl: string, userId: string, withinMs: number): Promise<TestClient | undefined> {
  const until = Date.now() + withinMs
  while (Date.now() < until) {
    const outcome = await attempt(t, wsUrl, userId)
    if (outcome instanceof TestClient) return outcome
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return undefined
}

const answer = (reply: ReceivedEvent): string => reply.type === 'error' ? String(reply.data.code) : reply.type

/** Sequential pings: the answer to each. */
async function pings (client: TestClient, n: number): Promise<string[]> {
  const answers: string[] = []
  for (let i = 0; i < n; i++) answers.push(answer(await client.request('ping', {}, 15_000)))
  return answers
}

/** Waits until the user's budget hash in Redis satisfies `ready` (a node's report has landed), within a bound. */
async function reported (t: Teardown, prefix: string, userId: string, ready: (fields: Record<string, string>) => boolean): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 1 })
  t.teardown(() => { redis.disconnect() })
  const until = Date.now() + 10_000
  while (Date.now() < until) {
    if (ready(await redis.hgetall(`${prefix}budget:user:${userId}`))) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`${userId}: no report in Redis within 10 s`)
}

t.test('MAX_CONNECTIONS_PER_USER holds across the nodes, and a killed node\'s connections stop counting', { skip }, async (t) => {
  const { nodes } = await cluster(t, ['cap-a', 'cap-b', 'cap-c'], { MAX_CONNECTIONS_PER_USER: '3', WS_CONNECTS_PER_USER_PER_MINUTE: '1000' })
  const [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess]
  for (const node of [a, b, c]) t.ok(await attempt(t, node.wsUrl, 'uma') instanceof TestClient, `one connection of uma on ${node.name}`)
  for (const node of [a, b, c]) {
    const refused = await attempt(t, node.wsUrl, 'uma')
    t.notOk(refused instanceof TestClient, `a fourth connection on ${node.name} is refused`)
    t.match(refused, { code: 1013, reason: /too many connections for this user across the nodes \(at most 3\)/ })
  }
  t.ok(await attempt(t, a.wsUrl, 'ulf') instanceof TestClient, 'another user has places of their own')

  c.kill('SIGKILL')
  const killedAt = (await c.exited).at
  const replacement = await connectWhenAllowed(t, a.wsUrl, 'uma', 15_000)
  const tookMs = Date.now() - killedAt
  t.ok(replacement !== undefined, `the dead node's connection stopped counting (${tookMs} ms after the kill)`)
  t.ok(tookMs < 10_000, `within a few seconds of the death (nodes are dead after 3 s of silence): ${tookMs} ms`)
  const over = await attempt(t, b.wsUrl, 'uma')
  t.match(over, { code: 1013 }, 'three again (two on one node, one on the other): the next is refused')

  replacement!.close()
  await replacement!.closed
  t.ok(await connectWhenAllowed(t, b.wsUrl, 'uma', 10_000) !== undefined, 'a closed connection gives its place back, to any node')
})

t.test('a user flooding chats through two nodes gets about WS_MESSAGES_PER_SECOND in all, not per node', { skip }, async (t) => {
  const RATE = 5
  const BURST = 5
  const { nodes } = await cluster(t, ['flood-a', 'flood-b'], {
    WS_MESSAGES_PER_SECOND: String(RATE), WS_MESSAGE_BURST: String(BURST), WS_FLOOD_LIMIT: '1000000'
  })
  const [a, b] = nodes as [ServerProcess, ServerProcess]
  const onA = await TestClient.connect(a.wsUrl, { userId: 'fay' }, t)
  const roomId = (await onA.expect('create_room', { roomName: 'flood' }, 'room_created')).data.room.id as string
  const onB = await TestClient.connect(b.wsUrl, { userId: 'fay' }, t)
  await onB.expect('join_room', { roomId }, 'room_joined')

  // Both connections send a chat every 30 ms for 5 s; every chat gets an answer (the chat, or RATE_LIMITED).
  const startedAt = Date.now()
  const replies: Array<Promise<{ node: string, answer: string }>> = []
  for (let i = 0; Date.now() - startedAt < 5000; i++) {
    for (const [node, client] of [['a', onA], ['b', onB]] as const) {
      replies.push(client.request('chat', { roomId, message: `${node}${i}` }, 30_000).then((reply) => ({ node, answer: answer(reply) })))
    }
    await new Promise((resolve) => setTimeout(resolve, 30))
  }
  const answers = await Promise.all(replies)
  const seconds = (Date.now() - startedAt) / 1000
  const count = (node: string, what: string): number => answers.filter((r) => r.node === node && r.answer === what).length
  const acked = count('a', 'chat') + count('b', 'chat')
  const limited = count('a', 'RATE_LIMITED') + count('b', 'RATE_LIMITED')
  const summary = `${answers.length} sent over ${seconds.toFixed(1)} s; acknowledged a ${count('a', 'chat')} + b ${count('b', 'chat')}, RATE_LIMITED ${limited}, other ${answers.length - acked - limited}`
  // One bucket for the user: the burst plus the rate over the whole time, plus what both nodes could spend
  // between two reconciliations (at most one burst, plus a second of refill for a late report). Two buckets,
  // one per node, would give twice the burst and twice the rate (about 60 here).
  const ceiling = BURST + RATE * seconds + BURST + RATE
  t.ok(acked <= ceiling, `at most about the ceiling in all (${acked} <= ${ceiling.toFixed(0)}): ${summary}`)
  t.ok(acked >= BURST, `the burst got through: ${summary}`)
  t.ok(count('a', 'RATE_LIMITED') > 0 && count('b', 'RATE_LIMITED') > 0, `both nodes refused the excess: ${summary}`)
})

t.test('a reconnect to another node refills neither the message budget nor the flood counter', { skip }, async (t) => {
  const RATE = 1
  const BURST = 10
  const FLOOD = 30
  const { nodes, prefix } = await cluster(t, ['re-a', 're-b'], {
    WS_MESSAGES_PER_SECOND: String(RATE), WS_MESSAGE_BURST: String(BURST), WS_FLOOD_LIMIT: String(FLOOD)
  })
  const [a, b] = nodes as [ServerProcess, ServerProcess]

  const first = await TestClient.connect(a.wsUrl, { userId: 'rex' }, t)
  t.same(await pings(first, BURST + 1), [...Array<string>(BURST).fill('pong'), 'RATE_LIMITED'], 'the burst, then a refusal, on node a')
  const emptiedAt = Date.now()
  first.terminate()
  // Once a's report is in Redis (the reconciliation interval), any node knows what rex has left.
  await reported(t, prefix, 'rex', (fields) => Number(fields.messages) < 1)
  const elsewhere = await TestClient.connect(b.wsUrl, { userId: 'rex' }, t)
  const answers = await pings(elsewhere, 5)
  const refilled = RATE * (Date.now() - emptiedAt) / 1000
  const served = answers.filter((a) => a === 'pong').length
  t.ok(served <= refilled + 1, `node b served only what refilled since (${served} <= ${refilled.toFixed(1)} + 1), not a fresh burst of ${BURST}: ${answers.join(',')}`)
  t.ok(answers.includes('RATE_LIMITED'), 'and refused the rest')

  // Flood counter: 20 of the 30 refusals allowed in 10 s spent on a, then the rest on b.
  const flooder = await TestClient.connect(a.wsUrl, { userId: 'flo' }, t)
  for (let i = 0; i < BURST + 20; i++) flooder.send('ping', {}, `a${i}`)
  await flooder.next((e) => e.replyTo === `a${BURST + 19}`, 15_000)
  t.equal(flooder.received('error').length, 20, '20 refusals on node a, under the flood limit there')
  flooder.terminate()
  await reported(t, prefix, 'flo', (fields) => Object.entries(fields).filter(([k]) => /^f\d+$/.test(k)).reduce((sum, [, v]) => sum + Number(v), 0) >= 20)
  const again = await TestClient.connect(b.wsUrl, { userId: 'flo' }, t)
  let sent = 0
  while (again.socket.readyState === again.socket.OPEN && sent < FLOOD + 10) {
    again.send('ping', {}, `b${sent++}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const closed = await again.closed
  t.equal(closed.code, 4429, 'closed for flooding on node b')
  const refusedOnB = again.received('error').length
  t.ok(refusedOnB < FLOOD - 5, `after about the refusals a had left (${refusedOnB} refused on b), not a fresh ${FLOOD}`)
})

const quiet: Logger = { info: () => {}, warn: () => {}, error: () => {} }
const LIMITS: BudgetLimits = {
  wsMessagesPerSecond: 1,
  wsMessageBurst: 4,
  wsFloodLimit: 5,
  wsMembershipWritesPerSecond: 1,
  wsMembershipWriteBurst: 2,
  wsConnectsPerUserPerMinute: 60,
  wsConnectsPerAddressPerMinute: 60
}

/**
 * Two nodes' budgets in this process, on one Redis prefix and one fake clock (no timers run: `prime` is a node's
 * report), once their Redis connections are ready (unless Redis is not meant to answer).
 */
async function twoNodes (t: Teardown, redisUrl = REDIS_URL): Promise<{ a: ClusterBudgets, b: ClusterBudgets, clock: { now: number } }> {
  const prefix = `wp-budgets-${process.pid}-${randomBytes(3).toString('hex')}:`
  const clock = { now: 1_000_000_000_000 }
  const node = async (nodeId: string): Promise<ClusterBudgets> => {
    const redis = connectRedis({ redisUrl, redisPrefix: prefix, nodeId, roomLeaseMs: 2000 }, quiet)
    t.teardown(async () => { await redis.close() })
    if (redisUrl === REDIS_URL && !redis.ready) await once(redis.command, 'ready')
    return new ClusterBudgets({ redis, limits: LIMITS, logger: quiet, now: () => clock.now })
  }
  return { a: await node('a'), b: await node('b'), clock }
}

t.test('reconciliation: what one node spent is gone on the other once reported, and an overspend is a debt', { skip }, async (t) => {
  const { a, b, clock } = await twoNodes(t)
  const user = userKey('deb')
  await Promise.all([a.prime(user), b.prime(user)])
  t.same([1, 2, 3, 4, 5].map(() => a.message(user, clock.now)), ['ok', 'ok', 'ok', 'ok', 'refused'], 'the burst on a')
  t.equal(b.message(user, clock.now), 'ok', 'b answers from its copy until a has reported: the reconciliation lag')
  await a.prime(user)
  await b.prime(user)
  t.equal(b.message(user, clock.now), 'refused', 'once both reported, b knows the user spent everything')
  await a.prime(user)
  clock.now += 1000
  t.equal(a.message(user, clock.now), 'refused', 'a second of refill pays back the one b spent too many')
  clock.now += 1000
  t.equal(a.message(user, clock.now), 'ok', 'then the rate comes back, one a second')

  t.ok(a.membershipWrite(user, clock.now) && a.membershipWrite(user, clock.now), 'the membership burst, on a')
  await a.prime(user)
  await b.prime(user)
  t.notOk(b.membershipWrite(user, clock.now), 'is spent on b too')
})

t.test('reconciliation: the flood counter adds up the refusals of every node', { skip }, async (t) => {
  const { a, b, clock } = await twoNodes(t)
  const user = userKey('flood')
  await Promise.all([a.prime(user), b.prime(user)])
  for (let i = 0; i < 4; i++) a.message(user, clock.now)
  t.same([1, 2, 3].map(() => a.message(user, clock.now)), ['refused', 'refused', 'refused'], 'three refusals on a')
  await a.prime(user)
  await b.prime(user)
  // b's own detector alone would allow five refusals (WS_FLOOD_LIMIT) before the sixth floods.
  t.same([1, 2, 3].map(() => b.message(user, clock.now)), ['refused', 'refused', 'flooding'], 'the sixth refusal in all, the third on b, floods')
  clock.now += 11_000
  await b.prime(user)
  t.same([1, 2, 3, 4, 5].map(() => b.message(user, clock.now)), ['ok', 'ok', 'ok', 'ok', 'refused'],
    'refusals older than the 10 s window count no more: a refusal is a refusal again, not a flood')
})

t.test('Redis unreachable: each node keeps the ceilings on its own, and nothing waits for it', { skip }, async (t) => {
  const { a, clock } = await twoNodes(t, 'redis://127.0.0.1:1')
  const user = userKey('alone')
  await a.prime(user)
  t.same([1, 2, 3, 4, 5].map(() => a.message(user, clock.now)), ['ok', 'ok', 'ok', 'ok', 'refused'], 'the burst, then refusals, from the local copy')
  await a.prime(user)
  t.equal(a.message(user, clock.now), 'refused', 'a failed report refills nothing')
})
