import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { TestClient } from '../helpers/ws-client.js'

// One database for the file: every app below shares it (opening one costs seconds).
const database = await createTestDatabase(t)

t.test('the WebSocket envelope', async (t) => {
  const { wsUrl, config } = await createTestApp(t, { listen: true, database })

  t.test('says hello with the user, a connection id, the server time, version and heartbeat', async (t) => {
    const before = Date.now()
    const alice = await TestClient.connect(wsUrl, { userId: 'alice' }, t)
    t.equal(alice.connected.data.userId, 'alice')
    t.match(alice.connected.data.connectionId, /^[0-9a-f-]{36}$/)
    t.ok(alice.connected.data.serverTime >= before && alice.connected.data.serverTime <= Date.now())
    t.equal(alice.connected.data.protocolVersion, 1)
    t.equal(alice.connected.data.heartbeatMs, config.heartbeatMs)
  })

  t.test('two connections of one user get different connection ids', async (t) => {
    const tab1 = await TestClient.connect(wsUrl, { userId: 'alice' }, t)
    const tab2 = await TestClient.connect(wsUrl, { userId: 'alice' }, t)
    t.not(tab1.connected.data.connectionId, tab2.connected.data.connectionId)
  })

  t.test('ping answers pong with the client time echoed and the server time', async (t) => {
    const alice = await TestClient.connect(wsUrl, { userId: 'alice' }, t)
    const pong = await alice.request('ping', { clientTime: 12345 })
    t.equal(pong.type, 'pong')
    t.equal(pong.data.clientTime, 12345)
    t.type(pong.data.serverTime, 'number')
    const bare = await alice.request('ping', {})
    t.equal(bare.data.clientTime, null)
  })

  t.test('a request without data is taken as empty data', async (t) => {
    const alice = await TestClient.connect(wsUrl, { userId: 'alice' }, t)
    alice.sendRaw(JSON.stringify({ type: 'ping', id: 'p1' }))
    const pong = await alice.next((e) => e.replyTo === 'p1')
    t.equal(pong.type, 'pong')
  })

  t.test('a request without id is still answered, without replyTo', async (t) => {
    const alice = await TestClient.connect(wsUrl, { userId: 'alice' }, t)
    alice.send('ping', { clientTime: 1 })
    const pong = await alice.nextOfType('pong')
    t.notOk('replyTo' in pong)
  })

  t.test('malformed frames get an error and the connection stays open', async (t) => {
    const bob = await TestClient.connect(wsUrl, { userId: 'bob' }, t)
    const cases: Array<[string, string, string | undefined]> = [
      ['not json', 'INVALID_MESSAGE', undefined],
      ['[1,2,3]', 'INVALID_MESSAGE', undefined],
      ['"a string"', 'INVALID_MESSAGE', undefined],
      ['null', 'INVALID_MESSAGE', undefined],
      ['{}', 'INVALID_MESSAGE', undefined],
      ['{"type": 5, "id": "m1"}', 'INVALID_MESSAGE', 'm1'],
      ['{"type": "ping", "id": "m2", "data": [1]}', 'INVALID_MESSAGE', 'm2'],
      ['{"type": "ping", "id": "m3", "data": "x"}', 'INVALID_MESSAGE', 'm3'],
      [`{"type": "ping", "id": "${'x'.repeat(65)}"}`, 'INVALID_MESSAGE', undefined],
      ['{"type": "fly", "id": "m4", "data": {}}', 'UNKNOWN_EVENT', 'm4'],
      ['{"type": "legacy_sync", "id": "m5", "data": {}}', 'UNKNOWN_EVENT', 'm5'],
      ['{"type": "join_room", "id": "m6", "data": {}}', 'VALIDATION_FAILED', 'm6'],
      ['{"type": "join_room", "id": "m7", "data": {"roomId": 7}}', 'VALIDATION_FAILED', 'm7'],
      ['{"type": "create_room", "id": "m8", "data": {"roomName": ""}}', 'VALIDATION_FAILED', 'm8'],
      ['{"type": "join_room", "id": "m9", "data": {"roomId": "not-a-uuid"}}', 'INVALID_ROOM_ID', 'm9']
    ]
    for (const [frame, code, replyTo] of cases) {
      const before = bob.events.length
      bob.sendRaw(frame)
      const error = await bob.next((e) => e.type === 'error' && bob.events.indexOf(e) >= before)
      t.equal(error.data.code, code, `${frame.slice(0, 40)} -> ${code}`)
      t.equal(error.replyTo, replyTo, `${frame.slice(0, 40)} replyTo`)
      t.same(Object.keys(error.data).sort(), ['code', 'error', 'message'])
    }
    const pong = await bob.request('ping', {})
    t.equal(pong.type, 'pong', 'still connected')
  })

  t.test('a binary frame closes the connection with 1003', async (t) => {
    const carol = await TestClient.connect(wsUrl, { userId: 'carol' }, t)
    carol.sendRaw(Buffer.from('{"type":"ping"}'), { binary: true })
    const closed = await carol.closed
    t.equal(closed.code, 1003)
  })

  t.test('a frame over 64 KiB closes the connection with 1009', async (t) => {
    const dave = await TestClient.connect(wsUrl, { userId: 'dave' }, t)
    dave.send('chat', { roomId: 'x', message: 'y'.repeat(64 * 1024) })
    const closed = await dave.closed
    t.equal(closed.code, 1009)
  })

  t.test('a frame just under 64 KiB is answered normally', async (t) => {
    const erin = await TestClient.connect(wsUrl, { userId: 'erin' }, t)
    const reply = await erin.request('ping', { clientTime: 1, padding: 'p'.repeat(60 * 1024) })
    t.equal(reply.type, 'pong')
  })

  t.test('a connection without a user id is accepted and closed with 4401', async (t) => {
    const anonymous = TestClient.open(wsUrl)
    const closed = await anonymous.closed
    t.equal(closed.code, 4401)
    t.match(closed.reason, /user id/)
  })

  t.test('a user id outside the grammar is closed with 4401', async (t) => {
    const bad = TestClient.open(wsUrl, { userId: 'has space' })
    t.equal((await bad.closed).code, 4401)
  })

  t.test('the x-user-id header works for non-browser clients', async (t) => {
    const client = await TestClient.connect(wsUrl, { headers: { 'x-user-id': 'script' } }, t)
    t.equal(client.connected.data.userId, 'script')
  })
})

t.test('a silent client is terminated after a missed heartbeat', async (t) => {
  // A second between pings: long enough that the answering client's pongs are never late on a busy machine.
  const { wsUrl } = await createTestApp(t, { listen: true, database, env: { HEARTBEAT_MS: '1000' } })
  const { default: WebSocket } = await import('ws')
  const socket = new WebSocket(`${wsUrl}?userId=sleepy`, { autoPong: false })
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => { resolve(code) }))
  const answering = await TestClient.connect(wsUrl, { userId: 'awake' }, t)
  const code = await closed
  t.equal(code, 1006, 'terminated without a closing handshake')
  t.equal((await answering.request('ping', {})).type, 'pong', 'a client answering pings stays')
})

t.test('closing the app closes every socket with 1012', async (t) => {
  const { wsUrl, app } = await createTestApp(t, { listen: true, database })
  const a = await TestClient.connect(wsUrl, { userId: 'alice' }, t)
  const b = await TestClient.connect(wsUrl, { userId: 'bob' }, t)
  await app.close()
  t.equal((await a.closed).code, 1012)
  t.equal((await b.closed).code, 1012)
})

t.test('the AsyncAPI document is valid and lists every request and event', async (t) => {
  const { app } = await createTestApp(t, { database })
  const response = await app.inject({ method: 'GET', url: '/asyncapi.json' })
  t.equal(response.statusCode, 200)
  const document = response.json()
  const { Parser } = await import('@asyncapi/parser')
  const parser = new Parser()
  const { diagnostics } = await parser.parse(document)
  const errors = diagnostics.filter((d) => d.severity === 0)
  t.same(errors.map((d) => `${d.path.join('.')}: ${d.message}`), [], 'no errors from @asyncapi/parser')
  for (const type of ['create_room', 'join_room', 'leave_room', 'host_sync', 'transfer_host', 'chat', 'ping', 'auth', 'playback_report', 'sync']) {
    t.ok(document.components.messages[`request_${type}`], `request ${type}`)
  }
  for (const type of ['connected', 'room_created', 'room_joined', 'room_left', 'participant_joined', 'participant_left', 'sync', 'ack', 'host_changed', 'chat', 'pong', 'room_closed', 'viewer_status', 'warning', 'error']) {
    t.ok(document.components.messages[`event_${type}`], `event ${type}`)
  }
  t.ok(document.components.schemas.Room)
  t.ok(document.components.schemas.SyncData)
  t.ok(document.components.schemas.ErrorResponse)
})
