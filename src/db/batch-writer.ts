/**
 * Group commit for one kind of write: calls that arrive while a write is in flight are written together,
 * in one statement, as soon as it is done.
 *
 * Contract: `submit(item)` resolves with the item's result once its batch is committed, and rejects if it was
 * not; `write` returns one result per item, in order. A call that finds
 * nothing in flight is written at once (no timer, no added wait); under load, every call waits for at most
 * the write in flight and then its own batch. A batch that the database refuses for its data (a constraint
 * or data error, SQLSTATE class 22 or 23) is retried one item at a time, so that one bad item fails alone;
 * any other failure (the database is away) fails the whole batch without retrying.
 */
export class BatchWriter<T, R = void> {
  private waiting: Array<{ item: T, resolve: (result: R) => void, reject: (err: unknown) => void }> = []
  private writing = false

  constructor (
    /** Writes the items in one statement; returns one result per item, in order (nothing when R is void). */
    private readonly write: (items: T[]) => Promise<R[] | void>,
    private readonly maxBatch = 200
  ) {}

  async submit (item: T): Promise<R> {
    return await new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject })
      if (!this.writing) void this.flush()
    })
  }

  private async flush (): Promise<void> {
    this.writing = true
    while (this.waiting.length > 0) {
      const batch = this.waiting.slice(0, this.maxBatch)
      this.waiting = this.waiting.slice(batch.length)
      try {
        const results = await this.write(batch.map((call) => call.item))
        batch.forEach((call, i) => { call.resolve(results?.[i] as R) })
      } catch (err) {
        if (batch.length === 1 || !isDataError(err)) {
          for (const call of batch) call.reject(err)
          continue
        }
        await Promise.all(batch.map(async (call) => {
          try {
            const results = await this.write([call.item])
            call.resolve(results?.[0] as R)
          } catch (single) {
            call.reject(single)
          }
        }))
      }
    }
    this.writing = false
  }
}

/** A statement error about the data (SQLSTATE class 22 or 23), from pg or PGlite, possibly wrapped by drizzle. */
function isDataError (err: unknown): boolean {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code)) return true
  }
  return false
}
