/**
 * Debian's chromium, driven by playwright-core (no browser download): found at CHROMIUM_PATH or the usual
 * places, launched headless with the flags that work in containers, real-time audio and video playback, and
 * autoplay without a gesture (the tests press play from script).
 */
import { existsSync } from 'node:fs'
import { chromium, type BrowserContext } from 'playwright-core'

interface Teardown { teardown (fn: () => Promise<void> | void): void }

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable']

/** The chromium binary, or undefined when none is installed. */
export function chromiumPath (): string | undefined {
  const configured = process.env.CHROMIUM_PATH
  if (configured !== undefined && configured !== '') return existsSync(configured) ? configured : undefined
  return CANDIDATES.find((path) => existsSync(path))
}

/** Why browser tests cannot run here, or false when they can. */
export function noChromium (): string | false {
  return chromiumPath() === undefined ? 'no chromium binary (apt-get install chromium, or set CHROMIUM_PATH); .ci/run installs it' : false
}

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
  // Background tabs and occluded windows would otherwise have their timers and media throttled.
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
  '--mute-audio'
]

export interface Browser {
  /** A fresh browser context (its own storage, like another person's browser). */
  newContext (): Promise<BrowserContext>
  close (): Promise<void>
}

/** One chromium for a test file, closed in teardown. playwright-core gives each launch a fresh profile directory. */
export async function launchChromium (t?: Teardown): Promise<Browser> {
  const executablePath = chromiumPath()
  if (executablePath === undefined) throw new Error('no chromium binary')
  const browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS })
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await browser.close().catch(() => {})
  }
  t?.teardown(close)
  return {
    newContext: async () => await browser.newContext({ viewport: { width: 1100, height: 720 } }),
    close
  }
}
