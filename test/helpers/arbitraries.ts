/**
 * fast-check generators shared by the fuzz tests: strings and JSON that reach every UTF-16 code unit,
 * lone surrogates and NUL included, besides fast-check's ordinary ones.
 */
import fc from 'fast-check'

/** Any UTF-16 code unit, lone surrogates and NUL included. */
const codeUnit = fc.nat({ max: 0xffff }).map((c) => String.fromCharCode(c))

export const anyString = (constraints: { minLength?: number, maxLength?: number } = {}): fc.Arbitrary<string> => fc.oneof(
  fc.string(constraints),
  fc.string({ ...constraints, unit: 'binary' }),
  fc.string({ ...constraints, unit: codeUnit })
)

/** Any JSON value up to `maxDepth` levels, its strings drawn like `anyString`'s. */
export const anyJsonOf = (maxDepth: number): fc.Arbitrary<unknown> => fc.oneof(
  fc.jsonValue({ maxDepth }),
  fc.jsonValue({ maxDepth, stringUnit: 'binary' }),
  fc.jsonValue({ maxDepth, stringUnit: codeUnit })
)
