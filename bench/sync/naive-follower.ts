/**
 * The follower several open watch-party systems use, for comparison: match the host's play/pause and rate, and
 * seek to the host's position (on the same synchronized clock) whenever more than `thresholdS` off, checked on
 * every state change and once a second. Installed into a demo page opened with `&sync=off`; counts its seeks
 * in `window.__naive.seeks`.
 */
import type { Page } from 'playwright-core'

export async function installNaiveFollower (page: Page, thresholdS = 1): Promise<void> {
  await page.evaluate((threshold) => {
    interface Room { playback: { videoUrl: string, isPlaying: boolean, playbackRate: number } | null, expectedPosition (): number | undefined, on (event: 'change', listener: () => void): () => void }
    interface Video { src: string, currentTime: number, paused: boolean, playbackRate: number, readyState: number, play (): Promise<void>, pause (): void }
    const g = globalThis as unknown as { watchParty: { room: Room, video: Video }, __naive: { seeks: number }, setInterval (fn: () => void, ms: number): unknown }
    const { room, video } = g.watchParty
    const naive = { seeks: 0 }
    g.__naive = naive
    const step = (): void => {
      const playback = room.playback
      if (playback === null) return
      if (video.src !== playback.videoUrl) video.src = playback.videoUrl
      if (video.readyState < 1) return
      if (playback.isPlaying && video.paused) void video.play().catch(() => {})
      if (!playback.isPlaying && !video.paused) video.pause()
      if (video.playbackRate !== playback.playbackRate) video.playbackRate = playback.playbackRate
      const expected = room.expectedPosition() ?? 0
      if (Math.abs(video.currentTime - expected) > threshold) {
        video.currentTime = expected
        naive.seeks++
      }
    }
    room.on('change', step)
    g.setInterval(step, 1000)
    step()
  }, thresholdS)
}
