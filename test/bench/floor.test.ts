/**
 * The fan-out floor (bench/floor/floor.c): it compiles, answers the WebSocket handshake as RFC 6455 says,
 * writes every frame of the bench's schedule, correctly framed and timed, to the right members; and the
 * bench's own load-generator workers populate and time it unchanged (bench/lib/floor.ts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { buildFloor, runFloor } from '../../bench/lib/floor.js'
import { nowUs } from '../../bench/lib/histogram.js'
import { startWorkers, stopWorkers } from '../../bench/lib/workers.js'

/** RFC 6455 section 1.3's example: this key must be answered with this accept value. */
const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='

const hasCc = spawnSync('cc', ['--version']).error === undefined

interface Frame { fin: boolean, opcode: number, masked: boolean, payload: Buffer }

/** A raw client: the handshake's response head, then every frame parsed strictly. */
class RawClient {
  head = ''
  frames: Frame[] = []
  errors: string[] = []
  private buffer = Buffer.alloc(0)
  private upgraded = false
  private constructor (readonly socket: Socket) {}

  static async open (port: number, path: string): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port })
    const client = new RawClient(socket)
    socket.on('data', (chunk: Buffer) => { client.receive(chunk) })
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    const deadline = Date.now() + 5000
    while (!client.upgraded && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    if (!client.upgraded) throw new Error('no handshake response')
    return client
  }

  private receive (chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk])
    if (!this.upgraded) {
      const end = this.buffer.indexOf('\r\n\r\n')
      if (end < 0) return
      this.head = this.buffer.subarray(0, end).toString('latin1')
      this.buffer = this.buffer.subarray(end + 4)
      this.upgraded = true
    }
    while (this.buffer.length >= 2) {
      const b0 = this.buffer[0]!
      const b1 = this.buffer[1]!
      let length = b1 & 0x7f
      let header = 2
      if (length === 126) {
        if (this.buffer.length < 4) return
        length = this.buffer.readUInt16BE(2)
        header = 4
        if (length < 126) this.errors.push(`16-bit length ${length} where 7 bits would do`)
      } else if (length === 127) {
        this.errors.push('64-bit length')
        return
      }
      if (this.buffer.length < header + length) return
      this.frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, masked: (b1 & 0x80) !== 0, payload: Buffer.from(this.buffer.subarray(header, header + length)) })
      if ((b0 & 0x70) !== 0) this.errors.push('reserved bits set')
      this.buffer = this.buffer.subarray(header + length)
    }
  }
}

async function startFloor (binary: string): Promise<{ child: ChildProcess, port: number, lines: AsyncIterator<string> }> {
  const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  const first = await lines.next()
  const match = /^listening (\d+)$/.exec(String(first.value))
  if (match === null) throw new Error(`unexpected first line ${String(first.value)}`)
  return { child, port: Number(match[1]), lines }
}

t.test('the floor program', { skip: hasCc ? false : 'no C compiler (cc) on this machine' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'floor-test-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const build = buildFloor(dir)
  if ('skipped' in build) {
    t.fail(`cc is there but the build failed: ${build.skipped}`)
    return
  }
  t.match(build.compiler, /\S/, 'reports the compiler')

  t.test('handshake, schedule, framing and membership', async (t) => {
    const floor = await startFloor(build.binary)
    const exited = new Promise<number | null>((resolve) => { floor.child.on('exit', (code) => { resolve(code) }) })
    t.teardown(() => { floor.child.kill('SIGKILL') })

    const probe = await RawClient.open(floor.port, '/nowhere')
    t.match(probe.head, /^HTTP\/1\.1 101 /, 'answers the upgrade with 101')
    t.match(probe.head, new RegExp(`\r\nSec-WebSocket-Accept: ${RFC_ACCEPT.replace(/[+/]/g, '\\$&')}(\r\n|$)`), 'Sec-WebSocket-Accept of the RFC 6455 example key')
    t.equal(RFC_ACCEPT, createHash('sha1').update(`${RFC_KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64'), '(the example is what the RFC computes)')
    probe.socket.destroy()

    const rooms = [0, 1].map(async (room) => ({
      host: await RawClient.open(floor.port, `/floor?room=${room}&role=host`),
      viewers: await Promise.all([0, 1, 2].map(async () => await RawClient.open(floor.port, `/floor?room=${room}&role=viewer`)))
    }))
    const members = await Promise.all(rooms)
    // Bytes a client sends are never read during a run: they must not disturb it.
    members[0]!.viewers[0]!.socket.write(Buffer.from([0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]))

    const before = nowUs()
    floor.child.stdin!.write('run 2 3 20 1 1 200 100\n')
    const report = JSON.parse(String((await floor.lines.next()).value)) as Record<string, number>
    const after = nowUs()
    // drive()'s schedule over 1 s at 20 Hz: 20 syncs per room; one chat per room, 25 ms and 525 ms in.
    t.match(report, { syncs: 40, chats: 2, frames: 2 * (20 * 3 + 4), writeErrors: 0, shortWrites: 0, eagain: 0 }, 'the floor reports the whole schedule written')
    t.equal(report.bytes, 2 * (20 * 3 * (4 + 200) + 4 * (2 + 100)), 'one frame of header + payload per delivery')
    t.ok(report.userUs! + report.sysUs! > 0, 'reports its CPU time')

    const deadline = Date.now() + 3000
    const all = members.flatMap((m) => [m.host, ...m.viewers])
    const complete = (): boolean => members.every((m) => m.host.frames.length >= 1 && m.viewers.every((v) => v.frames.length >= 21))
    while (!complete() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))

    const check = (client: RawClient, syncs: number, chats: number, who: string): void => {
      t.same(client.errors, [], `${who}: no framing error`)
      const kinds = { S: 0, C: 0 }
      let framing = true
      let timed = true
      for (const frame of client.frames) {
        if (!frame.fin || frame.opcode !== 1 || frame.masked) framing = false
        const text = frame.payload.toString('utf8')
        const json = JSON.parse(text) as { type: string, data: { m: string } }
        const mark = /^~([SC])(\d+)~$/.exec(json.data.m)
        if (mark === null) {
          timed = false
          continue
        }
        const kind = mark[1] as 'S' | 'C'
        kinds[kind]++
        if (frame.payload.length !== (kind === 'S' ? 200 : 100)) framing = false
        if (json.type !== (kind === 'S' ? 'sync' : 'chat')) framing = false
        const us = Number(mark[2])
        if (us < before || us > after) timed = false
      }
      t.ok(framing, `${who}: unfragmented, unmasked text frames of the payload size`)
      t.ok(timed, `${who}: every frame carries a marker on the bench's clock (CLOCK_MONOTONIC µs)`)
      t.same(kinds, { S: syncs, C: chats }, `${who}: ${syncs} syncs and ${chats} chats`)
    }
    members.forEach((m, room) => {
      check(m.host, 0, 1, `room ${room} host`)
      m.viewers.forEach((v, i) => { check(v, 20, 1, `room ${room} viewer ${i}`) })
    })

    for (const c of all) c.socket.destroy()
    floor.child.stdin!.end()
    t.equal(await exited, 0, 'exits when its stdin closes')
  })

  t.test('the bench workers populate it and count every delivery', async (t) => {
    const workers = startWorkers(1)
    t.teardown(async () => { await stopWorkers(workers) })
    const run = await runFloor({ binary: build.binary, rooms: 2, viewers: 3, syncHz: 20, chatHz: 1, seconds: 1, workers })
    t.match(run, { rooms: 2, viewers: 3, sockets: 8, expected: 128, received: 128, deliveredRatio: 1, writeErrors: 0, receivers: 1 })
    t.equal(run.latency.count, 128, 'every delivery timed')
    t.equal(run.floor.frames, 128, 'the floor wrote one frame per delivery')
    t.ok(run.floor.userUs + run.floor.sysUs > 0, 'and reported its CPU')
    t.equal(await workers[0]!.call<number>('alive'), 0, 'no connection left open')
  })
})
