/**
 * `ws`'s WebSocket with a hand on the wire: frames the client sends or receives can be dropped by predicate,
 * to make a request go unanswered (timeouts) or a stream event go missing (gaps). Everything else passes as is.
 */
import WebSocket from 'ws'
import type { SocketLike, WebSocketClass } from '@watch-party/client'

export interface Frame {
  type: string
  id?: string
  seq?: number
  replyTo?: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data?: any
}

export interface Loss {
  /** Outgoing frames for which this returns true never reach the server. */
  dropOutgoing?: (frame: Frame) => boolean
  /** Incoming frames for which this returns true never reach the client. */
  dropIncoming?: (frame: Frame) => boolean
  /** Every frame dropped, in order. */
  dropped: Frame[]
}

export function lossyWebSocket (loss: Loss): WebSocketClass {
  return class LossySocket implements SocketLike {
    private readonly socket: WebSocket

    constructor (url: string) {
      this.socket = new WebSocket(url)
    }

    get readyState (): number {
      return this.socket.readyState
    }

    send (data: string): void {
      const frame = JSON.parse(data) as Frame
      if (loss.dropOutgoing?.(frame) === true) {
        loss.dropped.push(frame)
        return
      }
      this.socket.send(data)
    }

    close (code?: number, reason?: string): void {
      this.socket.close(code, reason)
    }

    addEventListener (type: 'open' | 'message' | 'close' | 'error', listener: (event: never) => void): void {
      const call = listener as (event: unknown) => void
      if (type !== 'message') {
        this.socket.addEventListener(type, call)
        return
      }
      this.socket.addEventListener('message', (event) => {
        const frame = JSON.parse(String(event.data)) as Frame
        if (loss.dropIncoming?.(frame) === true) {
          loss.dropped.push(frame)
          return
        }
        call(event)
      })
    }
  }
}
