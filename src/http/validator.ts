/**
 * The schema validator of every route: TypeBox's, with one correction for URL parts.
 *
 * Contract: in the query string and path parameters, a property whose schema is an integer accepts only a
 * decimal integer (`-?[0-9]+`): TypeBox's conversion would turn `1.5` into 1 and `1e1` into 10 and the
 * request would be answered as if it had asked for something else; they are refused (400 VALIDATION_FAILED,
 * "<part>/<name> must be integer") like any other invalid value.
 */
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify'
import type { TSchema } from 'typebox'

const DECIMAL_INTEGER = /^-?[0-9]+$/

export const validatorCompiler: FastifySchemaCompiler<TSchema> = (route) => {
  const validate = TypeBoxValidatorCompiler(route)
  if (route.httpPart !== 'querystring' && route.httpPart !== 'params') return validate
  const properties = (route.schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {}
  const integers = Object.keys(properties).filter((name) => properties[name]?.type === 'integer')
  if (integers.length === 0) return validate
  return (value) => {
    const raw = value as Record<string, unknown> | null | undefined
    for (const name of integers) {
      const text = raw?.[name]
      if (typeof text === 'string' && !DECIMAL_INTEGER.test(text)) {
        const error: FastifySchemaValidationError = {
          keyword: 'type',
          instancePath: `/${name}`,
          schemaPath: `#/properties/${name}/type`,
          params: { type: 'integer' },
          message: 'must be integer'
        }
        return { error: [error] }
      }
    }
    return validate(value)
  }
}
