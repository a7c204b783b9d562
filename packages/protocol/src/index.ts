/**
 * The watch-party wire contract (protocol version 1 with the additive 1.1 section): one source for the
 * server's validation, its AsyncAPI and OpenAPI documents, the tests and the client SDK. No server imports.
 */
export * from './close-codes.js'
export * from './errors.js'
export * from './shapes.js'
export * from './requests.js'
export * from './events.js'
export * from './check.js'
