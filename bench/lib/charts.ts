/**
 * Line charts as SVG text, for the bench's curves (issue 15): no chart library, no browser, no I/O.
 *
 * Contract: lineChart(spec) is pure and deterministic (same spec, same bytes). It draws one plot with
 * - y: a linear axis from min(yMin ?? 0, lowest value) with "nice" ticks (1, 2 or 5 × 10^k) and grid lines;
 * - x: ticks at exactly the data's own x values (thousands separators), spaced linearly or by log10
 *   (`xScale`; on a log axis, points with x <= 0 are left out);
 * - one colour (Okabe–Ito, colour-blind safe) and one marker shape per series, so it reads in print; a
 *   series' `style` (default: its index) picks both, so two series may share them and differ by `dashed`;
 * - points joined in x order; a single point is a marker only; points whose x or y is not finite are left out;
 * - `label` texts placed near their points, moved around their point to avoid other labels and markers,
 *   and dropped when no place is free (the bench's tables carry every number);
 * - horizontal `referenceLines` (grey, dash-dot), named in the legend with the series;
 * - a legend to the right of the plot, never over it; a series with no points is listed as "<name> (not measured)".
 * Text is XML-escaped; a white background keeps it readable on a dark page. Default size 760 × 420.
 */

export interface ChartPoint { x: number, y: number, label?: string }
export interface ChartSeries { name: string, points: ChartPoint[], dashed?: boolean, style?: number }
export interface ChartSpec {
  title: string
  subtitle?: string
  xLabel: string
  yLabel: string
  xScale: 'linear' | 'log'
  yMin?: number
  series: ChartSeries[]
  referenceLines?: Array<{ y: number, name: string }>
  width?: number
  height?: number
}

/** Okabe–Ito, ordered for contrast on white (the yellow, weakest on white, last). */
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442']
const MARKERS = ['circle', 'square', 'triangle', 'diamond', 'triangle-down', 'cross', 'plus', 'hexagon'] as const
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Liberation Sans', sans-serif"
const REFERENCE_COLOUR = '#666666'
const R = 4.5
const NOT_MEASURED = ' (not measured)'

interface Box { x0: number, y0: number, x1: number, y1: number }

export function escapeXml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string)
}

/** A coordinate as short, finite text. */
function n (value: number): string {
  return Number.isFinite(value) ? String(Math.round(value * 10) / 10) : '0'
}

/** `value` with `decimals` digits after the point and thousands separators ("19,000", "0.25"). */
export function formatNumber (value: number, decimals = Number.isInteger(value) ? 0 : 2): string {
  const fixed = Math.abs(value).toFixed(decimals)
  const [int = '0', frac] = fixed.split('.')
  const trimmed = frac !== undefined && !Number.isInteger(value) ? frac.replace(/0+$/, '') : frac
  const sign = value < 0 && Number(fixed) !== 0 ? '−' : ''
  return sign + int.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (trimmed ? '.' + trimmed : '')
}

/** Rough width of `text` in a sans-serif at `size` px (no font metrics without a browser; errs wide). */
function textWidth (text: string, size: number): number {
  return text.length * size * 0.58
}

/** `text` cut with an ellipsis to fit `width`. */
function fit (text: string, width: number, size: number): string {
  if (textWidth(text, size) <= width) return text
  const chars = Math.max(1, Math.floor(width / (size * 0.58)) - 1)
  return text.slice(0, chars) + '…'
}

/** Ticks of step 1, 2 or 5 × 10^k covering [lo, hi], about `target` intervals. */
export function niceTicks (lo: number, hi: number, target = 5): { ticks: number[], decimals: number } {
  if (!(hi > lo)) hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.5)
  const raw = (hi - lo) / target
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const norm = raw / magnitude
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9))
  const start = Math.floor(lo / step + 1e-9)
  const end = Math.ceil(hi / step - 1e-9)
  const ticks: number[] = []
  for (let i = start; i <= end; i++) ticks.push(Number((i * step).toFixed(decimals)))
  return { ticks, decimals }
}

function marker (shape: typeof MARKERS[number], x: number, y: number, colour: string): string {
  const fill = `fill="${colour}" stroke="#fff" stroke-width="1"`
  const poly = (pts: Array<[number, number]>): string =>
    `<polygon points="${pts.map(([dx, dy]) => `${n(x + dx)},${n(y + dy)}`).join(' ')}" ${fill}/>`
  const k = R * 1.25
  switch (shape) {
    case 'circle': return `<circle cx="${n(x)}" cy="${n(y)}" r="${R}" ${fill}/>`
    case 'square': return `<rect x="${n(x - R * 0.9)}" y="${n(y - R * 0.9)}" width="${n(R * 1.8)}" height="${n(R * 1.8)}" ${fill}/>`
    case 'triangle': return poly([[0, -k], [k, k * 0.8], [-k, k * 0.8]])
    case 'triangle-down': return poly([[0, k], [k, -k * 0.8], [-k, -k * 0.8]])
    case 'diamond': return poly([[0, -k], [k, 0], [0, k], [-k, 0]])
    case 'hexagon': return poly([0, 60, 120, 180, 240, 300].map((a) => [R * 1.1 * Math.cos(a * Math.PI / 180), R * 1.1 * Math.sin(a * Math.PI / 180)]))
    case 'cross':
    case 'plus': {
      const d = shape === 'cross' ? `M${n(x - R)},${n(y - R)}L${n(x + R)},${n(y + R)}M${n(x - R)},${n(y + R)}L${n(x + R)},${n(y - R)}`
        : `M${n(x - k)},${n(y)}L${n(x + k)},${n(y)}M${n(x)},${n(y - k)}L${n(x)},${n(y + k)}`
      return `<path d="${d}" stroke="${colour}" stroke-width="2.5" fill="none"/>`
    }
  }
}

function overlaps (a: Box, b: Box): boolean {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1
}

export function lineChart (spec: ChartSpec): string {
  const width = spec.width ?? 760
  const height = spec.height ?? 420
  const log = spec.xScale === 'log'
  const series = spec.series.map((s, index) => {
    const style = Math.abs(Math.trunc(s.style ?? index))
    const points = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!log || p.x > 0))
    return { ...s, points: [...points].sort((a, b) => a.x - b.x), colour: COLOURS[style % COLOURS.length] as string, shape: MARKERS[style % MARKERS.length] as typeof MARKERS[number] }
  })
  const references = (spec.referenceLines ?? []).filter((r) => Number.isFinite(r.y))
  const all = series.flatMap((s) => s.points)

  // y: from the lower of yMin and the data, with headroom above the highest value for its label
  const ys = [...all.map((p) => p.y), ...references.map((r) => r.y)]
  const dataLo = Math.min(spec.yMin ?? 0, ...ys)
  const dataHi = ys.length > 0 ? Math.max(...ys) : dataLo
  const { ticks: yTicks, decimals } = niceTicks(dataLo, dataHi + (dataHi - dataLo) * 0.1)
  const yLo = yTicks[0] as number
  const yHi = yTicks[yTicks.length - 1] as number
  const yTickText = yTicks.map((t) => formatNumber(t, decimals))

  // layout: title, subtitle, plot, legend to the right
  const legendNames = [...series.map((s) => s.points.length > 0 ? s.name : s.name + NOT_MEASURED), ...references.map((r) => r.name)]
  const legendWidth = Math.min(width * 0.4, 34 + Math.max(60, ...legendNames.map((t) => textWidth(t, 12))))
  const top = spec.subtitle !== undefined ? 62 : 46
  const left = 36 + Math.max(...yTickText.map((t) => textWidth(t, 11)))
  const right = width - legendWidth - 24
  const bottom = height - 50
  const plotWidth = Math.max(10, right - left)

  // x: the data's own values, inset from the axes so end markers and labels are not clipped
  const xs = [...new Set(all.map((p) => p.x))].sort((a, b) => a - b)
  const f = (x: number): number => log ? Math.log10(x) : x
  const inset = Math.min(36, plotWidth * 0.08)
  const fLo = xs.length > 0 ? f(xs[0] as number) : 0
  const fHi = xs.length > 0 ? f(xs[xs.length - 1] as number) : 1
  const px = (x: number): number => fHi > fLo ? left + inset + (f(x) - fLo) / (fHi - fLo) * (plotWidth - 2 * inset) : left + plotWidth / 2
  const py = (y: number): number => bottom - (y - yLo) / (yHi - yLo) * (bottom - top)

  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(spec.title)}" font-family="${FONT}">`)
  out.push(`<title>${escapeXml(spec.title)}</title>`)
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="16" y="26" font-size="16" font-weight="600" fill="#222">${escapeXml(fit(spec.title, width - 32, 16))}</text>`)
  if (spec.subtitle !== undefined) out.push(`<text x="16" y="46" font-size="12" fill="#555">${escapeXml(fit(spec.subtitle, width - 32, 12))}</text>`)

  // grid and axes
  yTicks.forEach((t, i) => {
    out.push(`<line x1="${n(left)}" y1="${n(py(t))}" x2="${n(right)}" y2="${n(py(t))}" stroke="#e3e3e3" stroke-width="1"/>`)
    out.push(`<text x="${n(left - 6)}" y="${n(py(t) + 4)}" font-size="11" fill="#444" text-anchor="end">${escapeXml(yTickText[i] as string)}</text>`)
  })
  let lastTickEnd = -Infinity
  for (const x of xs) {
    const text = formatNumber(x)
    out.push(`<line x1="${n(px(x))}" y1="${n(top)}" x2="${n(px(x))}" y2="${n(bottom)}" stroke="#efefef" stroke-width="1"/>`)
    out.push(`<line x1="${n(px(x))}" y1="${n(bottom)}" x2="${n(px(x))}" y2="${n(bottom + 4)}" stroke="#444" stroke-width="1"/>`)
    if (px(x) - textWidth(text, 11) / 2 < lastTickEnd + 4) continue // too close to the previous tick's text
    lastTickEnd = px(x) + textWidth(text, 11) / 2
    out.push(`<text x="${n(px(x))}" y="${n(bottom + 17)}" font-size="11" fill="#444" text-anchor="middle">${escapeXml(text)}</text>`)
  }
  out.push(`<path d="M${n(left)},${n(top)}V${n(bottom)}H${n(right)}" stroke="#444" stroke-width="1" fill="none"/>`)
  out.push(`<text x="${n((left + right) / 2)}" y="${n(height - 12)}" font-size="12" fill="#222" text-anchor="middle">${escapeXml(fit(spec.xLabel, plotWidth, 12))}</text>`)
  const yMid = (top + bottom) / 2
  out.push(`<text x="18" y="${n(yMid)}" font-size="12" fill="#222" text-anchor="middle" transform="rotate(-90 18 ${n(yMid)})">${escapeXml(fit(spec.yLabel, bottom - top, 12))}</text>`)

  // reference lines, series lines, markers
  for (const r of references) {
    out.push(`<line x1="${n(left)}" y1="${n(py(r.y))}" x2="${n(right)}" y2="${n(py(r.y))}" stroke="${REFERENCE_COLOUR}" stroke-width="1.5" stroke-dasharray="8 3 2 3"/>`)
  }
  const dash = (s: { dashed?: boolean }): string => s.dashed === true ? ' stroke-dasharray="6 4"' : ''
  for (const s of series) {
    if (s.points.length < 2) continue
    const d = s.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${n(px(p.x))},${n(py(p.y))}`).join('')
    out.push(`<path d="${d}" stroke="${s.colour}" stroke-width="2" fill="none" stroke-linejoin="round"${dash(s)}/>`)
  }
  const obstacles: Box[] = all.map((p) => ({ x0: px(p.x) - R - 1, y0: py(p.y) - R - 1, x1: px(p.x) + R + 1, y1: py(p.y) + R + 1 }))
  for (const s of series) for (const p of s.points) out.push(marker(s.shape, px(p.x), py(p.y), s.colour))

  // value labels: the first free place around the point, or none
  const bounds: Box = { x0: left + 1, y0: top - 8, x1: width - legendWidth - 6, y1: bottom - 1 }
  for (const s of series) {
    for (const p of s.points) {
      if (p.label === undefined || p.label === '') continue
      const w = textWidth(p.label, 11)
      const cx = px(p.x)
      const cy = py(p.y)
      const candidates: Array<[number, number]> = [[cx - w / 2, cy - 9], [cx - w / 2, cy + 18], [cx + 8, cy + 4], [cx - 8 - w, cy + 4],
        [cx + 6, cy - 9], [cx - 6 - w, cy - 9], [cx + 6, cy + 18], [cx - 6 - w, cy + 18], [cx - w / 2, cy - 21], [cx - w / 2, cy + 30]]
      for (const [x0, baseline] of candidates) {
        const box = { x0, y0: baseline - 10, x1: x0 + w, y1: baseline + 2 }
        if (box.x0 < bounds.x0 || box.x1 > bounds.x1 || box.y0 < bounds.y0 || box.y1 > bounds.y1) continue
        if (obstacles.some((o) => overlaps(o, box))) continue
        obstacles.push(box)
        out.push(`<text x="${n(x0)}" y="${n(baseline)}" font-size="11" fill="${s.colour === '#F0E442' ? '#8a7d00' : s.colour}" stroke="#fff" stroke-width="3" paint-order="stroke" stroke-linejoin="round">${escapeXml(p.label)}</text>`)
        break
      }
    }
  }

  // legend, right of the plot
  const lx = width - legendWidth - 4
  let ly = top + 6
  const textRoom = legendWidth - 34
  series.forEach((s, i) => {
    const name = legendNames[i] as string
    if (s.points.length > 1) out.push(`<line x1="${n(lx)}" y1="${n(ly)}" x2="${n(lx + 24)}" y2="${n(ly)}" stroke="${s.colour}" stroke-width="2"${dash(s)}/>`)
    out.push(marker(s.shape, lx + 12, ly, s.colour))
    const shown = s.points.length > 0 ? fit(name, textRoom, 12) : fit(s.name, textRoom - textWidth(NOT_MEASURED, 12), 12) + NOT_MEASURED
    out.push(`<text x="${n(lx + 32)}" y="${n(ly + 4)}" font-size="12" fill="${s.points.length > 0 ? '#222' : '#777'}">${escapeXml(shown)}<title>${escapeXml(name)}</title></text>`)
    ly += 20
  })
  for (const r of references) {
    out.push(`<line x1="${n(lx)}" y1="${n(ly)}" x2="${n(lx + 24)}" y2="${n(ly)}" stroke="${REFERENCE_COLOUR}" stroke-width="1.5" stroke-dasharray="8 3 2 3"/>`)
    out.push(`<text x="${n(lx + 32)}" y="${n(ly + 4)}" font-size="12" fill="#222">${escapeXml(fit(r.name, textRoom, 12))}<title>${escapeXml(r.name)}</title></text>`)
    ly += 20
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}
