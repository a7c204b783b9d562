import t from 'tap'
import { extrapolate, LiveRoom } from '../../src/rooms/live-room.js'
import { KeyedQueue } from '../../src/rooms/keyed-queue.js'

const record = (participants: string[]) => ({
  id: '3f0c0000-0000-4000-8000-000000000000',
  name: 'Friday',
  hostId: participants[0] ?? 'alice',
  isActive: true,
  createdAt: new Date(0),
  closedAt: null,
  emptySince: null,
  currentVideo: null,
  epoch: 'e1',
  lastSeq: 0,
  participants: participants.map((userId, i) => ({ userId, joinedAt: new Date(i * 1000) }))
})

t.test('extrapolate moves a playing video on at its rate and stamps now', async (t) => {
  const playing = { videoUrl: 'https://example.com/movie.mp4', currentTime: 10, isPlaying: true, playbackRate: 1.5, updatedAt: 1000 }
  t.same(extrapolate('r', playing, 5000), { roomId: 'r', videoUrl: 'https://example.com/movie.mp4', currentTime: 16, isPlaying: true, playbackRate: 1.5, updatedAt: 5000 })
  t.same(extrapolate('r', playing, 500).currentTime, 10, 'a clock behind the stamp never moves time backwards')
  const paused = { ...playing, isPlaying: false }
  t.same(extrapolate('r', paused, 9000), { roomId: 'r', videoUrl: 'https://example.com/movie.mp4', currentTime: 10, isPlaying: false, playbackRate: 1.5, updatedAt: 1000 })
})

t.test('the successor is the longest-present participant, connected ones first', async (t) => {
  const room = new LiveRoom(record(['host', 'early', 'middle', 'late']))
  t.equal(room.successorOf('host'), 'early', 'nobody connected: the longest-present')
  room.participants.get('middle')!.connections.add('c1')
  room.participants.get('late')!.connections.add('c2')
  t.equal(room.successorOf('host'), 'middle', 'the longest-present connected one beats one inside the grace')
  t.equal(room.successorOf('middle'), 'late')
  const alone = new LiveRoom(record(['host']))
  t.equal(alone.successorOf('host'), undefined, 'nobody left')
})

t.test('roles and connection membership', async (t) => {
  const room = new LiveRoom(record(['host', 'viewer']))
  t.equal(room.roleOf('host'), 'host')
  t.equal(room.roleOf('viewer'), 'viewer')
  t.notOk(room.hasConnection('viewer', 'c'), 'a participant without this connection is not a member through it')
  room.participants.get('viewer')!.connections.add('c')
  t.ok(room.hasConnection('viewer', 'c'))
  t.same(room.toRoom(0).participants, ['host', 'viewer'], 'join order')
})

t.test('the keyed queue runs one task at a time per key, in order, and other keys meanwhile', async (t) => {
  const queue = new KeyedQueue()
  const log: string[] = []
  let release!: () => void
  const blocker = new Promise<void>((resolve) => { release = resolve })
  const first = queue.run('a', async () => { log.push('a1 start'); await blocker; log.push('a1 end') })
  const second = queue.run('a', () => { log.push('a2') })
  const other = queue.run('b', () => { log.push('b1') })
  await other
  t.same(log, ['a1 start', 'b1'], 'b does not wait for a')
  release()
  await Promise.all([first, second])
  t.same(log, ['a1 start', 'b1', 'a1 end', 'a2'], 'a2 waits for a1 to finish')
  const failing = queue.run('a', () => { throw new Error('boom') })
  await t.rejects(failing, /boom/)
  t.equal(await queue.run('a', () => 42), 42, 'a failed task does not block the key')
  await queue.drain()
  t.equal(queue.size, 0, 'keys cost nothing once idle')
})
