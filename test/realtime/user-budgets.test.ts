import t from 'tap'
import { BucketTable, TokenBucket } from '../../src/realtime/rate-limit.js'
import { MemoryUserBudgets, addressKey, userKey } from '../../src/realtime/user-budgets.js'

const limits = {
  wsMessagesPerSecond: 10,
  wsMessageBurst: 20,
  wsFloodLimit: 5,
  wsMembershipWritesPerSecond: 2,
  wsMembershipWriteBurst: 4,
  wsConnectsPerUserPerMinute: 6,
  wsConnectsPerAddressPerMinute: 60
}

t.test('a user\'s message budget: burst, refill at the rate, flooding after WS_FLOOD_LIMIT refusals', async (t) => {
  const budgets = new MemoryUserBudgets(limits)
  const alice = userKey('alice')
  const verdicts = Array.from({ length: 26 }, () => budgets.message(alice, 0))
  t.same(verdicts.slice(0, 20), Array(20).fill('ok'), 'the burst')
  t.same(verdicts.slice(20, 25), Array(5).fill('refused'), 'then refusals up to the flood limit')
  t.equal(verdicts[25], 'flooding', 'one more is flooding')
  t.equal(budgets.message(userKey('bob'), 0), 'ok', 'another user is not affected')
  t.equal(budgets.message(alice, 100), 'ok', 'one token back after 100 ms at 10 a second')
})

t.test('idle users cost nothing: a key is forgotten once its bucket is full again', async (t) => {
  const budgets = new MemoryUserBudgets(limits)
  for (let i = 0; i < 1000; i++) budgets.message(userKey(`u${i}`), 0)
  t.equal(budgets.held.messages, 1000, 'each active user holds a bucket')
  // 20 tokens at 10 a second: full again 100 ms after one message, and a sweep runs every 10 s at most.
  budgets.message(userKey('late'), 10_000)
  t.equal(budgets.held.messages, 1, 'after the sweep only the user who just sent remains')

  for (let i = 0; i < 30; i++) budgets.message(userKey('flooder'), 20_000)
  t.equal(budgets.held.floods, 1, 'a user who was refused holds a flood window')
  budgets.message(userKey('late'), 40_000)
  t.same(budgets.held, { messages: 1, memberships: 0, connects: 0, floods: 0 }, 'forgotten once the window passed and the bucket refilled')
})

t.test('a forgotten key comes back with what it had: a full bucket', async (t) => {
  const table = new BucketTable(1, 3, 1000)
  t.same([table.take('k', 0), table.take('k', 0), table.take('k', 0), table.take('k', 0)], [true, true, true, false])
  t.equal(table.take('k', 500), false, 'half a token is not a token')
  t.equal(table.take('other', 5000), true, 'the sweep forgets k, which is full again')
  t.equal(table.size, 1)
  t.same([table.take('k', 5000), table.take('k', 5000), table.take('k', 5000), table.take('k', 5000)], [true, true, true, false], 'exactly a burst, never more')
})

t.test('membership writes and connection attempts have budgets of their own, per user and per address', async (t) => {
  const budgets = new MemoryUserBudgets(limits)
  const alice = userKey('alice')
  t.same(Array.from({ length: 5 }, () => budgets.membershipWrite(alice, 0)), [true, true, true, true, false], 'WS_MEMBERSHIP_WRITE_BURST')
  t.equal(budgets.message(alice, 0), 'ok', 'messages are not charged by membership writes')
  t.equal(budgets.membershipWrite(alice, 500), true, '2 a second')
  t.same(Array.from({ length: 7 }, () => budgets.connect(alice, 0)), [true, true, true, true, true, true, false], '6 attempts a minute for a user')
  t.equal(budgets.connect(alice, 10_000), true, 'one more every 10 s')
  const nat = addressKey('203.0.113.7')
  t.equal(Array.from({ length: 61 }, () => budgets.connect(nat, 0)).filter(Boolean).length, 60, '60 a minute for an address')
})

t.test('a clock that steps back never mints tokens', async (t) => {
  const bucket = new TokenBucket(1, 1, 10_000)
  t.equal(bucket.take(10_000), true)
  t.equal(bucket.take(5_000), false, 'back in time')
  t.equal(bucket.take(10_500), false, 'time lost going back is not counted twice')
  t.equal(bucket.take(11_000), true)
})

t.test('sweep(now) forgets every key that is as good as new, without waiting for the next charge', async (t) => {
  const budgets = new MemoryUserBudgets(limits)
  for (let i = 0; i < 100; i++) {
    budgets.connect(userKey(`u${i}`), 0)
    budgets.membershipWrite(userKey(`u${i}`), 0)
    budgets.message(userKey(`u${i}`), 0)
  }
  budgets.connect(addressKey('10.0.0.1'), 0)
  for (let i = 0; i < 21; i++) budgets.message(userKey('flooder'), 0)
  budgets.sweep(1000)
  t.same(budgets.held, { messages: 1, memberships: 0, connects: 100, floods: 1 }, 'after 1 s: the users\' connect buckets (6 a minute) and the flooder\'s message bucket are not full yet, its flood window is open; the address (60 a minute) is full again')
  budgets.sweep(60_000)
  t.same(budgets.held, { messages: 0, memberships: 0, connects: 0, floods: 0 }, 'all forgotten once refilled and the window passed')
  t.equal(budgets.connect(userKey('u1'), 60_000), true, 'a forgotten key starts full')
})
