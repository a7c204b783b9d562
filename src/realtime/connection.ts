/**
 * One client connection's lifecycle above the socket: frame parsing, in-order handling, replies.
 *
 * Contracts:
 * - Requests of one connection are handled strictly in the order their frames arrived; a request's
 *   handling (including awaited database writes) finishes before the next one starts.
 * - A request with an `id` gets exactly one reply carrying `replyTo`: its success event or `error`.
 * - A bad frame is answered with `error` and never closes the connection; only binary frames (1003) do,
 *   besides the transport's own limits.
 */
import { randomUUID } from 'node:crypto'
import { Compile } from 'typebox/compile'
import { AppError, errorBody, INTERNAL_ERROR_BODY, type ErrorBody } from '../errors.js'
import type { Logger, RoomEvent } from '../rooms/room-ports.js'
import type { HubConnection } from './hub.js'
import { CLOSE_CODES, RequestEnvelope, type ServerEvent } from './protocol.js'
import type { Transport } from './transport.js'
import type { MessageVerdict } from './user-budgets.js'

export interface ClientRequest {
  type: string
  id: string | undefined
  data: Record<string, unknown>
}

export interface ConnectionLimits {
  /**
   * Charges one inbound frame of `connection` to the budget of its user (shared by all of their connections).
   * One ConnectionLimits may serve every connection: it is told which one is charged.
   */
  admit: (connection: ClientConnection) => MessageVerdict
}

export interface ConnectionHooks {
  /** Handles one well-formed request; throws AppError to refuse it. */
  dispatch (connection: ClientConnection, request: ClientRequest): Promise<void>
  /** Called once per frame sent to this connection. */
  onSent (type: string): void
  /** Called for every error answered, with the request type when known. */
  onError (connection: ClientConnection, code: ErrorBody['code'], requestType: string | undefined, data: Record<string, unknown> | undefined): void
  logger: Logger
}

const envelope = Compile(RequestEnvelope)
const requestId = Compile(RequestEnvelope.properties.id)
/**
 * Requests that already got their reply: a later failure must not answer them twice. One table for every
 * connection (request objects are each connection's own), instead of a WeakSet per connection.
 */
const answered = new WeakSet<ClientRequest>()

export class ClientConnection implements HubConnection {
  readonly id = randomUUID()
  /**
   * Pending requests; each link runs after the previous one settled. Undefined when nothing is pending
   * (an idle connection holds no promise).
   */
  private tail: Promise<void> | undefined
  /** Set once the deprecation warning for legacy channels was sent. */
  legacyWarned = false
  /** Created on first use: most connections never use a legacy channel. */
  private legacy: Set<string> | undefined
  closed = false
  /** Set once the flood limit was passed: the connection is closing with 4429. */
  private flooded = false

  constructor (
    private userIdValue: string,
    readonly transport: Transport,
    private readonly hooks: ConnectionHooks,
    private readonly limits?: ConnectionLimits
  ) {}

  get userId (): string {
    return this.userIdValue
  }

  /** Strict legacy relay: the legacy channels (chat ids) this connection has used since connecting. */
  get legacyChannels (): Set<string> {
    this.legacy ??= new Set<string>()
    return this.legacy
  }

  /** Takes one inbound frame. Never throws. */
  receive (frame: Buffer, isBinary: boolean): void {
    if (this.closed || this.flooded) return
    if (isBinary) {
      this.close(CLOSE_CODES.UNSUPPORTED_DATA, 'binary frames are not accepted; send JSON text frames')
      return
    }
    const verdict = this.limits?.admit(this) ?? 'ok'
    if (verdict !== 'ok') {
      if (verdict === 'flooding') {
        // Frames after this are ignored; answers already queued go out before the close.
        this.flooded = true
        this.enqueue(() => { this.close(CLOSE_CODES.FLOODING, 'too many messages; slow down before reconnecting') })
        return
      }
      const refused = parseRequest(frame)
      const replyTo = refused instanceof RequestError ? refused.replyTo : refused.id
      this.enqueue(() => {
        this.sendError(replyTo, errorBody('RATE_LIMITED', 'too many messages; this one was dropped'), refused instanceof RequestError ? undefined : refused.type, undefined)
      })
      return
    }
    const parsed = parseRequest(frame)
    this.enqueue(async () => {
      if (this.closed) return
      if (parsed instanceof RequestError) {
        this.sendError(parsed.replyTo, parsed.error, undefined, undefined)
        return
      }
      await this.handle(parsed)
    })
  }

  /** Sends an event to this connection alone. */
  send (event: ServerEvent): void {
    if (this.closed) return
    this.transport.send(Buffer.from(JSON.stringify(event)))
    this.hooks.onSent(event.type)
  }

  /** The answer to `request`: the event with `replyTo` (when the request had an id) and its room channel. */
  reply (request: ClientRequest, event: RoomEvent, channel?: string): void {
    answered.add(request)
    // Field order as every other frame: type, replyTo, channel, then a stream event's position, then data.
    this.send({
      type: event.type,
      ...(request.id === undefined ? {} : { replyTo: request.id }),
      ...(channel === undefined ? {} : { channel }),
      ...(event.seq === undefined ? {} : { seq: event.seq, epoch: event.epoch }),
      data: event.data
    } as ServerEvent)
  }

  close (code: number, reason: string): void {
    if (this.closed) return
    this.closed = true
    this.transport.close(code, reason)
  }

  /** Resolves when every request received so far has been handled (tests, shutdown). */
  async settled (): Promise<void> {
    await this.tail
  }

  /** Runs `step` after every step queued before it has settled; forgets the chain once it is done. */
  private enqueue (step: () => void | Promise<void>): void {
    const link: Promise<void> = (this.tail ?? Promise.resolve()).then(async () => {
      await step()
      if (this.tail === link) this.tail = undefined
    })
    this.tail = link
  }

  private async handle (request: ClientRequest): Promise<void> {
    try {
      await this.hooks.dispatch(this, request)
    } catch (err) {
      if (answered.has(request)) {
        this.hooks.logger.error({ err, type: request.type, userId: this.userId }, 'request failed after its reply was sent')
        return
      }
      if (err instanceof AppError) {
        this.sendError(request.id, err.toBody(), request.type, request.data)
      } else {
        this.hooks.logger.error({ err, type: request.type, userId: this.userId }, 'request failed')
        this.sendError(request.id, INTERNAL_ERROR_BODY, request.type, request.data)
      }
    }
  }

  private sendError (replyTo: string | undefined, body: ErrorBody, requestType: string | undefined, data: Record<string, unknown> | undefined): void {
    this.hooks.onError(this, body.code, requestType, data)
    this.send({ type: 'error', ...(replyTo === undefined ? {} : { replyTo }), data: body })
  }
}

class RequestError {
  constructor (readonly error: ErrorBody, readonly replyTo: string | undefined) {}
}

/** Frame to request; malformed frames become the error to answer (with replyTo when the id is readable). */
function parseRequest (frame: Buffer): ClientRequest | RequestError {
  let value: unknown
  try {
    value = JSON.parse(frame.toString('utf8'))
  } catch {
    return new RequestError(errorBody('INVALID_MESSAGE', 'the frame is not JSON'), undefined)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return new RequestError(errorBody('INVALID_MESSAGE', 'a request is a JSON object {type, id?, data}'), undefined)
  }
  // The id is judged by the envelope's own schema (lengths in characters, not UTF-16 units), so a frame
  // refused for another reason still gets replyTo exactly when its id would have been accepted.
  const rawId = (value as { id?: unknown }).id
  const replyTo = requestId.Check(rawId) ? rawId as string : undefined
  if (!envelope.Check(value)) {
    const first = envelope.Errors(value)[0]
    const where = first === undefined ? '' : `${first.instancePath === '' ? 'request' : first.instancePath} ${first.message}`
    return new RequestError(errorBody('INVALID_MESSAGE', `a request is a JSON object {type, id?, data}: ${where}`), replyTo)
  }
  const request = value as RequestEnvelope
  return { type: request.type, id: request.id, data: request.data ?? {} }
}
