/**
 * Preloaded (`--import`) into every process the bench starts, servers included: when the bench process
 * dies without cleaning up (SIGKILL, crash), its children notice that their parent changed and kill
 * themselves, so nothing is left running or listening.
 */
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL')
}, 500).unref()
