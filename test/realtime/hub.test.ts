/**
 * The hub's bookkeeping (src/realtime/hub.ts): channels of one member and of many, in subscription order,
 * through subscribe, unsubscribe, remove and dropChannel.
 */
import t from 'tap'
import { Hub, type HubConnection } from '../../src/realtime/hub.js'

function connection (id: string, got: string[]): HubConnection {
  return {
    id,
    userId: `user-${id}`,
    transport: { send: (frame: Buffer) => { got.push(`${id}:${frame.toString()}`) }, close: () => {}, terminate: () => {}, bufferedAmount: 0 }
  }
}

t.test('one member, then many in subscription order, then one again', async (t) => {
  const hub = new Hub()
  const got: string[] = []
  for (const id of ['a', 'b', 'c']) hub.add(connection(id, got))
  hub.subscribe('room', 'b')
  t.equal(hub.deliver('room', Buffer.from('1')), 1)
  t.equal(hub.deliver('room', Buffer.from('x'), 'b'), 0, 'the only member excepted: nobody')
  hub.subscribe('room', 'b')
  t.equal(hub.subscriberCount('room'), 1, 'subscribing twice counts once')
  hub.subscribe('room', 'a')
  hub.subscribe('room', 'c')
  t.equal(hub.deliver('room', Buffer.from('2')), 3)
  t.equal(hub.deliver('room', Buffer.from('3'), 'a'), 2)
  hub.unsubscribe('room', 'b')
  hub.unsubscribe('room', 'c')
  t.equal(hub.subscriberCount('room'), 1)
  t.equal(hub.deliver('room', Buffer.from('4')), 1)
  hub.unsubscribe('room', 'a')
  t.equal(hub.subscriberCount('room'), 0)
  t.equal(hub.deliver('room', Buffer.from('5')), 0)
  t.same(got, ['b:1', 'b:2', 'a:2', 'c:2', 'b:3', 'c:3', 'a:4'])
})

t.test('remove and dropChannel forget every subscription', async (t) => {
  const hub = new Hub()
  const got: string[] = []
  for (const id of ['a', 'b']) hub.add(connection(id, got))
  hub.subscribe('user:a', 'a')
  hub.subscribe('room-1', 'a')
  hub.subscribe('room-2', 'a')
  hub.subscribe('room-1', 'b')
  hub.remove('a')
  t.equal(hub.subscriberCount('user:a'), 0)
  t.equal(hub.subscriberCount('room-1'), 1)
  t.equal(hub.subscriberCount('room-2'), 0)
  t.equal(hub.connectionCount, 1)
  t.equal(hub.sendTo('a', Buffer.from('gone')), false)
  hub.subscribe('room-3', 'b')
  hub.dropChannel('room-1')
  t.equal(hub.subscriberCount('room-1'), 0)
  hub.unsubscribe('room-3', 'b')
  hub.subscribe('room-1', 'b')
  t.equal(hub.deliver('room-1', Buffer.from('back')), 1, 'a dropped channel can be joined again')
  hub.subscribe('room-9', 'nobody')
  t.equal(hub.subscriberCount('room-9'), 0, 'an unknown connection subscribes to nothing')
  t.same(got, ['b:back'])
})
