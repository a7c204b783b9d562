/**
 * Without cluster mode one PostgreSQL database is served by one process: a second process started beside a
 * running one waits for it (SINGLE_PROCESS_LOCK=wait) or refuses to start (=refuse), instead of expiring the
 * graces of the first one's members and handing their host roles away. A process whose lock connection was
 * lost while another took the lock stops. Real processes, Postgres only.
 */
import pg from 'pg'
import t from 'tap'
import { createPostgresDatabase } from '../helpers/database.js'
import { startServer, type LogLine } from '../helpers/server-process.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { TestClient } from '../helpers/ws-client.js'

const serverUrl = process.env.DATABASE_URL
const skip = serverUrl === undefined || serverUrl === '' ? 'needs DATABASE_URL: the embedded database cannot be shared at all' : false

const isWaitLog = (line: LogLine): boolean => typeof line.msg === 'string' && line.msg.startsWith('another server process is serving this database; waiting')

async function participants (url: string, roomId: string): Promise<{ host: string, users: string[] }> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows: [room] } = await client.query('select host_id from rooms where id = $1', [roomId])
    const { rows } = await client.query('select user_id from room_participants where room_id = $1 order by joined_at, seq', [roomId])
    return { host: room.host_id as string, users: rows.map((r) => r.user_id as string) }
  } finally {
    await client.end()
  }
}

// Seven scenarios, each with two or three real server processes: minutes on a busy machine.
t.setTimeout(480_000)

t.test('a second process waits without touching the first one\'s rooms, and serves once the first stops', { skip }, async (t) => {
  const url = await createPostgresDatabase(t, serverUrl!)
  const database = { kind: 'postgres', url } as const
  // A grace far shorter than the wait below: a second process that ran the rooms would expire it.
  const env = { DISCONNECT_GRACE_MS: '300', PLAYBACK_FLUSH_MS: '100' }
  const first = await startServer(t, { database, env })
  const alice = await TestClient.connect(first.wsUrl, { userId: 'alice' }, t)
  const bob = await TestClient.connect(first.wsUrl, { userId: 'bob' }, t)
  const roomId = (await alice.expect('create_room', { roomName: 'Still watching' }, 'room_created')).data.room.id as string
  await bob.expect('join_room', { roomId }, 'room_joined')

  const second = await startServer(t, { database, env, wait: false })
  const waiting = await second.waitForLog(isWaitLog, 30_000)
  t.match(String(waiting.holder), `pid=${first.pid}`, 'the wait names the process it waits for')
  // The next wait line comes a few seconds later, far beyond the 300 ms grace.
  await second.waitForLog((line) => isWaitLog(line) && line !== waiting, 30_000)
  t.notOk(second.logs.some((l) => String(l.msg).startsWith('Server listening at')), 'the waiting process does not listen')
  t.same(await participants(url, roomId), { host: 'alice', users: ['alice', 'bob'] }, 'nobody was removed, the host kept the role')
  await alice.expect('transfer_host', { roomId, newHostId: 'bob' }, 'host_changed')
  t.same(await participants(url, roomId), { host: 'bob', users: ['alice', 'bob'] }, 'the first process still owns its rooms')

  first.kill('SIGTERM')
  t.equal((await first.exited).code, 0, 'the first process stopped cleanly')
  t.equal((await alice.closed).code, 1012)
  await second.listening
  t.ok(second.logs.some((l) => l.msg === 'the other server process stopped; this one holds the database now'))
  t.equal((await second.http('GET', '/readyz')).status, 200)
  const served = await second.http('GET', `/rooms/${roomId}`, { userId: 'carol' })
  // Its own 300 ms grace for members who have not rejoined yet runs from here: only the room is certain.
  t.match(served, { status: 200, body: { name: 'Still watching', isActive: true } }, 'the second process serves the first one\'s rooms')
  const back = await TestClient.connect(second.wsUrl, { userId: 'bob' }, t)
  t.equal((await back.request('join_room', { roomId })).type, 'room_joined', 'members rejoin on the second process')
})

t.test('SINGLE_PROCESS_LOCK=refuse: a second process exits 1 naming the process that serves the database', { skip }, async (t) => {
  const url = await createPostgresDatabase(t, serverUrl!)
  const database = { kind: 'postgres', url } as const
  const first = await startServer(t, { database })
  const second = await startServer(t, { database, env: { SINGLE_PROCESS_LOCK: 'refuse' }, wait: false })
  const exit = await second.exited
  t.equal(exit.code, 1)
  const stderr = second.output.join('')
  t.match(stderr, 'refusing to start: another server process is serving this database')
  t.match(stderr, `pid=${first.pid}`, 'names the holder by its application_name')
  t.match(stderr, 'SINGLE_PROCESS_LOCK=wait', 'says how to take over instead')
  t.equal(second.logs.find((l) => l.msg === 'Server listening at'), undefined)
  t.equal((await first.http('GET', '/readyz')).status, 200, 'the first process serves on')
})

t.test('a bad SINGLE_PROCESS_LOCK value stops the start with a message naming the variable', async (t) => {
  const server = await startServer(t, { database: { kind: 'pglite', dataDir: 'memory://' }, env: { SINGLE_PROCESS_LOCK: 'never' }, wait: false })
  t.equal((await server.exited).code, 1)
  t.match(server.output.join(''), 'SINGLE_PROCESS_LOCK="never" must be one of wait, refuse')
})

t.test('a process whose lock connection is cut while another waits: the other takes over, and the first stops when it is back', { skip }, async (t) => {
  const url = await createPostgresDatabase(t, serverUrl!)
  const target = new URL(url)
  const proxy = await TcpProxy.start(t, { host: target.hostname, port: Number(target.port === '' ? 5432 : target.port) })
  const first = await startServer(t, { database: { kind: 'postgres', url: TcpProxy.through(url, proxy) }, env: { DISCONNECT_GRACE_MS: '60000' } })
  const alice = await TestClient.connect(first.wsUrl, { userId: 'alice' }, t)
  const roomId = (await alice.expect('create_room', { roomName: 'Cut' }, 'room_created')).data.room.id as string
  const second = await startServer(t, { database: { kind: 'postgres', url }, env: { DISCONNECT_GRACE_MS: '60000' }, wait: false })
  await second.waitForLog(isWaitLog, 30_000)

  proxy.cut()
  await first.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('process lock: its database connection was lost'))
  await second.listening
  t.equal(first.exit, undefined, 'the first process goes on from memory while it cannot reach the database')
  await alice.barrier() // its members stay connected meanwhile (what they may do in an outage: docs/operations.md)

  proxy.restore()
  const exit = await first.exited
  t.equal(exit.code, 1, 'the first process stops with exit 1 once it finds the lock taken')
  t.ok(first.logs.some((l) => l.msg === 'another server process took this database while the lock connection was down; stopping' &&
    String(l.holder).includes(`pid=${second.pid}`)), 'and says who took it')
  t.equal((await alice.closed).code, 1012, 'its sockets were closed gracefully (reconnect)')
  t.equal((await second.http('GET', '/readyz')).status, 200)
  t.match((await second.http('GET', `/rooms/${roomId}`, { userId: 'bob' })).body, { hostId: 'alice' }, 'the second process serves the room')
})

t.test('a lock connection cut with nobody waiting is taken again when the database is back', { skip }, async (t) => {
  const url = await createPostgresDatabase(t, serverUrl!)
  const target = new URL(url)
  const proxy = await TcpProxy.start(t, { host: target.hostname, port: Number(target.port === '' ? 5432 : target.port) })
  const server = await startServer(t, { database: { kind: 'postgres', url: TcpProxy.through(url, proxy) } })
  proxy.cut()
  await server.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('process lock: its database connection was lost'))
  proxy.restore()
  await server.waitForLog((l) => l.msg === 'process lock taken again', 20_000)
  t.equal(server.exit, undefined, 'the process serves on')
  // And holds it: a newcomer must wait.
  const second = await startServer(t, { database: { kind: 'postgres', url }, env: { SINGLE_PROCESS_LOCK: 'refuse' }, wait: false })
  t.equal((await second.exited).code, 1)
  t.match(second.output.join(''), `pid=${server.pid}`)
})

t.test('SIGTERM ends the wait: exit 0, and the serving process is untouched', { skip }, async (t) => {
  const url = await createPostgresDatabase(t, serverUrl!)
  const database = { kind: 'postgres', url } as const
  const first = await startServer(t, { database })
  const second = await startServer(t, { database, wait: false })
  await second.waitForLog(isWaitLog, 30_000)
  second.kill('SIGTERM')
  t.equal((await second.exited).code, 0)
  t.ok(second.logs.some((l) => l.msg === 'shut down before serving'))
  t.equal((await first.http('GET', '/readyz')).status, 200)
})

t.test('a lock connection that stops answering (a partition) is given up, and the lock taken again once the database answers', { skip }, async (t) => {
  const url = await createPostgresDatabase(t, serverUrl!)
  const target = new URL(url)
  const proxy = await TcpProxy.start(t, { host: target.hostname, port: Number(target.port === '' ? 5432 : target.port) })
  const server = await startServer(t, { database: { kind: 'postgres', url: TcpProxy.through(url, proxy) } })
  proxy.stall()
  await server.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('process lock: its database connection was lost'), 30_000)
  proxy.restore()
  await server.waitForLog((l) => l.msg === 'process lock taken again', 30_000)
  t.equal(server.exit, undefined, 'the process serves on')
  t.equal((await server.http('GET', '/readyz')).status, 200)
  const second = await startServer(t, { database: { kind: 'postgres', url }, env: { SINGLE_PROCESS_LOCK: 'refuse' }, wait: false })
  t.equal((await second.exited).code, 1, 'and holds it')
  t.match(second.output.join(''), `pid=${server.pid}`)
})
