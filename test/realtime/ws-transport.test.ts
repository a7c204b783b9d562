import t from 'tap'
import type { WebSocket } from 'ws'
import type { Writable } from 'node:stream'
import * as wsModule from 'ws'
import { textFrame } from '../../src/realtime/ws-frame.js'
import { WsTransport } from '../../src/realtime/ws-transport.js'

/**
 * A ws socket whose unsent bytes the test controls: WsTransport writes frames to its TCP socket (`_socket`),
 * and those writes complete only when the test says so.
 */
class FakeSocket {
  readyState = 1
  bufferedAmount = 0
  readonly written: string[] = []
  private readonly callbacks: Array<() => void> = []
  terminated = false
  callbacksAsked = 0
  readonly _socket = {
    write: (frame: Buffer, cb?: () => void): boolean => {
      this.written.push(payloadOf(frame))
      if (cb !== undefined) this.callbacksAsked++
      this.bufferedAmount += frame.length
      this.callbacks.push(() => {
        this.bufferedAmount -= frame.length
        cb?.()
      })
      return true
    }
  }

  /** The network takes every byte written so far. */
  flush (): void {
    while (this.callbacks.length > 0) this.callbacks.shift()!()
  }

  terminate (): void {
    this.terminated = true
    this.readyState = 3
  }

  close (): void {
    this.readyState = 2
  }
}

/** The text of one unmasked server frame. */
function payloadOf (frame: Buffer): string {
  const length = frame[1]! & 0x7f
  const offset = length < 126 ? 2 : length === 126 ? 4 : 10
  return frame.subarray(offset).toString()
}

/** ws's frame parser (what a `ws` client decodes with); @types/ws does not declare it. */
const { Receiver } = wsModule as unknown as { Receiver: new (options: { isServer: boolean }) => Writable }

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
  t.equal(socket.bufferedAmount, big.length + 10, 'the frame: a 10-byte header (payload over 64 KiB) and the payload')
  t.equal(transport.bufferedAmount, socket.bufferedAmount + ['chat a', 'sync other', 'sync 3', 'chat b'].join('').length)
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

t.test('only writes that leave the socket half-way behind ask for a callback, and queued frames still drain', async (t) => {
  const { socket, transport } = setup(1 << 20)
  const kb = 'k'.repeat(1024)
  for (let i = 0; i < 100; i++) transport.send(frame(`${i} ${kb}`))
  t.equal(socket.callbacksAsked, 64 - 31, 'frames 32..63 (from half of the 64 KiB behind line) and none before')
  t.equal(socket.written.length, 64, 'the socket is behind after 64 KiB: the rest waits')
  socket.flush()
  t.equal(socket.written.length, 100, 'the callback of the newest write drained the queue')
  t.same(socket.written.map((text) => Number(text.split(' ')[0])), Array.from({ length: 100 }, (_, i) => i), 'in order')
})

t.test('a socket that is closing takes no more frames', async (t) => {
  const { socket, transport } = setup(1 << 20)
  transport.send(frame('before'))
  transport.close(1000, 'bye')
  transport.send(frame('after'))
  t.same(socket.written, ['before'])
})

t.test('textFrame builds frames a WebSocket client decodes, for every length encoding', async (t) => {
  for (const length of [0, 1, 125, 126, 127, 65535, 65536, 200_000]) {
    const text = 'é'.repeat(Math.floor(length / 2)) + 'a'.repeat(length % 2)
    const payload = Buffer.from(text)
    const framed = textFrame(payload)
    const received = await new Promise<string>((resolve, reject) => {
      const receiver = new Receiver({ isServer: false })
      receiver.on('message', (data: Buffer, isBinary: boolean) => { resolve(isBinary ? 'binary!' : data.toString()) })
      receiver.on('error', reject)
      receiver.write(framed)
    })
    t.equal(received, text, `${payload.length} bytes`)
  }
  const payload = Buffer.from('shared by a fan-out')
  t.equal(textFrame(payload), textFrame(payload), 'the same payload is framed once')
  t.not(textFrame(Buffer.from('shared by a fan-out')), textFrame(payload), 'another Buffer is framed anew')
})
