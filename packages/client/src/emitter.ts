/**
 * A small typed event emitter: one payload per event, `on` returns the function that unsubscribes.
 * Contract: listeners run synchronously, in subscription order; a listener that throws does not stop the
 * others or the client, and its error is rethrown on a microtask so the platform reports it.
 */
import { reportListenerError } from './host.js'

export type Listener<T> = (payload: T) => void

export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>()

  /** Calls `listener` on every `event` until the returned function is called. */
  on<K extends keyof Events> (event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(event, set)
    }
    set.add(listener as Listener<never>)
    return () => { this.off(event, listener) }
  }

  /** Calls `listener` on the next `event` only. */
  once<K extends keyof Events> (event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, (payload) => {
      off()
      listener(payload)
    })
    return off
  }

  off<K extends keyof Events> (event: K, listener: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener as Listener<never>)
  }

  protected emit<K extends keyof Events> (event: K, payload: Events[K]): void {
    const set = this.listeners.get(event)
    if (set === undefined) return
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(payload)
      } catch (err) {
        reportListenerError(err)
      }
    }
  }
}
