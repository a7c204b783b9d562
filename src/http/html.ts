/**
 * The few HTML pages this server renders itself (the front page, the WebSocket protocol page): escaping,
 * one layout, and the Content-Security-Policy they are served with.
 *
 * Contract: every text that reaches a page goes through `escapeHtml`; pages carry no script and load nothing
 * (no CDN, no font, no image: they work offline), so their policy allows nothing but the one inline style
 * sheet, by hash.
 */
import { createHash } from 'node:crypto'

const STYLE = [
  'body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:64rem;padding:1rem 2rem;color:#1b1f24}',
  'h1,h2,h3{line-height:1.2}h2{margin-top:2.5rem;border-bottom:1px solid #d0d7de}h3{margin-top:2rem}',
  'code,pre{font:13px/1.4 ui-monospace,monospace;background:#f4f6f8;border-radius:4px}code{padding:0 .25rem}',
  'pre{padding:.75rem;overflow:auto}table{border-collapse:collapse;width:100%;margin:.5rem 0}',
  'th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f4f6f8}',
  '.nested{margin-left:1.5rem}.muted{color:#57606a}nav li{margin:.2rem 0}a{color:#0969da}'
].join('')

const STYLE_HASH = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`

/** For @fastify/helmet's route option: nothing but the page's own style sheet. */
export const PAGE_CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    styleSrc: [STYLE_HASH],
    baseUri: ["'none'"],
    formAction: ["'none'"],
    frameAncestors: ["'none'"]
  }
}

export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** A whole page; `body` must already be escaped HTML. */
export function page (title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`
}
