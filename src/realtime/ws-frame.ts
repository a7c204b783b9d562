/**
 * Server-to-client WebSocket text frames (RFC 6455 section 5.2): FIN set, opcode 1, no mask (servers never
 * mask), no extension bits.
 *
 * Contract: `textFrame(payload)` returns header and payload in one Buffer. The last payload framed is
 * remembered, so a fan-out that hands the same Buffer to many sockets frames (and copies) it once.
 */
let lastPayload: Buffer | undefined
let lastFrame: Buffer | undefined

export function textFrame (payload: Buffer): Buffer {
  if (payload === lastPayload && lastFrame !== undefined) return lastFrame
  const length = payload.length
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = 0x81
  if (length < 126) {
    frame[1] = length
  } else if (length < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
  payload.copy(frame, headerLength)
  lastPayload = payload
  lastFrame = frame
  return frame
}
