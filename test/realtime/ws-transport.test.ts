import t from 'tap'
import type { WebSocket } from 'ws'
import { WsTransport } from '../../src/realtime/ws-transport.js'

/** A socket whose unsent bytes the test controls: writes complete only when the test says so. */
class FakeSocket {
  bufferedAmount = 0
  readonly written: string[] = []
  private readonly callbacks: Array<() => void> = []
  terminated = false

  send (frame: Buffer, _options: unknown, cb: () => void): void {
    this.written.push(frame.toString())
    this.bufferedAmount += frame.length
    this.callbacks.push(() => {
      this.bufferedAmount -= frame.length
      cb()
    })
  }

  /** The network takes every byte written so far. */
  flush (): void {
    while (this.callbacks.length > 0) this.callbacks.shift()!()
  }

  terminate (): void {
    this.terminated = true
  }

  close (): void {}
}

const frame = (text: string): Buffer => Buffer.from(text)
const setup = (cap: number) => {
  const socket = new FakeSocket()
  const slow: number[] = []
  const transport = new WsTransport(socket as unknown as WebSocket, cap, (bytes) => { slow.push(bytes) })
  return { socket, transport, slow }
}

t.test('a client that keeps up gets every frame at once', async (t) => {
  const { socket, transport } = setup(1 << 20)
  for (let i = 0; i < 10; i++) {
    transport.send(frame(`sync ${i}`), 'room-1')
    socket.flush()
  }
  t.same(socket.written, Array.from({ length: 10 }, (_, i) => `sync ${i}`))
})

t.test('while a client is behind, queued syncs collapse to the newest and other frames keep their order', async (t) => {
  const { socket, transport } = setup(1 << 20)
  const big = 'x'.repeat(70 * 1024)
  transport.send(frame(big))  // the socket is now behind (over 64 KiB unsent)
  transport.send(frame('sync 1'), 'room-1')
  transport.send(frame('chat a'))
  transport.send(frame('sync 2'), 'room-1')
  transport.send(frame('sync other'), 'room-2')
  transport.send(frame('sync 3'), 'room-1')
  transport.send(frame('chat b'))
  t.same(socket.written, [big], 'nothing more is handed to the socket while it is behind')
  t.equal(transport.bufferedAmount, big.length + ['chat a', 'sync other', 'sync 3', 'chat b'].join('').length)
  socket.flush()
  t.same(socket.written.slice(1), ['chat a', 'sync other', 'sync 3', 'chat b'], 'the newest sync per room, in event order')
  socket.flush()
  transport.send(frame('sync 4'), 'room-1')
  t.same(socket.written.at(-1), 'sync 4', 'back to direct writes once caught up')
})

t.test('a client whose unsent bytes pass the cap is terminated and its queue freed', async (t) => {
  const { socket, transport, slow } = setup(100 * 1024)
  transport.send(frame('x'.repeat(30 * 1024)))
  for (let i = 0; i < 100; i++) transport.send(frame(`chat ${i} ${'y'.repeat(1000)}`))
  t.ok(socket.terminated, 'terminated')
  t.equal(slow.length, 1, 'reported once')
  t.ok(slow[0]! > 100 * 1024)
  t.equal(transport.bufferedAmount, socket.bufferedAmount, 'the local queue was dropped')
  const before = socket.written.length
  transport.send(frame('late'))
  t.equal(socket.written.length, before, 'nothing is sent after termination')
})
