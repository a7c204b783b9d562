/**
 * What Node itself adds to the kernel floor: one process writes a pre-framed 200-byte frame to each of N
 * loopback sockets (drained by two child processes) at a fixed rate, through `socket.write` (`stream`) or
 * straight to the handle as our server does (`direct`, src/realtime/tcp-direct-write.ts), and reports its
 * user and kernel CPU per write from /proc. No WebSocket library, no protocol: the gap between this and
 * bench/floor/floor.c is Node's per-write cost; the gap between this and our server is ours.
 *
 * Usage: npx tsx --conditions=watch-party-source bench/floor/node-writes.ts [stream|direct] [sockets=1000] [writes/s=40000] [seconds=10]
 */
import { fork } from 'node:child_process'
import { connect, createServer, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { writeDirect, useDirectWrites } from '../../src/realtime/tcp-direct-write.js'
import { cpuTimes } from '../lib/proc.js'

if (process.argv[2] === '--drain') {
  const [port, count] = process.argv.slice(3).map(Number) as [number, number]
  const buffer = Buffer.allocUnsafe(256 * 1024)
  let bytes = 0
  let open = 0
  for (let i = 0; i < count; i++) {
    const socket = connect({ port, host: '127.0.0.1', onread: { buffer, callback: (n: number) => { bytes += n; return true } } })
    socket.on('connect', () => { if (++open === count) process.send?.('ready') })
  }
  process.on('message', () => { process.send?.({ bytes }) })
} else {
  const mode = process.argv[2] === 'stream' ? 'stream' : 'direct'
  const [count, rate, seconds] = [Number(process.argv[3] ?? 1000), Number(process.argv[4] ?? 40_000), Number(process.argv[5] ?? 10)]
  useDirectWrites(mode === 'direct')
  const sockets: Socket[] = []
  const server = createServer((s) => { s.setNoDelay(true); sockets.push(s) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const script = fileURLToPath(import.meta.url)
  const drains = [0, 1].map(() => fork(script, ['--drain', String(port), String(count / 2)], { execArgv: process.execArgv }))
  await Promise.all(drains.map(async (d) => await new Promise((resolve) => d.once('message', resolve))))
  while (sockets.length < count) await new Promise((resolve) => setTimeout(resolve, 10))
  const frame = Buffer.alloc(202, 0x61)
  frame[0] = 0x81
  frame[1] = 200
  const owner = { directWritten: () => {} }
  const write = (s: Socket): void => {
    if (mode === 'stream' || writeDirect(s, frame, owner) === 'unavailable') s.write(frame)
  }
  const before = cpuTimes(process.pid)
  const t0 = performance.now()
  let sent = 0
  const perTick = rate / 100
  await new Promise<void>((resolve) => {
    let next = performance.now()
    const tick = (): void => {
      for (let i = 0; i < perTick; i++) write(sockets[(sent + i) % count]!)
      sent += perTick
      next += 10
      if (performance.now() - t0 >= seconds * 1000) { resolve(); return }
      setTimeout(tick, Math.max(0, next - performance.now()))
    }
    tick()
  })
  const after = cpuTimes(process.pid)
  await new Promise((resolve) => setTimeout(resolve, 500))
  const got = await Promise.all(drains.map(async (d) => await new Promise<{ bytes: number }>((resolve) => { d.once('message', resolve); d.send('bytes') })))
  const received = got.reduce((a, g) => a + g.bytes, 0) / frame.length
  const us = (s: number): number => Math.round((s * 1e6 / sent) * 100) / 100
  console.log(JSON.stringify({ mode, sockets: count, writes: sent, received, userUsPerWrite: us(after.user - before.user), kernelUsPerWrite: us(after.system - before.system) }))
  for (const d of drains) d.kill()
  process.exit(0)
}
