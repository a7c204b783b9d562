/**
 * The bench's SVG curves (bench/lib/charts.ts, bench/lib/bench-charts.ts): drawn from the results alone,
 * deterministic, escaped, with larger values higher on the chart, and no NaN where data is missing.
 */
import t from 'tap'
import { lineChart } from '../../bench/lib/charts.js'

const spec = {
  title: 'CPU <per> delivery & more',
  xLabel: 'viewers per room',
  yLabel: 'µs',
  xScale: 'log' as const,
  series: [
    { name: 'ours', points: [{ x: 10, y: 20 }, { x: 100, y: 12 }, { x: 1000, y: 9 }] },
    { name: 'floor', points: [{ x: 10, y: 5 }, { x: 100, y: 5 }, { x: 1000, y: 5 }], dashed: true },
    { name: 'absent', points: [] }
  ],
  referenceLines: [{ y: 7, name: 'one process' }]
}

function balanced (svg: string): boolean {
  const stack: string[] = []
  for (const match of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = match
    if (selfClosing === '/') continue
    if (closing === '/') {
      if (stack.pop() !== name) return false
    } else {
      stack.push(name!)
    }
  }
  return stack.length === 0
}

t.test('a chart is well-formed, escaped, names every series and is the same for the same input', async (t) => {
  const svg = lineChart(spec)
  t.ok(svg.startsWith('<svg'), 'an SVG document')
  t.ok(balanced(svg), 'every tag is closed')
  t.match(svg, /CPU &lt;per&gt; delivery &amp; more/, 'the title, escaped')
  for (const name of ['ours', 'floor', 'one process']) t.match(svg, name)
  t.match(svg, /absent \(not measured\)/, 'a series without points is named as not measured')
  t.notMatch(svg, /NaN|Infinity/)
  t.equal(lineChart(spec), svg, 'deterministic')
})

t.test('degenerate data draws without NaN', async (t) => {
  for (const points of [[{ x: 1, y: 0 }], [{ x: 1, y: 3 }, { x: 2, y: 3 }], [{ x: 1000, y: 0 }, { x: 19000, y: 0 }]]) {
    const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', xScale: 'linear', series: [{ name: 's', points }] })
    t.notMatch(svg, /NaN|Infinity/, JSON.stringify(points))
    t.ok(balanced(svg))
  }
})
