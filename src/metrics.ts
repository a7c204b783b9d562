/**
 * Prometheus metrics of one app instance. Each app has its own registry so that several apps (tests) can
 * live in one process; `/metrics` serves it.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export type Metrics = ReturnType<typeof createMetrics>

/** Live values read when /metrics is scraped. */
export interface MetricSources {
  openRooms: () => number
  participants: () => number
  /** Cluster mode: rooms whose lease this node holds. */
  ownedRooms?: () => number
  /** Cluster mode: stream gaps filled from the history. */
  gapsFilled?: () => number
}

export function createMetrics (sources: MetricSources) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return {
    registry,
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'REST request durations by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry]
    }),
    wsConnections: new Gauge({ name: 'ws_connections', help: 'Open WebSocket connections', registers: [registry] }),
    rooms: new Gauge({
      name: 'rooms_open',
      help: 'Open rooms held in memory',
      registers: [registry],
      collect () { this.set(sources.openRooms()) }
    }),
    participants: new Gauge({
      name: 'room_participants',
      help: 'Participants of open rooms (connected or within the grace)',
      registers: [registry],
      collect () { this.set(sources.participants()) }
    }),
    messagesIn: new Counter({ name: 'ws_messages_in_total', help: 'WebSocket requests received, by type', labelNames: ['type'] as const, registers: [registry] }),
    messagesOut: new Counter({ name: 'ws_messages_out_total', help: 'WebSocket events delivered, by type', labelNames: ['type'] as const, registers: [registry] }),
    errors: new Counter({ name: 'errors_total', help: 'Error answers, by code and transport', labelNames: ['code', 'transport'] as const, registers: [registry] }),
    refusals: new Counter({ name: 'permission_refusals_total', help: 'Requests refused for permission, by event and code', labelNames: ['event', 'code'] as const, registers: [registry] }),
    slowConsumers: new Counter({ name: 'ws_slow_consumers_terminated_total', help: 'Sockets terminated for falling too far behind', registers: [registry] }),
    legacy: new Counter({ name: 'legacy_sync_messages_total', help: 'Uses of the deprecated 1-on-1 sync channels, by type', labelNames: ['type'] as const, registers: [registry] }),
    roomsOwned: new Gauge({
      name: 'cluster_rooms_owned',
      help: 'Cluster mode: rooms this node owns (holds the lease of)',
      registers: [registry],
      collect () { this.set(sources.ownedRooms?.() ?? 0) }
    }),
    takeovers: new Counter({ name: 'cluster_takeovers_total', help: 'Cluster mode: rooms this node took over (lease won, fenced claim made)', registers: [registry] }),
    forwarded: new Histogram({
      name: 'cluster_forwarded_request_duration_seconds',
      help: 'Cluster mode: requests forwarded to a room\'s owner, by operation and outcome',
      labelNames: ['op', 'outcome'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry]
    }),
    gapsFilled: new Gauge({
      name: 'cluster_stream_gaps_filled',
      help: 'Cluster mode: stream gaps this node filled from the history since it started',
      registers: [registry],
      collect () { this.set(sources.gapsFilled?.() ?? 0) }
    }),
    fanoutSeconds: new Histogram({
      name: 'ws_fanout_duration_seconds',
      help: 'Time to write one room event to every local member',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers: [registry]
    })
  }
}
