/**
 * Runs tasks one at a time per key, in the order they were queued; different keys run concurrently.
 *
 * Contract: a task starts only after every earlier task of its key has settled (resolved or thrown), so
 * awaiting a database write inside a task cannot let a later task of the same key overtake it.
 * A key costs memory only while it has queued work.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>()

  run<T> (key: string, task: () => Promise<T> | T): Promise<T> {
    const previous = this.tails.get(key)
    const result = previous === undefined ? Promise.resolve().then(task) : previous.then(task)
    const tail = result.then(() => {}, () => {})
    this.tails.set(key, tail)
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    })
    return result
  }

  /** Resolves when every task queued so far, under any key, has settled. */
  async drain (): Promise<void> {
    while (this.tails.size > 0) await Promise.all(this.tails.values())
  }

  get size (): number {
    return this.tails.size
  }
}
