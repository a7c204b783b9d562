/**
 * Rooms across nodes: each room is served by the one node holding its lease (its owner, running the room host);
 * every other node with members in the room is an edge that forwards their requests to the owner and delivers
 * the room's events to them.
 *
 * Contracts:
 * - A request for a room goes to its owner. With no owner, the node that receives it tries to become the owner
 *   (lease, then fenced claim, then the room loaded from the database and its history).
 * - A forwarded request is acknowledged by the owner at once; one the owner does not acknowledge within
 *   FORWARD_ACK_MS is answered SERVICE_UNAVAILABLE (and the room's ownership is checked again), one that does not
 *   complete within FORWARD_DONE_MS likewise. Its reply and any frames after it (a catch-up) come back in order,
 *   before the room events published after them.
 * - Before a join is forwarded, the edge subscribes to the room's channel, so no event after the join's snapshot
 *   can be missed; the connection then gets the room's events from its snapshot's position on.
 * - The owner learns each remote connection's node when it attaches; when that node stops heartbeating, its
 *   connections count as closed (their graces start) within DEAD_AFTER_MS plus a check interval.
 * - After a takeover the new owner announces itself; every node re-attaches its local members, so users who are
 *   still connected keep their places (nobody's grace expires for a takeover).
 * - A stopping node hands its rooms over at once: it writes their state, releases their leases and announces
 *   it, so another node takes them without waiting for the lease to expire.
 */
import { randomUUID } from 'node:crypto'
import { roomChannel, type ErrorBody, type ServerEvent } from '@watch-party/protocol'
import { AppError } from '../errors.js'
import { roomMessage } from '../realtime/event-frame.js'
import type { Hub } from '../realtime/hub.js'
import type { HostSyncInput, RoomHost, StreamPosition } from '../rooms/room-host.js'
import type { Actor, Logger, Ownership, Permission, Responder, RoomEventSink } from '../rooms/room-ports.js'
import { canonicalRoomId } from '../rooms/room-rules.js'
import type { PlaybackReport } from '../rooms/viewer-reports.js'
import type { ClusterBroker } from './cluster-broker.js'
import type { ClusterBus, Header } from './cluster-bus.js'
import type { Leases } from './leases.js'
import type { Presence } from './presence.js'

export const FORWARD_ACK_MS = 1000
export const FORWARD_DONE_MS = 15_000
/** How often a node checks the owners of rooms it has members in, and the nodes of its rooms' members. */
export const WATCH_MS = 1000
/**
 * A request whose room is between owners (a hand-over, or a dead owner's lease running out) looks again every
 * MOVE_RETRY_MS, and is held at most about MOVE_WAIT_MS (a takeover takes ROOM_LEASE_MS at most, by default),
 * then answered SERVICE_UNAVAILABLE.
 */
const MOVE_WAIT_MS = 6000
const MOVE_RETRY_MS = 150
/** A node that let a forwarded request go unacknowledged is not asked again for this long. */
const SILENT_MS = 3000
/** How often a node sweeps the database for open rooms whose owner is gone. */
export const SWEEP_MS = 3000

/** The operations a room's owner runs for an edge. */
type Op = 'join' | 'leave' | 'hostSync' | 'transferHost' | 'chat' | 'playbackReport' | 'disconnect' | 'reattach' | 'close'

interface Pending {
  res: Responder | undefined
  acked: boolean
  resolve: () => void
  reject: (err: unknown) => void
  timer: NodeJS.Timeout
  roomId: string
}

export interface ClusterStore {
  listOwners (): Promise<Array<{ id: string, ownerNode: string | null }>>
}

export interface ClusterMetrics {
  forwarded (op: string, seconds: number, ok: boolean): void
  takeover (): void
}

export class ClusterRooms implements Ownership {
  readonly loadAllAtStart = false
  private hub: Hub | undefined
  private readonly pending = new Map<string, Pending>()
  /** Owner side: the node and user of each remote connection attached to a room here. */
  private readonly remote = new Map<string, { nodeId: string, userId: string }>()
  /** Edge side: the rooms each local connection is in (for disconnects), and the owners last seen. */
  private readonly localRooms = new Map<string, Set<string>>()
  private readonly owners = new Map<string, string>()
  private readonly adopting = new Map<string, Promise<boolean>>()
  /** Nodes that did not acknowledge a forwarded request, until when they are passed over. */
  private readonly silent = new Map<string, number>()
  private timers: NodeJS.Timeout[] = []
  private stopping = false

  constructor (
    private readonly host: RoomHost,
    private readonly bus: ClusterBus,
    private readonly broker: ClusterBroker,
    private readonly leases: Leases,
    private readonly presence: Presence,
    private readonly store: ClusterStore,
    private readonly metrics: ClusterMetrics,
    private readonly logger: Logger
  ) {
    bus.handle({
      room: (roomId, header, body) => { this.onRoomMessage(roomId, header, body) },
      node: (header) => { this.onNodeMessage(header) },
      cluster: (header) => { this.onClusterMessage(header) }
    })
  }

  get nodeId (): string {
    return this.bus.nodeId
  }

  async start (): Promise<void> {
    await this.bus.start()
    await this.presence.start()
    this.leases.start()
    const every = (ms: number, task: () => Promise<void>): void => {
      const timer = setInterval(() => { void task().catch((err: unknown) => { this.logger.warn({ err }, 'cluster check failed') }) }, ms)
      timer.unref()
      this.timers.push(timer)
    }
    every(WATCH_MS, async () => { await this.watch() })
    every(SWEEP_MS, async () => { await this.sweep() })
    every(5000, async () => { await this.broker.checkPositions() })
  }

  /**
   * Hands every room over (graceful stop, before the sockets close): each room's queued work finishes and its
   * state is written, its lease released and the release announced, so that the nodes its members reconnect to
   * take it at once.
   */
  async handOver (): Promise<void> {
    if (this.stopping) return
    this.stopping = true
    for (const timer of this.timers) clearInterval(timer)
    this.leases.stop()
    await Promise.all(this.host.roomIds().map(async (roomId) => {
      await this.host.release(roomId)
      await this.leases.release(roomId)
      this.bus.publishCluster({ k: 'owner', room: roomId, node: null })
      this.logger.info({ roomId }, 'room handed over')
    }))
  }

  /** Leaves the cluster. */
  async stop (): Promise<void> {
    await this.handOver()
    await this.presence.stop()
  }

  /** The sink the room host publishes to in cluster mode; the hub is the realtime layer's. */
  sink (hub: Hub): RoomEventSink {
    this.hub = hub
    return {
      // The owner's fast path: local members get the event now, edges through Redis (cluster-broker.ts).
      publish: (roomId, event, exceptConnectionId) => { this.broker.publishOwned(roomMessage(roomId, event, exceptConnectionId)) },
      sendTo: (connectionId, event) => {
        const remote = this.remote.get(connectionId)
        if (remote === undefined) hub.sendTo(connectionId, Buffer.from(JSON.stringify(event)))
        else this.bus.publishNode(remote.nodeId, { k: 'deliver', conn: connectionId, e: event })
      },
      subscribe: (roomId, connectionId, position) => {
        const remote = this.remote.get(connectionId)
        if (remote === undefined) this.attachLocal(roomId, connectionId, position)
        else this.bus.publishNode(remote.nodeId, { k: 'sub', room: roomId, conn: connectionId, e: position.epoch, s: position.seq })
      },
      unsubscribe: (roomId, connectionId) => {
        const remote = this.remote.get(connectionId)
        if (remote === undefined) this.detachLocal(roomId, connectionId)
        else this.bus.publishNode(remote.nodeId, { k: 'unsub', room: roomId, conn: connectionId })
      },
      dropRoom: (roomId) => {
        // Marked as this node's like its events: handled here now, after the events published before it.
        this.bus.publishRoom(roomId, { k: 'drop', o: this.nodeId })
        this.dropLocal(roomId)
      }
    }
  }

  // ---- Ownership (asked by the room host) ----

  owns (roomId: string): boolean {
    return this.leases.tokenOf(roomId) !== undefined
  }

  async claimCreated (roomId: string): Promise<void> {
    const token = await this.leases.acquire(roomId)
    if (token === undefined) throw new AppError('SERVICE_UNAVAILABLE', `room ${roomId} could not be taken; try again`)
    this.owners.set(roomId, this.nodeId)
  }

  fencedOut (roomId: string): void {
    this.leases.forget(roomId)
    this.owners.delete(roomId)
  }

  /** The lease was lost: stop serving the room at once (another node may take it any moment). */
  lost (roomId: string): void {
    this.host.dropNow(roomId)
    this.owners.delete(roomId)
  }

  get ownedRooms (): number {
    return this.leases.count
  }

  // ---- the operations, routed ----

  /**
   * No refusal before dispatch in cluster mode: this node may be about to take the room over, with members
   * not yet re-attached; the owner checks every permission in the room's queue.
   */
  refusal (_roomId: string, _actor: Actor, _permission: Permission): AppError | undefined {
    return undefined
  }

  async createAndJoin (actor: Actor, name: string, res: Responder): Promise<void> {
    await this.host.createAndJoin(actor, name, res) // the creating node owns the new room (claimCreated)
  }

  async join (actor: Actor, roomId: string, since: StreamPosition | undefined, res: Responder): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.bus.subscribeRoom(roomId) // before the join, so that nothing after its snapshot is missed
    try {
      await this.run(roomId, 'join', actor, [since], res, async () => { await this.host.join(actor, roomId, since, res) })
    } finally {
      this.bus.unsubscribeRoom(roomId) // the attach (if it succeeded) holds its own interest
    }
  }

  async leave (actor: Actor, roomId: string, res: Responder): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.run(roomId, 'leave', actor, [], res, async () => { await this.host.leave(actor, roomId, res) })
  }

  async hostSync (actor: Actor, roomId: string, input: HostSyncInput, res: Responder): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.run(roomId, 'hostSync', actor, [input], res, async () => { await this.host.hostSync(actor, roomId, input, res) })
  }

  async transferHost (actor: Actor, roomId: string, newHostId: string, res: Responder): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.run(roomId, 'transferHost', actor, [newHostId], res, async () => { await this.host.transferHost(actor, roomId, newHostId, res) })
  }

  async chat (actor: Actor, roomId: string, message: string, requestId: string | undefined, res: Responder): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.run(roomId, 'chat', actor, [message, requestId], res, async () => { await this.host.chat(actor, roomId, message, requestId, res) })
  }

  async playbackReport (actor: Actor, roomId: string, report: PlaybackReport, res: Responder): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.run(roomId, 'playbackReport', actor, [report], res, async () => { await this.host.playbackReport(actor, roomId, report, res) })
  }

  /** DELETE /rooms/{id}, at the owner. */
  async closeRoom (roomId: string, userId: string): Promise<void> {
    roomId = canonicalRoomId(roomId)
    const actor = { userId, connectionId: `rest-${randomUUID()}` }
    await this.run(roomId, 'close', actor, [], undefined, async () => { await this.host.closeRoom(roomId, userId) })
  }

  /** A local connection closed: each room it was in hears of it at its owner. */
  disconnect (actor: Actor): void {
    const rooms = this.localRooms.get(actor.connectionId)
    this.localRooms.delete(actor.connectionId)
    this.host.disconnect(actor)
    for (const roomId of rooms ?? []) {
      this.broker.unsubscribe(roomChannel(roomId))
      if (this.owns(roomId)) continue // the local host handled it above
      void this.run(roomId, 'disconnect', actor, [], undefined, async () => { this.host.disconnect(actor) }).catch(() => {})
    }
  }

  /** The node serving a room now (for X-Room-Owner), or null. */
  async ownerOf (roomId: string): Promise<string | null> {
    if (this.owns(roomId)) return this.nodeId
    return await this.leases.holder(roomId).catch(() => null)
  }

  // ---- routing ----

  /** Runs `local` when this node owns the room (taking it when nobody does), else forwards `op` to the owner. */
  private async run (roomId: string, op: Op, actor: Actor, args: unknown[], res: Responder | undefined, local: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + MOVE_WAIT_MS
    for (;;) {
      const owner = await this.route(roomId)
      try {
        if (owner === this.nodeId) {
          await local()
          return
        }
        if (owner !== undefined) {
          await this.forward(owner, roomId, op, actor, args, res)
          return
        }
      } catch (err) {
        // The owner did not answer, or no longer serves the room (a hand-over under way): look again, briefly.
        if (!(err instanceof NotOwner)) throw err
      }
      if (Date.now() >= deadline) throw new AppError('SERVICE_UNAVAILABLE', `room ${roomId} is moving between nodes; try again`)
      await new Promise((resolve) => setTimeout(resolve, MOVE_RETRY_MS))
    }
  }

  /**
   * Who serves the room: a live lease holder that answers, or this node once it has taken the room; undefined
   * while the room is between owners (a dead owner's lease not yet expired, another node taking it).
   */
  private async route (roomId: string): Promise<string | undefined> {
    if (this.owns(roomId)) return this.nodeId
    let holder: string | null
    try {
      holder = await this.leases.holder(roomId)
    } catch {
      throw new AppError('SERVICE_UNAVAILABLE', 'the cluster cannot tell which node serves this room (Redis unreachable); try again shortly')
    }
    const silentUntil = holder === null ? undefined : this.silent.get(holder)
    if (holder !== null && holder !== this.nodeId && this.presence.alive(holder) && (silentUntil === undefined || silentUntil < Date.now())) {
      this.owners.set(roomId, holder)
      return holder
    }
    if (await this.adopt(roomId)) return this.nodeId
    const now = await this.leases.holder(roomId).catch(() => null)
    if (now !== null && now !== this.nodeId && now !== holder) return now
    return undefined
  }

  /** Takes a room nobody serves: lease, fenced claim, load. False when another node was faster. */
  private async adopt (roomId: string): Promise<boolean> {
    const running = this.adopting.get(roomId)
    if (running !== undefined) return await running
    const attempt = (async () => {
      let token: number | undefined
      try {
        token = await this.leases.acquire(roomId)
      } catch {
        return false
      }
      if (token === undefined) return false
      try {
        await this.host.adopt(roomId)
      } catch (err) {
        await this.leases.release(roomId)
        throw err
      }
      this.owners.set(roomId, this.nodeId)
      this.metrics.takeover()
      this.logger.info({ roomId, token }, 'room taken over')
      this.reattachLocal(roomId)
      this.bus.publishCluster({ k: 'owner', room: roomId, node: this.nodeId })
      return true
    })()
    this.adopting.set(roomId, attempt)
    try {
      return await attempt
    } finally {
      this.adopting.delete(roomId)
    }
  }

  private async forward (owner: string, roomId: string, op: Op, actor: Actor, args: unknown[], res: Responder | undefined): Promise<void> {
    const id = randomUUID()
    const started = performance.now()
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending.delete(id)
          this.silent.set(owner, Date.now() + SILENT_MS)
          reject(new NotOwner())
        }, FORWARD_ACK_MS)
        this.pending.set(id, { res, acked: false, resolve, reject, timer, roomId })
        this.bus.publishNode(owner, { k: 'rpc', id, from: this.nodeId, op, room: roomId, actor, args })
      })
      this.metrics.forwarded(op, (performance.now() - started) / 1000, true)
    } catch (err) {
      this.metrics.forwarded(op, (performance.now() - started) / 1000, false)
      if (err instanceof NotOwner) this.owners.delete(roomId)
      throw err
    }
  }

  // ---- messages ----

  private onRoomMessage (roomId: string, header: Header, body: Buffer | undefined): void {
    if (header.o === this.nodeId) return // this node's own publication: handled here when it was published
    if (header.k === 'drop') {
      this.dropLocal(roomId)
      return
    }
    this.broker.receive(roomId, header, body)
  }

  /** A room is gone: its local members are unsubscribed and its delivery state forgotten. */
  private dropLocal (roomId: string): void {
    this.hub?.dropChannel(roomChannel(roomId))
    this.broker.forget(roomId)
    for (const [connectionId, rooms] of this.localRooms) {
      if (rooms.delete(roomId)) this.bus.unsubscribeRoom(roomId)
      if (rooms.size === 0) this.localRooms.delete(connectionId)
    }
  }

  private onNodeMessage (header: Header): void {
    if (typeof header.from === 'string') this.presence.heard(header.from)
    switch (header.k) {
      case 'rpc':
        void this.serve(header)
        return
      case 'ack': {
        const pending = this.pending.get(String(header.id))
        if (pending === undefined) return
        pending.acked = true
        clearTimeout(pending.timer)
        pending.timer = setTimeout(() => {
          this.pending.delete(String(header.id))
          pending.reject(new AppError('SERVICE_UNAVAILABLE', 'the node serving the room did not answer in time; the request may or may not have been carried out'))
        }, FORWARD_DONE_MS)
        return
      }
      case 'reply':
      case 'send': {
        const pending = this.pending.get(String(header.id))
        const event = header.e as ServerEvent
        if (header.k === 'reply') pending?.res?.reply(event)
        else pending?.res?.send(event)
        return
      }
      case 'done': {
        const id = String(header.id)
        const pending = this.pending.get(id)
        if (pending === undefined) return
        this.pending.delete(id)
        clearTimeout(pending.timer)
        const error = header.error as ErrorBody | undefined
        if (error === undefined) pending.resolve()
        else if (header.notOwner === true) pending.reject(new NotOwner())
        else pending.reject(new AppError(error.code, error.message))
        return
      }
      case 'sub': {
        const roomId = String(header.room)
        this.attachLocal(roomId, String(header.conn), { epoch: String(header.e), seq: Number(header.s) })
        return
      }
      case 'unsub':
        this.detachLocal(String(header.room), String(header.conn))
        return
      case 'deliver':
        this.hub?.sendTo(String(header.conn), Buffer.from(JSON.stringify(header.e)))
    }
  }

  private onClusterMessage (header: Header): void {
    if (header.k !== 'owner') return
    const roomId = String(header.room)
    const node = typeof header.node === 'string' ? header.node : null
    if (node === null) this.owners.delete(roomId)
    else this.owners.set(roomId, node)
    if (node === this.nodeId || this.stopping) return
    if (node === null) {
      // Handed over: whoever has members of the room takes it at once (one of them wins the lease).
      if (this.hasLocalMembers(roomId)) void this.route(roomId).then(() => { this.reattachLocal(roomId) }).catch(() => {})
      return
    }
    this.reattachLocal(roomId)
  }

  /** Owner side: runs a forwarded operation for a connection on another node. */
  private async serve (header: Header): Promise<void> {
    const id = String(header.id)
    const from = String(header.from)
    const roomId = String(header.room)
    const actor = header.actor as Actor
    const args = header.args as unknown[]
    if (!this.owns(roomId)) {
      this.bus.publishNode(from, { k: 'done', id, notOwner: true, error: { error: 'Service Unavailable', message: 'not the owner', code: 'SERVICE_UNAVAILABLE' } })
      return
    }
    this.bus.publishNode(from, { k: 'ack', id })
    if (header.op !== 'close') this.remote.set(actor.connectionId, { nodeId: from, userId: actor.userId })
    const res: Responder = {
      reply: (e) => { this.bus.publishNode(from, { k: 'reply', id, e }) },
      send: (e) => { this.bus.publishNode(from, { k: 'send', id, e }) }
    }
    try {
      switch (header.op as Op) {
        case 'join': await this.host.join(actor, roomId, (args[0] ?? undefined) as StreamPosition | undefined, res); break
        case 'leave': await this.host.leave(actor, roomId, res); break
        case 'hostSync': await this.host.hostSync(actor, roomId, args[0] as HostSyncInput, res); break
        case 'transferHost': await this.host.transferHost(actor, roomId, String(args[0]), res); break
        case 'chat': await this.host.chat(actor, roomId, String(args[0]), (args[1] ?? undefined) as string | undefined, res); break
        case 'playbackReport': await this.host.playbackReport(actor, roomId, args[0] as PlaybackReport, res); break
        case 'disconnect': this.host.disconnect(actor); this.remote.delete(actor.connectionId); break
        case 'reattach': await this.host.reattach(actor, roomId); break
        case 'close': await this.host.closeRoom(roomId, actor.userId); break
      }
      this.bus.publishNode(from, { k: 'done', id })
    } catch (err) {
      const body = err instanceof AppError ? err.toBody() : { error: 'Internal Server Error', message: 'an unexpected error occurred', code: 'INTERNAL_ERROR' }
      if (!(err instanceof AppError)) this.logger.error({ err, op: header.op, roomId }, 'forwarded request failed')
      this.bus.publishNode(from, { k: 'done', id, error: body })
    }
  }

  // ---- local delivery ----

  private attachLocal (roomId: string, connectionId: string, position: { epoch: string, seq: number }): void {
    let rooms = this.localRooms.get(connectionId)
    if (rooms === undefined) {
      rooms = new Set()
      this.localRooms.set(connectionId, rooms)
    }
    if (!rooms.has(roomId)) {
      rooms.add(roomId)
      void this.bus.subscribeRoom(roomId)
    }
    this.broker.attachAt(roomId, connectionId, position, () => { this.hub?.subscribe(roomChannel(roomId), connectionId) })
  }

  private detachLocal (roomId: string, connectionId: string): void {
    this.hub?.unsubscribe(roomChannel(roomId), connectionId)
    const rooms = this.localRooms.get(connectionId)
    if (rooms?.delete(roomId) === true) this.bus.unsubscribeRoom(roomId)
    if (rooms?.size === 0) this.localRooms.delete(connectionId)
  }

  private hasLocalMembers (roomId: string): boolean {
    for (const rooms of this.localRooms.values()) if (rooms.has(roomId)) return true
    return false
  }

  /** After a takeover: this node's members of the room announce themselves to the new owner. */
  private reattachLocal (roomId: string): void {
    for (const [connectionId, rooms] of this.localRooms) {
      if (!rooms.has(roomId)) continue
      const userId = this.hub?.connectionUser(connectionId)
      if (userId === undefined) continue
      const actor = { connectionId, userId }
      // This node's own members are queued in the room at once, before any request that follows the takeover.
      const attached = this.owns(roomId)
        ? this.host.reattach(actor, roomId)
        : this.run(roomId, 'reattach', actor, [], undefined, async () => { await this.host.reattach(actor, roomId) })
      void attached
        .catch((err: unknown) => {
          if (err instanceof AppError && err.code === 'NOT_IN_ROOM') this.detachLocal(roomId, connectionId)
          else this.logger.warn({ err, roomId, connectionId }, 're-attach after a takeover failed; the grace covers a retry')
        })
    }
  }

  // ---- watching ----

  /**
   * Every WATCH_MS: rooms this node has members in whose owner is gone are taken over (one node wins); remote
   * connections of dead nodes count as closed at the rooms this node owns.
   */
  private async watch (): Promise<void> {
    if (this.stopping) return
    const rooms = new Set<string>()
    for (const set of this.localRooms.values()) for (const roomId of set) rooms.add(roomId)
    for (const roomId of rooms) {
      if (this.owns(roomId)) continue
      const owner = this.owners.get(roomId)
      if (owner !== undefined && this.presence.alive(owner)) continue
      const holder = await this.leases.holder(roomId).catch(() => undefined)
      if (holder === undefined) continue // Redis unreachable: nobody can prove ownership; wait
      if (holder !== null && this.presence.alive(holder)) {
        this.owners.set(roomId, holder)
        continue
      }
      await this.adopt(roomId).catch(() => false)
    }
    for (const [connectionId, { nodeId, userId }] of this.remote) {
      if (this.presence.alive(nodeId)) continue
      this.remote.delete(connectionId)
      this.host.disconnect({ connectionId, userId })
    }
  }

  /** Every SWEEP_MS: open rooms whose owner is gone, with nobody connected anywhere, are claimed too. */
  private async sweep (): Promise<void> {
    if (this.stopping) return
    const rooms = await this.store.listOwners()
    for (const { id, ownerNode } of rooms) {
      if (this.owns(id) || (ownerNode !== null && this.presence.alive(ownerNode))) continue
      const holder = await this.leases.holder(id).catch(() => undefined)
      if (holder !== null) continue
      await this.adopt(id).catch(() => false)
    }
  }
}

/** The node asked is not (or no longer) the room's owner, or did not answer: route again. */
class NotOwner extends Error {}
