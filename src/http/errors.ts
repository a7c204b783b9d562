/**
 * The one place where anything thrown during a REST request becomes a status and an ErrorResponse body.
 *
 * Contract: AppErrors keep their code and message; Fastify's validation and parsing errors become
 * VALIDATION_FAILED (or INVALID_ROOM_ID for a bad path id); everything else is a 500 INTERNAL_ERROR whose body
 * says nothing of the cause (no stack, no SQL): the cause goes to the log only.
 */
import type { FastifyError } from 'fastify'
import { AppError, ERROR_CODES, INTERNAL_ERROR_BODY, errorBody, type ErrorBody } from '../errors.js'

export function toHttpError (error: unknown): { status: number, body: ErrorBody } {
  if (error instanceof AppError) return { status: error.status, body: error.toBody() }
  const fastifyError = error as Partial<FastifyError> & { validationContext?: string }
  if (fastifyError.validation !== undefined) {
    if (fastifyError.validationContext === 'params') {
      return { status: 400, body: errorBody('INVALID_ROOM_ID', 'the room id in the path is not a UUID') }
    }
    return { status: 400, body: errorBody('VALIDATION_FAILED', fastifyError.message ?? 'the request is not valid') }
  }
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { status: 413, body: errorBody('PAYLOAD_TOO_LARGE', 'the request body is larger than the server accepts') }
  }
  if (fastifyError.statusCode === 429) {
    return { status: 429, body: errorBody('RATE_LIMITED', fastifyError.message ?? 'too many requests; slow down') }
  }
  const status = fastifyError.statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return {
      status,
      body: { error: httpTitle(status), message: fastifyError.message ?? 'the request is not valid', code: 'VALIDATION_FAILED' }
    }
  }
  return { status: 500, body: INTERNAL_ERROR_BODY }
}

function httpTitle (status: number): string {
  for (const { status: s, title } of Object.values(ERROR_CODES)) if (s === status) return title
  return status === 415 ? 'Unsupported Media Type' : 'Bad Request'
}
