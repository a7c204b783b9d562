import t from 'tap'
import type { FastifyBaseLogger } from 'fastify'
import { createTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { TestClient, type Teardown } from '../helpers/ws-client.js'

const database = await createTestDatabase(t)
const VIDEO = 'https://example.com/v.mp4'
const CHAT = 'sync-alice--bob'

type LogLine = Record<string, unknown>

/** A logger that keeps every line it is given, for assertions on what was logged. */
function captureLogger (lines: LogLine[], bindings: LogLine = {}): FastifyBaseLogger {
  const at = (level: string) => (obj: unknown, msg?: string): void => {
    lines.push({ level, ...bindings, ...(typeof obj === 'object' && obj !== null ? obj : { msg: obj }), ...(msg === undefined ? {} : { msg }) })
  }
  return {
    level: 'info',
    fatal: at('fatal'),
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    trace: at('trace'),
    silent: () => {},
    child: (more: LogLine) => captureLogger(lines, { ...bindings, ...more })
  } as unknown as FastifyBaseLogger
}

async function legacyApp (tt: Teardown, env: Record<string, string> = {}, clock?: FakeClock) {
  const lines: LogLine[] = []
  const built = await createTestApp(tt, {
    listen: true,
    database,
    env: { WS_MESSAGES_PER_SECOND: '1000', WS_MESSAGE_BURST: '1000', ...env },
    deps: { logger: captureLogger(lines), ...(clock === undefined ? {} : { clock }) }
  })
  const connect = async (userId: string): Promise<TestClient> => await TestClient.connect(built.wsUrl, { userId }, tt)
  return { ...built, lines, connect }
}

const legacySync = (currentTime: number, videoUrl = VIDEO): Record<string, unknown> => ({ chatId: CHAT, videoUrl, currentTime, isPlaying: true })
const relayed = (client: TestClient): unknown[] => client.events.filter((e) => e.channel === CHAT && e.replyTo === undefined).map((e) => e.type === 'sync' ? e.data.currentTime : e.data.message)

t.test('open (default): relayed to the other user as always, with the URL scheme check, and logged with both user ids', async (t) => {
  const { connect, lines } = await legacyApp(t)
  const alice = await connect('alice')
  const bob = await connect('bob')
  for (const bad of ['javascript:alert(document.cookie)', 'data:text/html,<script>alert(1)</script>', 'file:///etc/passwd']) {
    const refused = await alice.request('sync', legacySync(1, bad))
    t.equal(refused.data.code, 'VALIDATION_FAILED', bad)
    t.match(refused.data.message, /scheme .* is not allowed/)
  }
  t.equal((await alice.request('sync', legacySync(2))).type, 'ack')
  t.equal((await alice.request('chat', { chatId: CHAT, message: 'hi bob' })).type, 'chat')
  await bob.barrier()
  t.same(relayed(bob), [2, 'hi bob'], 'bob got the good sync and the chat line, never a refused URL')
  const uses = lines.filter((l) => l.msg === 'legacy relay used')
  t.match(uses, [
    { userId: 'alice', peerId: 'bob', chatId: CHAT, type: 'sync' },
    { userId: 'alice', peerId: 'bob', chatId: CHAT, type: 'chat' }
  ], 'each relayed use is logged with sender and recipient')
  t.equal(uses.length, 2)
})

t.test('the sender\'s per-user message budget applies across their connections', async (t) => {
  const clock = new FakeClock()
  const { connect } = await legacyApp(t, { WS_MESSAGES_PER_SECOND: '3', WS_MESSAGE_BURST: '3' }, clock)
  const tab1 = await connect('alice')
  const tab2 = await connect('alice')
  const bob = await connect('bob')
  const answers: string[] = []
  for (const [i, tab] of [tab1, tab2, tab1, tab2].entries()) {
    const reply = await tab.request('sync', legacySync(i))
    answers.push(reply.type === 'ack' ? 'ack' : reply.data.code as string)
  }
  t.same(answers, ['ack', 'ack', 'ack', 'RATE_LIMITED'], 'three in all, whichever tab sends')
  clock.advance(1000)
  await bob.barrier()
  t.same(relayed(bob), [0, 1, 2], 'the refused sync was not relayed')
})

t.test('strict: a connection receives a legacy channel only once it has used that channel itself', async (t) => {
  const { connect } = await legacyApp(t, { LEGACY_RELAY_MODE: 'strict' })
  const alice = await connect('alice')
  const bobUsing = await connect('bob')
  const bobOther = await connect('bob')
  const mallory = await connect('mallory')
  t.equal((await bobUsing.request('chat', { chatId: CHAT, message: 'ready' })).type, 'chat', 'bob\'s first tab uses the channel')
  t.equal((await alice.request('sync', legacySync(5))).type, 'ack', 'alice uses it (and now receives it)')
  t.equal((await mallory.request('sync', { ...legacySync(666), chatId: 'sync-mallory--bob' })).type, 'ack', 'mallory knows bob\'s id')
  t.equal((await mallory.request('chat', { chatId: 'sync-mallory--bob', message: 'click here' })).type, 'chat')
  await bobUsing.barrier()
  await bobOther.barrier()
  t.same(relayed(bobUsing), [5], 'the tab that used the channel gets alice\'s sync')
  t.same(relayed(bobOther), [], 'the tab that did not use it gets nothing')
  t.same(bobUsing.events.filter((e) => e.channel === 'sync-mallory--bob'), [], 'mallory reaches none of bob\'s tabs')
  await alice.barrier()
  t.same(relayed(alice), [], 'bob\'s chat line sent before alice used the channel did not reach her')

  t.equal((await bobOther.request('sync', legacySync(6))).type, 'ack', 'the second tab uses the channel')
  t.equal((await alice.request('chat', { chatId: CHAT, message: 'both?' })).type, 'chat')
  await bobOther.barrier()
  await bobUsing.barrier()
  t.same(relayed(bobOther), ['both?'], 'from then on it receives the channel')
  t.same(relayed(bobUsing), [5, 'both?'])
  await alice.barrier()
  t.same(relayed(alice), [6], 'and alice hears the second tab')
})

t.test('off: sync and chat with chatId answer UNKNOWN_EVENT and relay nothing; rooms are unaffected', async (t) => {
  const { connect, lines } = await legacyApp(t, { LEGACY_RELAY_MODE: 'off' })
  const alice = await connect('alice')
  const bob = await connect('bob')
  for (const [type, data] of [['sync', legacySync(1)], ['chat', { chatId: CHAT, message: 'hello?' }], ['sync', { chatId: CHAT }]] as const) {
    const refused = await alice.request(type, data)
    t.equal(refused.data.code, 'UNKNOWN_EVENT', `${type} with chatId`)
    t.match(refused.data.message, /legacy 1-on-1 channels .* turned off .*LEGACY_RELAY_MODE=off/)
  }
  await bob.barrier()
  t.same(relayed(bob), [], 'nothing relayed')
  t.same(alice.received('warning'), [], 'no deprecation warning for a refused request')
  t.notOk(lines.some((l) => l.msg === 'legacy relay used'))
  const roomId = (await alice.expect('create_room', { roomName: 'still fine' }, 'room_created')).data.room.id as string
  await bob.expect('join_room', { roomId }, 'room_joined')
  t.equal((await alice.request('chat', { roomId, message: 'room chat' })).type, 'chat', 'room chat works')
  t.equal((await alice.request('sync', { roomId, videoUrl: VIDEO, currentTime: 3, isPlaying: true })).type, 'ack', 'sync with roomId (host_sync) works')
})

t.test('LEGACY_RELAY_MODE must be open, strict or off', async (t) => {
  await t.rejects(createTestApp(t, { database, env: { LEGACY_RELAY_MODE: 'closed' } }), /LEGACY_RELAY_MODE="closed" must be one of open, strict, off/)
})
