/**
 * The follow rule on its own: proportional, bounded rate correction down to zero drift; one seek above the
 * threshold, aimed ahead by a lead it learns; nothing while seeking or buffering; a paused host.
 */
import t from 'tap'
import { DEFAULT_TUNING, correctedRate, decide, initialFollowState, type Observation } from '@watch-party/client'

const sample = (overrides: Partial<Observation> = {}): Observation => ({
  now: 10_000, expected: 30, hostPlaying: true, hostRate: 1, position: 30, paused: false, seeking: false, buffering: false, ...overrides
})

t.test('the rate correction is proportional to the drift, bounded, and zero only at zero drift', async (t) => {
  t.equal(correctedRate(0, 1, DEFAULT_TUNING), 1, 'no drift: the host rate')
  t.equal(correctedRate(0.025, 1, DEFAULT_TUNING), 1 - 0.03, 'ahead by 25 ms: 3% slower (gain 1.2/s)')
  t.equal(correctedRate(-0.025, 1, DEFAULT_TUNING), 1 + 0.03, 'behind: faster by as much')
  t.ok(correctedRate(0.001, 1, DEFAULT_TUNING) < 1, 'even 1 ms gets a correction: no dead band')
  t.equal(correctedRate(0.3, 2, DEFAULT_TUNING), 2 * 0.9, 'bounded at maxRateAdjust, relative to the host rate')
  t.equal(correctedRate(-0.3, 1, { ...DEFAULT_TUNING, maxRateAdjust: 0.05 }), 1.05)
  t.equal(correctedRate(0.2, 1, { ...DEFAULT_TUNING, rateCorrection: false }), 1, 'a player without fine rates keeps the host rate')
})

t.test('following the rule drives drift to zero from either side, without overshoot, and holds it there', async (t) => {
  for (const start of [0.35, -0.35, 0.004]) {
    // Simulate the loop: the viewer's position advances at the decided rate for one 250 ms tick.
    let drift = start
    let state = initialFollowState()
    let maxAfter = 0
    for (let i = 0; i < 40; i++) {
      const { decision, state: next } = decide(sample({ now: i * 250, position: 30 + drift }), state)
      state = next
      t.equal(decision.kind, 'follow', 'rate only, never a seek under the threshold')
      if (decision.kind !== 'follow') return
      const before = drift
      drift += (decision.rate - 1) * 0.25
      t.ok(Math.sign(drift) === Math.sign(before) || drift === 0, 'no overshoot')
      if (i >= 20) maxAfter = Math.max(maxAfter, Math.abs(drift))
    }
    t.ok(Math.abs(drift) < Math.abs(start) * 0.01 + 1e-4, `from ${start * 1000} ms to ${(drift * 1000).toFixed(3)} ms in 10 s`)
    t.ok(maxAfter <= Math.abs(start) * 0.05 + 1e-4, 'and it stays converged')
  }
})

t.test('a steady disturbance cannot ratchet the drift up: it settles where correction balances it', async (t) => {
  // The viewer's player runs 0.5% fast on its own (a clock that differs from the host's).
  let drift = 0
  let state = initialFollowState()
  for (let i = 0; i < 200; i++) {
    const { decision, state: next } = decide(sample({ now: i * 250, position: 30 + drift }), state)
    state = next
    if (decision.kind !== 'follow') throw new Error('unexpected seek')
    drift += (decision.rate * 1.005 - 1) * 0.25
  }
  t.ok(Math.abs(drift) < 0.005, `bounded at ${(drift * 1000).toFixed(2)} ms (0.005 / gain)`)
})

t.test('above the threshold: one seek aimed ahead by the lead; the landing, once it moves, teaches the lead; a bad landing is refined once', async (t) => {
  let state = initialFollowState()
  const first = decide(sample({ now: 0, position: 10 }), state)
  t.match(first.decision, { kind: 'seek', play: true, rate: 1 })
  if (first.decision.kind !== 'seek') return
  t.equal(first.decision.to, 30 + DEFAULT_TUNING.initialSeekLead, 'aimed at the host plus the first lead')
  state = first.state
  t.equal(decide(sample({ now: 100, seeking: true, position: 30.1 }), state).decision.kind, 'hold', 'nothing while seeking')
  // Landed, not moving yet: the rate stays the host's and nothing is learned.
  const still = decide(sample({ now: 500, position: 30.1, expected: 30.5 }), state)
  t.match(still.decision, { kind: 'follow', rate: 1 }, 'no correction and no second seek until it moves')
  t.equal(still.state.seekLead, DEFAULT_TUNING.initialSeekLead)
  // Moving, 150 ms behind: the lead grows by 150 ms and, being more than refineThreshold off, one more seek.
  const moving = decide(sample({ now: 750, position: 30.6, expected: 30.75 }), still.state)
  t.equal(Math.round(moving.state.seekLead * 1000), 250, 'lead 100 ms + 150 ms')
  t.match(moving.decision, { kind: 'seek', to: 30.75 + 0.25 })
  t.equal(moving.state.measuringSeek, false, 'the refining seek is not measured again')
  const after = decide(sample({ now: 1200, position: 30, expected: 31.3 }), moving.state)
  t.equal(after.decision.kind, 'follow', 'and no third seek within the cooldown, however far')
  // A good landing (20 ms behind) tunes the lead without another seek.
  const good = decide(sample({ now: 5000, position: 50 }), { ...moving.state, lastSeekAt: undefined })
  const landed = decide(sample({ now: 5300, position: 30.2, expected: 30.22 }), decide(sample({ now: 5050, position: 30.0 }), good.state).state)
  t.equal(landed.decision.kind, 'follow')
  t.equal(Math.round(landed.state.seekLead * 1000), 270)
  const double = decide(sample({ now: 9000, position: 60 + 5, expected: 60, hostRate: 2 }), { ...landed.state, lastSeekAt: undefined })
  t.match(double.decision, { kind: 'seek', to: 60 + 0.27 * 2 }, 'the lead scales with the host rate')
})

t.test('buffering holds; a paused host pauses the viewer and seeks only beyond a frame', async (t) => {
  const state = initialFollowState()
  t.match(decide(sample({ position: 20, buffering: true }), state).decision, { kind: 'hold', reason: 'buffering' }, 'stuck on data: no seek, no rate change')
  t.match(decide(sample({ hostPlaying: false, position: 30.015 }), state).decision, { kind: 'follow', play: false, rate: 1 }, 'within half a frame: pause where it is')
  t.match(decide(sample({ hostPlaying: false, position: 30.3 }), state).decision, { kind: 'seek', to: 30, play: false }, 'further: to the host frame')
  t.match(decide(sample({ hostPlaying: false, position: 30.3, seeking: true }), state).decision, { kind: 'hold' })
  t.match(decide(sample({ paused: true, position: 30 }), state).decision, { kind: 'seek', to: 30 + DEFAULT_TUNING.initialSeekLead, play: true }, 'a paused viewer of a playing host starts from a seek aimed ahead by the lead')
  t.match(decide(sample({ paused: true, position: 30.1 }), { ...state, lastSeekAt: 9800 }).decision, { kind: 'follow', play: true }, 'or just plays within the cooldown')
  t.match(decide(sample({ position: 30.2 }), state, { ...DEFAULT_TUNING, rateCorrection: false }).decision, { kind: 'seek' }, 'without rate correction, seeks start at 100 ms')
})
