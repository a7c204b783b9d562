/**
 * The shipped load-balancer configuration (deploy/nginx.conf, what docker-compose.yml runs) with Debian's nginx
 * in front of three real nodes: a party held through it survives a kill -9 of a node and a rolling restart of
 * every node with nothing lost, nobody dropped, and one order of events everywhere. Only the upstream's
 * `server` lines and the `listen` line of the file are replaced (the nodes are local processes here).
 */
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { freePort } from '../helpers/ports.js'
import { serverDatabase, startServer, type ServerProcess } from '../helpers/server-process.js'
import { canonicalJson, TestClient, type ReceivedEvent } from '../helpers/ws-client.js'

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))
const skip = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === ''
  ? 'cluster mode needs PostgreSQL: set DATABASE_URL'
  : NGINX === undefined ? 'nginx is not installed (apt-get install nginx; .ci/run installs it)' : false
t.setTimeout(300_000)

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const LEASE_MS = 2000
const GRACE_MS = 10_000

/** deploy/nginx.conf with its upstream servers and its listen address replaced; runs until teardown. */
async function startNginx (t: { teardown (fn: () => void | Promise<void>): void }, upstreams: number[], port: number): Promise<void> {
  const shipped = readFileSync(new URL('../../deploy/nginx.conf', import.meta.url), 'utf8')
  const servers = upstreams.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`).join('\n    ')
  const conf = shipped
    .replace(/^(\s*)server app:3000 [^\n]*$/m, `$1${servers}`)
    .replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${port};`)
  if (conf === shipped || !conf.includes(`listen 127.0.0.1:${port};`)) throw new Error('deploy/nginx.conf no longer has the lines this test replaces')
  const dir = mkdtempSync(join(tmpdir(), 'wp-nginx-'))
  mkdirSync(join(dir, 'logs'))
  writeFileSync(join(dir, 'nginx.conf'), conf)
  const global = `daemon off; pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'logs', 'error.log')} warn;`
  execFileSync(NGINX!, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', global], { stdio: 'pipe' })
  const child = spawn(NGINX!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', global], { stdio: 'ignore' })
  t.teardown(async () => {
    // SIGTERM, not SIGKILL: nginx's master stops its workers only when it is let to (a killed master leaves them
    // running, still listening).
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  const deadline = Date.now() + 10_000
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)
    if (up) return
    if (Date.now() > deadline) throw new Error('nginx did not answer')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('three nodes behind the shipped nginx configuration hold a party through a kill -9 and a rolling restart', { skip }, async (t) => {
  const database = await serverDatabase(t)
  const prefix = `wp-test-${process.pid}-${randomBytes(3).toString('hex')}:`
  const ports = [await freePort(), await freePort(), await freePort()]
  let generation = 0
  const ids = ['lb-0-g0', 'lb-1-g0', 'lb-2-g0']
  /** A node's environment; a restarted node gets a new NODE_ID (a process is a node). */
  const env = (i: number) => ({ REDIS_URL, REDIS_PREFIX: prefix, NODE_ID: ids[i]!, PORT: String(ports[i]), ROOM_LEASE_MS: String(LEASE_MS), DISCONNECT_GRACE_MS: String(GRACE_MS) })
  const restart = async (i: number): Promise<void> => {
    ids[i] = `lb-${i}-g${++generation}`
    nodes[i] = await startServer(t, { database, env: env(i) })
  }
  const nodes: ServerProcess[] = await Promise.all([0, 1, 2].map(async (i) => await startServer(t, { database, env: env(i) })))
  const lbPort = await freePort()
  await startNginx(t, ports, lbPort)
  const wsUrl = `ws://127.0.0.1:${lbPort}/ws`

  const answered = await fetch(`http://127.0.0.1:${lbPort}/rooms?limit=1`, { headers: { 'x-user-id': 'probe' } })
  t.equal(answered.status, 200)
  t.match(answered.headers.get('x-node-id') ?? '', /^lb-\d-/, 'a node answered through nginx')

  const users = ['lbh', 'lba', 'lbb', 'lbc']
  const clients = new Map<string, TestClient>()
  const seen = new Map<string, Map<number, string>>(users.map((u) => [u, new Map()]))
  const record = (user: string, client: TestClient, roomId: string): void => {
    for (const e of client.events) {
      if (e.channel === `room-${roomId}` && typeof e.seq === 'number') seen.get(user)!.set(e.seq, canonicalJson([e.type, e.epoch, e.data]))
    }
  }
  const host = await TestClient.connect(wsUrl, { userId: 'lbh' }, t)
  const roomId = (await host.expect('create_room', { roomName: 'behind nginx' }, 'room_created')).data.room.id as string
  clients.set('lbh', host)
  for (const user of users.slice(1)) {
    const client = await TestClient.connect(wsUrl, { userId: user }, t)
    await client.expect('join_room', { roomId }, 'room_joined')
    clients.set(user, client)
  }

  /** Whoever lost their socket reconnects through nginx and rejoins with the last position they saw. */
  const heal = async (): Promise<void> => {
    for (const user of users) {
      const client = clients.get(user)!
      if (client.socket.readyState === 1) continue
      await client.closed
      record(user, client, roomId)
      const last = client.events.filter((e) => e.channel === `room-${roomId}` && typeof e.seq === 'number').at(-1) as ReceivedEvent
      let rejoined: ReceivedEvent | undefined
      let fresh: TestClient | undefined
      const deadline = Date.now() + LEASE_MS + 15_000
      while (rejoined === undefined && Date.now() < deadline) {
        fresh = await TestClient.connect(wsUrl, { userId: user }, t).catch(() => undefined)
        const reply = await fresh?.request('join_room', { roomId, since: { epoch: last.epoch, seq: last.seq } }, 10_000).catch(() => undefined)
        if (reply?.type === 'room_joined') rejoined = reply
        else {
          fresh?.terminate()
          await new Promise((resolve) => setTimeout(resolve, 300))
        }
      }
      t.equal(rejoined?.data.recovered, true, `${user} rejoined through nginx and recovered`)
      clients.set(user, fresh!)
    }
  }
  let line = 0
  /** Every member sends a line, retrying while its room moves (a takeover under way). */
  const round = async (): Promise<void> => {
    for (const user of users) {
      const deadline = Date.now() + LEASE_MS + 15_000
      for (;;) {
        // A socket whose node just died may only now learn it (nginx passes the close on a moment later).
        if (clients.get(user)!.socket.readyState !== 1) await heal()
        const client = clients.get(user)!
        const reply = await client.request('chat', { roomId, message: `${user} ${line}` }, 10_000).catch((err: unknown) => String(err))
        if (typeof reply === 'object' && reply.type === 'chat') break
        if (Date.now() > deadline) {
          throw new Error(`${user}'s chat was not served: ${typeof reply === 'string' ? reply : JSON.stringify(reply)} (socket state ${client.socket.readyState})\n${nodes.map((n) => n.describe()).join('\n')}`)
        }
        await new Promise((resolve) => setTimeout(resolve, 300))
      }
      line++
    }
  }
  await round()

  // kill -9 of the room's owner: its clients reconnect through nginx, another node takes the room over.
  const owner = (await fetch(`http://127.0.0.1:${lbPort}/rooms/${roomId}`, { headers: { 'x-user-id': 'probe' } })).headers.get('x-room-owner')
  const victim = ids.indexOf(owner ?? '')
  t.ok(victim >= 0, `the room's owner is one of the nodes (${String(owner)})`)
  nodes[victim]!.kill('SIGKILL')
  await nodes[victim]!.exited
  await heal()
  await round()
  await restart(victim)

  // Rolling restart: SIGTERM each node in turn, start it again on its port.
  for (let i = 0; i < 3; i++) {
    nodes[i]!.kill('SIGTERM')
    await nodes[i]!.exited
    await heal()
    await round()
    await restart(i)
  }

  // Events travel from the room's owner through Redis: wait for the last line itself.
  const lastLine = `${users.at(-1)!} ${line - 1}`
  for (const user of users) {
    const client = clients.get(user)!
    await client.next((e) => e.type === 'chat' && e.data.message === lastLine, 10_000)
    record(user, client, roomId)
  }
  const last = Math.max(...[...seen.values()].map((m) => Math.max(...m.keys())))
  t.equal(last, 3 + 4 * 5, 'three joins and twenty lines: nothing lost, nothing added')
  for (let seq = 4; seq <= last; seq++) {
    const views = users.map((u) => seen.get(u)!.get(seq))
    t.ok(views.every((v) => v !== undefined && v === views[0]), `seq ${seq}: every member has it, the same everywhere`)
  }
  const leaves = [...seen.values()].flatMap((m) => [...m.values()]).filter((v) => v.startsWith('["participant_left"'))
  t.same(leaves, [], 'nobody was dropped')
  // Asked of a node directly: nginx may still hold the node restarted last as failed for its fail_timeout.
  const room = await nodes[1]!.http('GET', `/rooms/${roomId}`, { userId: 'probe' })
  t.same(room.body.participants, users)
})
