/**
 * The measurements, each run against one server by the load-generator workers: one file per scenario in
 * scenarios/, re-exported here.
 */
export * from './scenarios/context.js'
export * from './scenarios/fanout.js'
export * from './scenarios/saturation.js'
export * from './scenarios/idle.js'
export * from './scenarios/join.js'
export * from './scenarios/rest.js'
export * from './scenarios/room-size.js'
