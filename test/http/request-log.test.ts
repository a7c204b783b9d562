/**
 * Tokens never reach the log: the app's own logger (pino, at info) writes to a stream the test reads, and no
 * line may contain the token, however the `token` parameter is spelled. The WebSocket case is end to end: the
 * percent-encoded spelling really authenticates, and its request line is redacted all the same.
 */
import fc from 'fast-check'
import t from 'tap'
import { redactCredentials, redactCredentialsInText, REDACTED, requestLogSerializer } from '../../src/http/request-log.js'
import { createTestApp } from '../helpers/app.js'
import { signHs256, SECRET } from '../helpers/tokens.js'
import { TestClient } from '../helpers/ws-client.js'

t.test('redactCredentials: what counts as the token parameter', async (t) => {
  const cases: Array<[string, string]> = [
    ['/ws?token=eyJ.abc.def', `/ws?token=${REDACTED}`],
    ['/ws?%74oken=eyJ.abc.def', `/ws?%74oken=${REDACTED}`],
    ['/ws?t%6F%6Bk%65n=x&userId=alice', '/ws?t%6F%6Bk%65n=x&userId=alice'],
    ['/ws?t%6Fk%65n=x&userId=alice', `/ws?t%6Fk%65n=${REDACTED}&userId=alice`],
    ['/ws?%54%4F%4B%45%4E=x', `/ws?%54%4F%4B%45%4E=${REDACTED}`],
    ['/ws?TOKEN=a&token=b', `/ws?TOKEN=${REDACTED}&token=${REDACTED}`],
    ['/ws?+token+=a', `/ws?+token+=${REDACTED}`],
    ['/ws?room=1&token=eyJ.abc.def&x=2', `/ws?room=1&token=${REDACTED}&x=2`],
    // The router's value runs to the next `&`: a `;` or `#` inside it is part of the token.
    ['/ws?token=abc;def#ghi&x=2', `/ws?token=${REDACTED}&x=2`],
    // The router also ends the path at `#`; and a `;`-separated name is redacted in case a parser reads it.
    ['/ws#token=abc', `/ws#token=${REDACTED}`],
    ['/ws?a=1;token=abc&b=2', `/ws?a=1;token=${REDACTED}&b=2`],
    ['/ws?token=a=b=c', `/ws?token=${REDACTED}`],
    // Kept: other names, a name without a value, no query, broken escapes that decode to nothing like it.
    ['/rooms?mytoken=keep&tokens=keep&token_id=keep', '/rooms?mytoken=keep&tokens=keep&token_id=keep'],
    ['/ws?token', '/ws?token'],
    ['/ws', '/ws'],
    ['/ws?%zztoken=keep&%E0%A4%A=keep', '/ws?%zztoken=keep&%E0%A4%A=keep']
  ]
  for (const [url, expected] of cases) t.equal(redactCredentials(url), expected, url)
})

t.test('redactCredentials: any spelling of the name that decodes to token hides the value', async (t) => {
  const secret = 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.s1gn4tur3'
  // Each letter of "token" in either case, as itself or percent-encoded with either hex case.
  const letter = (c: string) => fc.tuple(fc.boolean(), fc.boolean(), fc.boolean()).map(([upper, encode, upperHex]) => {
    const ch = upper ? c.toUpperCase() : c
    if (!encode) return ch
    const hex = ch.charCodeAt(0).toString(16)
    return `%${upperHex ? hex.toUpperCase() : hex}`
  })
  const name = fc.tuple(...[...'token'].map(letter), fc.constantFrom('', '+', '%20')).map((parts) => parts.join(''))
  const before = fc.constantFrom('', 'userId=alice&', 'a=1;', 'x&')
  const after = fc.constantFrom('', '&room=1', '&')
  fc.assert(fc.property(name, before, after, fc.constantFrom('?', '#'), (n, b, a, delimiter) => {
    const logged = redactCredentials(`/ws${delimiter}${b}${n}=${secret}${a}`)
    return !logged.includes(secret) && logged.includes(REDACTED)
  }), { numRuns: 300 })
  t.pass('300 spellings redacted')
  const logged = requestLogSerializer({ method: 'GET', url: '/ws?%74oken=secret', host: 'h', ip: '127.0.0.1', socket: { remotePort: 1 } } as never)
  t.same(logged, { method: 'GET', url: `/ws?%74oken=${REDACTED}`, host: 'h', remoteAddress: '127.0.0.1', remotePort: 1 })
})

t.test('redactCredentialsInText: URLs inside messages', async (t) => {
  t.equal(redactCredentialsInText('Reply was already sent, did you forget to "return reply" in the "/ws?%74oken=eyJ.a.b&x=1" (GET) route?'),
    `Reply was already sent, did you forget to "return reply" in the "/ws?%74oken=${REDACTED}&x=1" (GET) route?`)
  t.equal(redactCredentialsInText('GET /ws?TOKEN=abc and /ws#token=def, done'), `GET /ws?TOKEN=${REDACTED} and /ws#token=${REDACTED}, done`)
  t.equal(redactCredentialsInText('querystring/limit must be <= 100; a=b'), 'querystring/limit must be <= 100; a=b', 'other text is untouched')
})

t.test('the request log of a real app never carries the token', async (t) => {
  const lines: string[] = []
  const { app, wsUrl } = await createTestApp(t, {
    listen: true,
    env: { LOG_LEVEL: 'info', AUTH_JWT_SECRET: SECRET },
    deps: { logger: undefined, logStream: { write: (line) => { lines.push(line) } } }
  })
  const token = await signHs256('alice')
  const logged = (): Array<{ msg?: string, req?: { url?: string } }> => lines.map((l) => JSON.parse(l) as { msg?: string, req?: { url?: string } })

  t.test('?%74oken= authenticates the WebSocket, and its URL is logged redacted', async (t) => {
    const client = await TestClient.connect(`${wsUrl}?%74oken=${token}`, {}, t)
    t.equal(client.connected.data.userId, 'alice', 'the percent-encoded name is the token parameter to identity')
    const urls = logged().filter((l) => l.msg === 'incoming request').map((l) => l.req?.url)
    t.ok(urls.includes(`/ws?%74oken=${REDACTED}`), 'the upgrade was logged, redacted')
  })

  t.test('every spelling, on any route, is redacted in the request log', async (t) => {
    for (const query of [`token=${token}`, `%74oken=${token}`, `TOKEN=${token}`, `t%6Fk%65n=${token}&x=1`]) {
      await app.inject({ method: 'GET', url: `/rooms?${query}` })
      await app.inject({ method: 'GET', url: `/healthz?${query}` })
    }
    const urls = logged().filter((l) => l.msg === 'incoming request').map((l) => l.req?.url ?? '')
    t.ok(urls.length >= 8, `${urls.length} request lines`)
    t.ok(urls.every((u) => u.includes(REDACTED)), 'each carries the redaction mark')
  })

  t.test('a message that names a URL is redacted too', async (t) => {
    app.log.warn(`Reply was already sent, did you forget to "return reply" in the "/ws?%74oken=${token}" (GET) route?`)
    const last = logged().at(-1)
    t.equal(last?.msg, `Reply was already sent, did you forget to "return reply" in the "/ws?%74oken=${REDACTED}" (GET) route?`)
  })

  t.test('no log line at all contains the token', async (t) => {
    t.ok(lines.length > 0, 'the app logged')
    const leaks = lines.filter((l) => l.includes(token) || l.includes(token.split('.')[2] as string))
    t.same(leaks, [])
  })
})
