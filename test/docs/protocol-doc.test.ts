/**
 * docs/protocol.md agrees with the protocol package: every request type, event type, error code and close code
 * the code has is named in the document, and the 1.1 section of the contract is there in full.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { CLOSE_CODES, ERROR_CODE_NAMES, EventData, FEATURES, REQUEST_TYPES, STREAM_EVENT_TYPES } from '@watch-party/protocol'

const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8')

t.test('every request type is in the contract', async (t) => {
  for (const type of REQUEST_TYPES) t.match(doc, `\`${type}\``, type)
})

t.test('every event type is in the contract', async (t) => {
  for (const type of Object.keys(EventData)) t.match(doc, new RegExp(`[\`"]${type}[\`" ]`), type)
})

t.test('every error code and close code is in the contract', async (t) => {
  for (const code of ERROR_CODE_NAMES) t.match(doc, `\`${code}\``, code)
  for (const code of Object.values(CLOSE_CODES)) t.match(doc, String(code), String(code))
})

t.test('the 1.1 section names every stream event and feature', async (t) => {
  const v11 = doc.slice(doc.indexOf('## Version 1.1'))
  t.ok(v11.length > 1000, 'the 1.1 section is there')
  for (const type of STREAM_EVENT_TYPES) t.match(v11, `\`${type}\``, type)
  for (const feature of FEATURES) t.match(v11, `"${feature}"`, feature)
})

t.test('the README links the contract inside the repository, not outside it', async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  t.match(readme, '(docs/protocol.md)')
  t.notMatch(readme, '../shared/')
})
