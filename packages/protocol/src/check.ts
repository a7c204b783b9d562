/**
 * Checks a frame received from the server against the contract: its event schema, and the position rule
 * (stream events of a room carry seq and epoch; nothing else does). Used by the server's tests on every frame
 * they receive, and available to clients that want to be strict.
 */
import { Compile } from 'typebox/compile'
import { Type, type TSchema } from 'typebox'
import { EventData, isStreamEventType, roomIdOfChannel, type EventType } from './events.js'
import { ErrorResponseSchema, RoomSchema, SyncDataSchema, type SharedContext } from './shapes.js'

const context: SharedContext = { SyncData: SyncDataSchema, Room: RoomSchema, ErrorResponse: ErrorResponseSchema }

const frameValidators = new Map<string, ReturnType<typeof Compile>>(
  (Object.keys(EventData) as EventType[]).map((type) => [type, Compile(context, Type.Object({
    type: Type.Literal(type),
    replyTo: Type.Optional(Type.String()),
    channel: Type.Optional(Type.String()),
    seq: Type.Optional(Type.Integer({ minimum: 1 })),
    epoch: Type.Optional(Type.String({ minLength: 1 })),
    data: EventData[type] as TSchema
  }, { additionalProperties: false }))])
)

/** Why `frame` breaks the contract, or undefined when it keeps it. */
export function serverEventProblem (frame: unknown): string | undefined {
  const type = (frame as { type?: unknown } | null)?.type
  if (typeof type !== 'string') return 'a server frame is an object with a string type'
  const validator = frameValidators.get(type)
  if (validator === undefined) return `unknown event type ${JSON.stringify(type)}`
  if (!validator.Check(frame)) {
    const first = validator.Errors(frame)[0]
    return `${type}: ${first === undefined ? 'invalid' : `${first.instancePath || '/'} ${first.message}`}`
  }
  const { channel, seq, epoch } = frame as { channel?: string, seq?: number, epoch?: string }
  const positioned = isStreamEventType(type) && channel !== undefined && roomIdOfChannel(channel) !== undefined
  if (positioned && (seq === undefined || epoch === undefined)) return `${type} on ${channel} must carry seq and epoch`
  if (!positioned && (seq !== undefined || epoch !== undefined)) return `${type} must not carry seq or epoch`
  return undefined
}
