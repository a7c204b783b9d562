/**
 * The demo page's script (bundled with the client SDK by src/http/demo-routes.ts): create or join a room, the
 * host picks the video, everyone's <video> is bound to the room, participants with roles, chat, host transfer,
 * and for the host each viewer's drift as the server reports it.
 *
 * Query: `?room=<id>&user=<id>` joins at once (development identity), `&video=<url>` gives the host's video
 * (loaded when the room has none yet), `&sync=off` joins without following the host (the sync bench compares
 * other followers on the same page). `window.watchParty` holds the client, the room and the binding, for the
 * browser console and the tests.
 */
import { WatchPartyClient, bindPlayer, type PlayerBinding, type ViewerStatusRow, type WatchPartyRoom } from '@watch-party/client'

const params = new URLSearchParams(location.search)
const $ = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`#${id} is missing`)
  return element as T
}
const video = $<HTMLVideoElement>('player')

interface DemoHandle {
  client?: WatchPartyClient
  room?: WatchPartyRoom
  binding?: PlayerBinding
  video: HTMLVideoElement
  /** Resolves once the room is joined and the player bound. */
  ready: Promise<void>
}
let markReady: () => void = () => {}
const handle: DemoHandle = { video, ready: new Promise((resolve) => { markReady = resolve }) }
;(window as unknown as { watchParty: DemoHandle }).watchParty = handle

const USER_PATTERN = /^[A-Za-z0-9_.@:-]{1,128}$/
const userInput = $<HTMLInputElement>('user')
userInput.value = params.get('user') ?? localStorage.getItem('watch-party-user') ?? `guest-${Math.random().toString(36).slice(2, 7)}`

function el (tag: string, text?: string, className?: string): HTMLElement {
  const node = document.createElement(tag)
  if (text !== undefined) node.textContent = text
  if (className !== undefined) node.className = className
  return node
}

function showError (err: unknown): void {
  $('lobby-error').textContent = err instanceof Error ? err.message : String(err)
}

async function connect (): Promise<WatchPartyClient> {
  const userId = userInput.value.trim()
  if (!USER_PATTERN.test(userId)) throw new Error('a user id is 1-128 characters of A-Z a-z 0-9 _ . @ : -')
  if (handle.client !== undefined) return handle.client
  localStorage.setItem('watch-party-user', userId)
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  // A watch party wants its viewers back within seconds of a restart: backoff capped at 2 s (jitter spreads them).
  const client = new WatchPartyClient({ url: `${scheme}//${location.host}/ws`, userId, backoff: { maxDelayMs: 2000 } })
  handle.client = client
  const connection = $('connection')
  client.on('state', ({ state }) => {
    connection.textContent = state
    connection.className = `pill ${state === 'connected' ? 'ok' : 'warn'}`
  })
  await client.connect()
  $('who').textContent = `as ${userId}`
  return client
}

function enter (room: WatchPartyRoom): void {
  handle.room = room
  $('lobby').hidden = true
  $('party').hidden = false
  $('room-title').textContent = room.name
  $('room-code').textContent = room.id
  const url = new URL(location.href)
  url.searchParams.set('room', room.id)
  url.searchParams.set('user', userInput.value.trim())
  history.replaceState(null, '', url)

  if (params.get('sync') !== 'off') {
    const binding = bindPlayer(room, video, { client: handle.client })
    handle.binding = binding
    binding.on('viewers', renderDrift)
    binding.on('status', (sample) => {
      if (binding.mode !== 'viewer') return
      const drift = sample.drift === undefined ? '–' : `${(sample.drift * 1000).toFixed(0)} ms`
      $('sync-line').textContent = `drift to the host ${drift} · rate ${sample.rate.toFixed(3)}${sample.buffering ? ' · buffering' : ''}`
    })
    binding.on('blocked', () => { $('sync-line').textContent = 'press play to join in (the browser blocked autoplay)' })
    binding.on('mode', () => { render(room) })
    const wanted = params.get('video')
    if (room.isHost && wanted !== null && room.playback === null) binding.load(wanted)
  }
  room.on('change', () => { render(room) })
  room.on('chat', (line) => { addChat(line.userId, line.message) })
  for (const line of room.chat) addChat(line.userId, line.message)
  render(room)
  markReady()
}

function render (room: WatchPartyRoom): void {
  const host = room.isHost
  $('role').textContent = host ? 'host' : 'viewer'
  $('load').hidden = !host
  $('drift-panel').hidden = !host
  if (!host) $('sync-line').textContent ||= 'following the host'
  else $('sync-line').textContent = 'you are the host: your player drives everyone'
  const list = $('participants')
  list.replaceChildren(...room.participants.map((userId) => {
    const item = el('li', userId)
    if (userId === room.hostId) item.append(' ', el('span', 'host', 'pill ok'))
    if (host && userId !== room.hostId) {
      const button = el('button', 'make host') as HTMLButtonElement
      button.type = 'button'
      button.addEventListener('click', () => { room.transferHost(userId).catch(showError) })
      item.append(button)
    }
    return item
  }))
  if (!host) renderDrift([])
}

function renderDrift (rows: readonly ViewerStatusRow[]): void {
  $('drift-rows').replaceChildren(...rows.map((row) => {
    const tr = el('tr')
    const drift = row.drift === null ? '–' : `${row.drift >= 0 ? '+' : ''}${(row.drift * 1000).toFixed(0)} ms`
    tr.append(el('td', row.userId), el('td', drift, 'num'), el('td', row.buffering ? 'buffering' : 'playing'))
    return tr
  }))
}

function addChat (userId: string, message: string): void {
  const item = el('li')
  item.append(el('strong', userId), `: ${message}`)
  const chat = $('chat')
  chat.append(item)
  chat.scrollTop = chat.scrollHeight
}

$('create').addEventListener('submit', (event) => {
  event.preventDefault()
  void (async () => {
    const client = await connect()
    enter(await client.createRoom($<HTMLInputElement>('room-name').value))
  })().catch(showError)
})
$('join').addEventListener('submit', (event) => {
  event.preventDefault()
  void (async () => {
    const client = await connect()
    enter(await client.joinRoom($<HTMLInputElement>('room-id').value.trim()))
  })().catch(showError)
})
$('identity').addEventListener('submit', (event) => { event.preventDefault() })
$('load').addEventListener('submit', (event) => {
  event.preventDefault()
  handle.binding?.load($<HTMLInputElement>('video-url').value)
})
$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const input = $<HTMLInputElement>('chat-input')
  const room = handle.room
  if (room === undefined || input.value === '') return
  room.sendChat(input.value).then(() => { input.value = '' }, showError)
})

const roomParam = params.get('room')
if (roomParam !== null) {
  $<HTMLInputElement>('room-id').value = roomParam
  void (async () => {
    const client = await connect()
    enter(await client.joinRoom(roomParam))
  })().catch(showError)
}
