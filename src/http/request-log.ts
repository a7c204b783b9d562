/**
 * What the request log may say about a URL, and the logger options of the app.
 *
 * Contract: no URL reaches the log with a credential in it. A query parameter is the token when its name,
 * decoded the way any of our parsers decodes it (Fastify's router: `+` as space, then percent-decoding, the raw
 * name when that fails; WHATWG URLSearchParams: `+` as space, lenient percent-decoding), is `token` in any
 * letter case, with or without surrounding white space. That covers every spelling identity accepts
 * (`?token=`, `?%74oken=`, `?t%6Fken=`) and more (`?TOKEN=`, which identity ignores), so redaction never
 * depends on which parser reads the query. Its value, up to the next `&` (where the router's value ends too),
 * becomes `[redacted]`; every other byte of the URL is kept as sent.
 *
 * Names start after the query delimiter (the first `?` or `#`, as the router splits) and after every `&`,
 * and also after `;`, `?` and `#` inside the query: no parser reads a parameter there today, but one
 * configured to (find-my-way's useSemicolonDelimiter) must not turn a logged URL into a leak.
 *
 * Besides `req.url`, every string argument of a log call (a message such as Fastify's "Reply was already sent
 * … in the "<url>" route") has its token parameters redacted the same way, their values ending at white
 * space, a quote, a comma or a parenthesis as well (no token contains them). Error objects are serialized as
 * they are: the one that names a URL (FST_ERR_REP_ALREADY_SENT) is logged only after a route's programming error.
 */
import type { FastifyRequest, FastifyServerOptions } from 'fastify'
import type { Config } from '../config.js'

const CREDENTIAL_PARAMS: ReadonlySet<string> = new Set(['token'])
export const REDACTED = '[redacted]'

export function redactCredentials (url: string): string {
  const start = queryStart(url)
  if (start === -1) return url
  const pieces = url.slice(start + 1).split('&').map(redactPiece)
  return `${url.slice(0, start + 1)}${pieces.join('&')}`
}

/** Where the router ends the path: the first `?` or `#` after the leading character. */
function queryStart (url: string): number {
  const question = url.indexOf('?', 1)
  const hash = url.indexOf('#', 1)
  if (question === -1) return hash
  if (hash === -1) return question
  return Math.min(question, hash)
}

/** One `&`-separated piece: `name=value`, possibly with `;`, `?` or `#` ahead of a further name. */
function redactPiece (piece: string): string {
  const starts = [0]
  for (let i = 0; i < piece.length; i++) if (';?#'.includes(piece[i] as string)) starts.push(i + 1)
  for (const start of starts) {
    const equals = piece.indexOf('=', start)
    if (equals === -1) return piece
    if (isCredentialName(piece.slice(start, equals))) return `${piece.slice(0, equals + 1)}${REDACTED}`
  }
  return piece
}

function isCredentialName (raw: string): boolean {
  const plus = raw.replace(/\+/g, ' ')
  const candidates = [raw, plus, strictDecode(plus), new URLSearchParams(`${raw}=`).keys().next().value ?? '']
  return candidates.some((name) => CREDENTIAL_PARAMS.has(name.trim().toLowerCase()))
}

function strictDecode (text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** Credential parameters inside free text: `?`, `#`, `&` or `;`, a name, `=`, a value. */
const PARAMETER_IN_TEXT = /([?#&;])([^=&?#;\s"'<>]*)=([^&\s"'<>,)]*)/g

export function redactCredentialsInText (text: string): string {
  return text.replace(PARAMETER_IN_TEXT, (match, delimiter: string, name: string) =>
    isCredentialName(name) ? `${delimiter}${name}=${REDACTED}` : match)
}

/** Fastify's default `req` log serializer, with credentials in the query string redacted. */
export function requestLogSerializer (request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: redactCredentials(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}

/** Where log lines go: pino writes each line, newline-terminated, with one call. */
export interface LogDestination { write (line: string): void }

/** The app's own logger: JSON lines at LOG_LEVEL, to `stream` (stdout when undefined), URLs redacted. */
export function loggerOptions (config: Pick<Config, 'logLevel'>, stream?: LogDestination): NonNullable<FastifyServerOptions['logger']> {
  return {
    level: config.logLevel,
    serializers: { req: requestLogSerializer },
    hooks: {
      logMethod (args, method) {
        const redacted = args.map((arg: unknown) => typeof arg === 'string' ? redactCredentialsInText(arg) : arg) as typeof args
        method.apply(this, redacted)
      }
    },
    ...(stream === undefined ? {} : { stream })
  }
}
