import t from 'tap'
import { BatchWriter } from '../../src/db/batch-writer.js'

/** A write the test completes by hand, recording each batch it was given. */
function controlledWrite () {
  const batches: number[][] = []
  const pending: Array<{ resolve: () => void, reject: (err: unknown) => void }> = []
  const write = async (items: number[]): Promise<void> => {
    batches.push(items)
    await new Promise<void>((resolve, reject) => { pending.push({ resolve, reject }) })
  }
  return { batches, pending, write }
}

const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

t.test('a call with nothing in flight is written at once; calls meanwhile go together in the next batch', async (t) => {
  const { batches, pending, write } = controlledWrite()
  const writer = new BatchWriter<number>(write)
  const done: number[] = []
  const first = writer.submit(1).then(() => done.push(1))
  await tick()
  t.same(batches, [[1]], 'written without waiting for company')
  const rest = [2, 3, 4].map(async (n) => { await writer.submit(n); done.push(n) })
  await tick()
  t.same(batches, [[1]], 'the others wait for the write in flight')
  pending.shift()!.resolve()
  await first
  await tick()
  t.same(batches, [[1], [2, 3, 4]], 'then go in one batch, in order')
  t.same(done, [1], 'not committed before their batch is')
  pending.shift()!.resolve()
  await Promise.all(rest)
  t.same(done, [1, 2, 3, 4])
})

t.test('batches are capped at maxBatch', async (t) => {
  const batches: number[][] = []
  const writer = new BatchWriter<number>(async (items) => { batches.push(items) }, 2)
  await Promise.all([1, 2, 3, 4, 5].map(async (n) => { await writer.submit(n) }))
  t.same(batches, [[1], [2, 3], [4, 5]])
})

t.test('a batch refused for its data is retried one by one, so only the bad item fails', async (t) => {
  const batches: number[][] = []
  const writer = new BatchWriter<number>(async (items) => {
    batches.push(items)
    if (items.includes(13)) throw Object.assign(new Error('insert or update violates foreign key constraint'), { code: '23503' })
  })
  const blocker = writer.submit(0)
  const results = await Promise.allSettled([12, 13, 14].map(async (n) => { await writer.submit(n) }))
  await blocker
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'])
  t.same(batches, [[0], [12, 13, 14], [12], [13], [14]])
})

t.test('a drizzle-wrapped data error is recognised through its cause', async (t) => {
  const batches: number[][] = []
  const writer = new BatchWriter<number>(async (items) => {
    batches.push(items)
    if (items.includes(2)) throw new Error('Failed query', { cause: Object.assign(new Error('bad'), { code: '22P02' }) })
  })
  const blocker = writer.submit(0)
  const results = await Promise.allSettled([1, 2].map(async (n) => { await writer.submit(n) }))
  await blocker
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected'])
})

t.test('when the database is away the whole batch fails without retries, and the next call writes again', async (t) => {
  const batches: number[][] = []
  let away = true
  const writer = new BatchWriter<number>(async (items) => {
    batches.push(items)
    if (away) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
  })
  const blocker = writer.submit(0).catch(() => 'failed')
  const results = await Promise.allSettled([1, 2, 3].map(async (n) => { await writer.submit(n) }))
  t.equal(await blocker, 'failed')
  t.same(results.map((r) => r.status), ['rejected', 'rejected', 'rejected'])
  t.same(batches, [[0], [1, 2, 3]], 'no retries')
  away = false
  await writer.submit(4)
  t.same(batches.at(-1), [4], 'it recovers with the database')
})
