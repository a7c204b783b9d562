import t, { type Test } from 'tap'
import { lineChart, niceTicks, type ChartSpec } from '../../bench/lib/charts.js'

const ROOM_SIZES: ChartSpec = {
  title: 'CPU per delivery against room size',
  subtitle: 'lower is better',
  xLabel: 'viewers per room',
  yLabel: 'CPU µs per delivery',
  xScale: 'log',
  series: [
    { name: 'ours', points: [{ x: 10, y: 14.2, label: '14.2' }, { x: 100, y: 7.9, label: '7.9' }, { x: 1000, y: 7.4, label: '7.4' }] },
    { name: 'bare ws', points: [{ x: 1000, y: 7.1 }, { x: 10, y: 12.1 }, { x: 100, y: 7.6 }] },
    { name: 'floor', points: [{ x: 10, y: 6.1 }, { x: 100, y: 5.2 }, { x: 1000, y: 5 }], dashed: true },
    { name: 'Colyseus', points: [] }
  ],
  referenceLines: [{ y: 6.5, name: 'single process' }]
}

/** Fails unless every element opened in `svg` is closed in order, and there is one root <svg>. */
function assertBalanced (t: Test, svg: string): void {
  const stack: string[] = []
  let roots = 0
  for (const match of svg.matchAll(/<(\/?)([a-zA-Z][\w-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = match as unknown as [string, string, string, string]
    if (selfClosing === '/') continue
    if (closing === '/') {
      t.equal(stack.pop(), name, `</${name}> closes the element open`)
    } else {
      if (stack.length === 0) roots++
      stack.push(name)
    }
  }
  t.same(stack, [], 'every element is closed')
  t.equal(roots, 1, 'one root element')
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  t.notMatch(svg.replace(/&(amp|lt|gt|quot|apos);/g, ''), /&/, 'no bare ampersand')
}

function assertFinite (t: Test, svg: string): void {
  t.notMatch(svg, /NaN|Infinity|undefined/, 'no NaN, Infinity or undefined in the output')
}

/** The SVG y of every circle marker (the first series' shape), in drawing order: points, then the legend. */
function circlesY (svg: string): number[] {
  return [...svg.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)"/g)].map((m) => Number(m[1]))
}

t.test('the output is well-formed and names the title and every series', async (t) => {
  const svg = lineChart(ROOM_SIZES)
  assertBalanced(t, svg)
  assertFinite(t, svg)
  for (const text of [ROOM_SIZES.title, 'lower is better', 'viewers per room', 'CPU µs per delivery', 'ours', 'bare ws', 'floor', 'single process']) {
    t.ok(svg.includes(text), `contains "${text}"`)
  }
  t.match(svg, /<rect x="0" y="0" width="760" height="420" fill="#ffffff"\/>/, 'a white background, 760 × 420 by default')
  t.match(svg, />1,000</, 'x ticks with thousands separators')
  t.match(svg, /stroke-dasharray="6 4"/, 'the dashed series is dashed')
})

t.test('a series with no points is in the legend as not measured', async (t) => {
  const svg = lineChart(ROOM_SIZES)
  t.ok(svg.includes('Colyseus (not measured)'))
  const long = 'a series name long enough to be cut short in the legend, which is at most 40 % of the width'
  const cut = lineChart({ ...ROOM_SIZES, series: [{ name: long, points: [] }] })
  t.match(cut, /…\(not measured\)|… \(not measured\)/, 'a cut name keeps its "(not measured)"')
  t.ok(cut.includes(`<title>${long} (not measured)</title>`), 'and the whole name as a tooltip')
})

t.test('names, title and labels are XML-escaped', async (t) => {
  const svg = lineChart({
    ...ROOM_SIZES,
    title: 'a <b> & c',
    series: [{ name: '<script>&"x"', points: [{ x: 10, y: 1, label: '<1 & >0' }, { x: 100, y: 2 }] }]
  })
  assertBalanced(t, svg)
  t.ok(svg.includes('a &lt;b&gt; &amp; c'))
  t.ok(svg.includes('&lt;script&gt;&amp;&quot;x&quot;'))
  t.ok(svg.includes('&lt;1 &amp; &gt;0'))
  t.notOk(svg.includes('<script>'))
  t.notOk(svg.includes('<b>'))
})

t.test('a larger y is drawn higher (smaller SVG y)', async (t) => {
  const svg = lineChart({ ...ROOM_SIZES, series: [{ name: 'one', points: [{ x: 1, y: 3 }, { x: 2, y: 30 }, { x: 3, y: 10 }] }], referenceLines: [], xScale: 'linear' })
  const [y3, y30, y10, legend] = circlesY(svg) as [number, number, number, number]
  t.ok(y30 < y10 && y10 < y3, `30 above 10 above 3 (${y30} < ${y10} < ${y3})`)
  t.ok(legend !== undefined, 'and a legend marker')
})

t.test('a log x scale puts 10, 100 and 1,000 at equal spacing; a linear one spaces by value', async (t) => {
  const points = [{ x: 1000, y: 1 }, { x: 10, y: 1 }, { x: 100, y: 1 }]
  const xsOf = (svg: string): number[] => [...svg.matchAll(/<circle cx="([\d.]+)"/g)].slice(0, 3).map((m) => Number(m[1]))
  const [a, b, c] = xsOf(lineChart({ ...ROOM_SIZES, series: [{ name: 's', points }] })) as [number, number, number]
  t.ok(a < b && b < c, 'in x order')
  t.ok(Math.abs((b - a) - (c - b)) <= 0.2, `equal spacing (${b - a} and ${c - b})`)
  const [d, e, f] = xsOf(lineChart({ ...ROOM_SIZES, xScale: 'linear', series: [{ name: 's', points }] })) as [number, number, number]
  t.ok(Math.abs((f - d) / (e - d) - 990 / 90) < 0.1, 'linear spacing is proportional to value')
})

t.test('points are joined in x order whatever order they come in', async (t) => {
  const svg = lineChart({ ...ROOM_SIZES, series: [{ name: 's', points: [{ x: 100, y: 2 }, { x: 10, y: 1 }, { x: 1000, y: 3 }] }] })
  const path = /<path d="M([\d.]+),[\d.]+L([\d.]+),[\d.]+L([\d.]+),[\d.]+" stroke="#0072B2"/.exec(svg)
  t.ok(path, 'one line through the three points')
  const [, x1, x2, x3] = (path ?? []).map(Number)
  t.ok((x1 as number) < (x2 as number) && (x2 as number) < (x3 as number), 'left to right')
})

t.test('identical input gives identical output', async (t) => {
  t.equal(lineChart(structuredClone(ROOM_SIZES)), lineChart(structuredClone(ROOM_SIZES)))
})

t.test('no NaN or Infinity for degenerate data', async (t) => {
  const cases: Array<[string, ChartSpec]> = [
    ['all-equal y', { ...ROOM_SIZES, series: [{ name: 's', points: [{ x: 10, y: 5 }, { x: 100, y: 5 }, { x: 1000, y: 5 }] }] }],
    ['all zero', { ...ROOM_SIZES, xScale: 'linear', series: [{ name: 's', points: [{ x: 0, y: 0 }, { x: 0, y: 0 }] }] }],
    ['a single point', { ...ROOM_SIZES, series: [{ name: 's', points: [{ x: 100, y: 7, label: '7' }] }] }],
    ['no points at all', { ...ROOM_SIZES, series: [{ name: 's', points: [] }], referenceLines: [] }],
    ['no series', { ...ROOM_SIZES, series: [], referenceLines: [] }],
    ['non-finite and non-positive input', { ...ROOM_SIZES, series: [{ name: 's', points: [{ x: 0, y: 1 }, { x: 10, y: NaN }, { x: 100, y: Infinity }, { x: 1000, y: 2 }] }] }],
    ['all-equal y with yMin at that value', { ...ROOM_SIZES, yMin: 5, series: [{ name: 's', points: [{ x: 10, y: 5 }, { x: 100, y: 5 }] }] }],
    ['negative values', { ...ROOM_SIZES, series: [{ name: 's', points: [{ x: 10, y: -3 }, { x: 100, y: -1 }] }] }]
  ]
  for (const [name, spec] of cases) {
    t.test(name, async (t) => {
      const svg = lineChart(spec)
      assertBalanced(t, svg)
      assertFinite(t, svg)
    })
  }
})

t.test('a single point is a marker only, with no line', async (t) => {
  const svg = lineChart({ ...ROOM_SIZES, series: [{ name: 's', points: [{ x: 100, y: 7 }] }], referenceLines: [] })
  t.equal(circlesY(svg).length, 2, 'the point and its legend marker')
  t.notMatch(svg, /<path d="M[\d.]+,[\d.]+L[\d.]+,[\d.]+" stroke="#0072B2"/, 'no line')
})

t.test('y ticks are 1, 2 or 5 × 10^k and cover the data', async (t) => {
  t.same(niceTicks(0, 10.8).ticks, [0, 2, 4, 6, 8, 10, 12])
  t.same(niceTicks(0, 0.9).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1])
  t.same(niceTicks(0, 0).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1])
  t.same(niceTicks(0, 19000).ticks, [0, 5000, 10000, 15000, 20000])
  const svg = lineChart({ ...ROOM_SIZES, series: [{ name: 's', points: [{ x: 1000, y: 18000 }, { x: 10, y: 1 }] }], referenceLines: [] })
  t.match(svg, />20,000</, 'the top tick with a thousands separator')
})
