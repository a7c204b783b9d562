/**
 * A minimal WebSocket client (RFC 6455) over a raw TCP socket, used by the load generator for all three
 * servers alike. It does the least work per received frame (no streams, no events per frame, no UTF-8
 * decoding; reads land in one buffer shared by all sockets, through net's `onread`, with no Buffer and no
 * stream event per read), so that the generator costs less per delivery than the servers it measures.
 *
 * Contract: `onMessage` gets every text or binary frame's payload as a Buffer that is only valid during the
 * call; pings are answered with pongs; fragmented messages are not supported (none of the servers sends them).
 */
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'

const MASK_POOL = randomBytes(64 * 1024)
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024)
let maskOffset = 0

function nextMask (): Buffer {
  if (maskOffset + 4 > MASK_POOL.length) maskOffset = 0
  const mask = MASK_POOL.subarray(maskOffset, maskOffset + 4)
  maskOffset += 4
  return mask
}

export interface LiteOptions {
  host: string
  port: number
  path: string
  /** Give up on the handshake after this long. */
  timeoutMs?: number
}

export class LiteSocket {
  onClose: () => void = () => {}
  closed = false
  private pending: Buffer | null = null
  private handler: ((payload: Buffer) => void) | undefined
  /** Frames that arrived before a handler was set (the server's first frame often comes with the handshake). */
  private early: Buffer[] = []

  get onMessage (): (payload: Buffer) => void {
    return this.handler ?? ((payload) => { this.early.push(Buffer.from(payload)) })
  }

  set onMessage (handler: (payload: Buffer) => void) {
    this.handler = handler
    const early = this.early
    this.early = []
    for (const payload of early) handler(payload)
  }

  private constructor (private readonly socket: Socket) {}

  static async connect (options: LiteOptions): Promise<LiteSocket> {
    return await new Promise((resolve, reject) => {
      // Reads land in one buffer shared by every socket (`onread`): no Buffer and no stream event per read.
      // What is kept past the callback (a partial frame, the handshake) is copied out.
      let onBytes = (_chunk: Buffer): void => {}
      const socket = connect({
        host: options.host,
        port: options.port,
        onread: {
          buffer: READ_BUFFER,
          callback: (bytes: number, buffer: Uint8Array) => {
            onBytes(Buffer.from(buffer.buffer, buffer.byteOffset, bytes))
            return true
          }
        }
      })
      socket.setNoDelay(true)
      const timer = setTimeout(() => { fail(new Error(`WebSocket handshake to ${options.path} timed out`)) }, options.timeoutMs ?? 30_000)
      let head: Buffer = Buffer.alloc(0)
      const fail = (err: Error): void => {
        clearTimeout(timer)
        onBytes = () => {}
        socket.removeAllListeners()
        socket.on('error', () => {})
        socket.destroy()
        reject(err)
      }
      onBytes = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        const statusLine = head.subarray(0, head.indexOf('\r\n')).toString('latin1')
        if (!/^HTTP\/1\.1 101 /.test(statusLine)) {
          fail(new Error(`WebSocket upgrade refused: ${statusLine}`))
          return
        }
        clearTimeout(timer)
        socket.removeListener('error', fail)
        socket.removeListener('close', onEarlyClose)
        const lite = new LiteSocket(socket)
        onBytes = (data) => { lite.receive(data) }
        socket.on('error', () => {})
        socket.on('close', () => {
          lite.closed = true
          lite.onClose()
        })
        resolve(lite)
        const rest = head.subarray(end + 4)
        if (rest.length > 0) lite.receive(rest)
      }
      const onEarlyClose = (): void => { fail(new Error('connection closed during the WebSocket handshake')) }
      socket.on('error', fail)
      socket.on('close', onEarlyClose)
      socket.write(
        `GET ${options.path} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`
      )
    })
  }

  sendText (text: string): void {
    this.sendFrame(0x1, Buffer.from(text))
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    this.socket.destroy()
  }

  private sendFrame (opcode: number, payload: Buffer): void {
    if (this.closed) return
    const length = payload.length
    const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10
    const frame = Buffer.allocUnsafe(headerLength + 4 + length)
    frame[0] = 0x80 | opcode
    if (length < 126) {
      frame[1] = 0x80 | length
    } else if (length < 65_536) {
      frame[1] = 0x80 | 126
      frame.writeUInt16BE(length, 2)
    } else {
      frame[1] = 0x80 | 127
      frame.writeUInt32BE(0, 2)
      frame.writeUInt32BE(length, 6)
    }
    const mask = nextMask()
    mask.copy(frame, headerLength)
    const start = headerLength + 4
    for (let i = 0; i < length; i++) frame[start + i] = payload[i]! ^ mask[i & 3]!
    this.socket.write(frame)
  }

  private receive (chunk: Buffer): void {
    let buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk])
    this.pending = null
    let offset = 0
    while (buf.length - offset >= 2) {
      const b0 = buf[offset]!
      const b1 = buf[offset + 1]!
      let length = b1 & 0x7f
      let header = 2
      if (length === 126) {
        if (buf.length - offset < 4) break
        length = buf.readUInt16BE(offset + 2)
        header = 4
      } else if (length === 127) {
        if (buf.length - offset < 10) break
        length = buf.readUInt32BE(offset + 2) * 2 ** 32 + buf.readUInt32BE(offset + 6)
        header = 10
      }
      if ((b1 & 0x80) !== 0) header += 4 // servers never mask; tolerate it by skipping the key
      if (buf.length - offset < header + length) break
      const payload = buf.subarray(offset + header, offset + header + length)
      offset += header + length
      const opcode = b0 & 0x0f
      if (opcode === 0x1 || opcode === 0x2) {
        if (this.handler !== undefined) this.handler(payload)
        else this.early.push(Buffer.from(payload))
      } else if (opcode === 0x9) {
        this.sendFrame(0xa, Buffer.from(payload))
      } else if (opcode === 0x8) {
        this.close()
        return
      }
    }
    if (offset < buf.length) {
      buf = buf.subarray(offset)
      // Keep a copy only when the chunk is partly consumed, so that a big chunk is not retained whole.
      this.pending = Buffer.from(buf)
    }
  }
}
