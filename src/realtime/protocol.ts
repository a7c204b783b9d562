/**
 * The wire protocol as the server's realtime layer sees it: everything comes from the one protocol source,
 * the `@watch-party/protocol` package (packages/protocol); only server-internal channel names are added here.
 */
export * from '@watch-party/protocol'

/** The internal channel that reaches every connection of one user (legacy relay). Never sent to clients. */
export const userChannel = (userId: string): string => `user:${userId}`
