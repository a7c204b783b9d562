/**
 * Which video URLs the server stores and relays (protocol 1.1, "Validation tightened"): absolute URLs whose
 * scheme is in ALLOWED_VIDEO_SCHEMES (default http, https). A `javascript:`, `data:` or `file:` URL would be
 * rendered by every viewer's frontend and listed by GET /rooms: a stored-XSS vector.
 *
 * Contract: `videoUrlProblem` returns why a URL is refused (a sentence for the VALIDATION_FAILED message), or
 * undefined when it may be stored; it never throws. Host syncs, the legacy relay and stored rooms read back
 * from the database all pass through it.
 */
export const DEFAULT_VIDEO_SCHEMES: readonly string[] = ['http', 'https']

export function videoUrlProblem (url: string, allowedSchemes: readonly string[]): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return 'videoUrl must be an absolute URL (for example https://example.com/movie.mp4)'
  }
  const scheme = parsed.protocol.slice(0, -1).toLowerCase()
  if (!allowedSchemes.includes(scheme)) {
    return `videoUrl scheme ${JSON.stringify(`${scheme}:`).slice(0, 40)} is not allowed (allowed: ${allowedSchemes.map((s) => `${s}:`).join(', ')})`
  }
  if ((scheme === 'http' || scheme === 'https') && parsed.hostname === '') return 'videoUrl must name a host'
  return undefined
}

/**
 * A stored playback state as it may be handed out: one whose URL the scheme rule refuses (stored before the
 * rule existed, or before ALLOWED_VIDEO_SCHEMES was narrowed) is treated as no playback at all.
 */
export function allowedPlayback<P extends { videoUrl: string }> (playback: P | null, allowedSchemes: readonly string[]): P | null {
  return playback !== null && videoUrlProblem(playback.videoUrl, allowedSchemes) === undefined ? playback : null
}
