/**
 * Returns the key of the series of `sensorId` and `metricId`: one number while the sensor id is
 * below 2^32 and the metric id below 2^20, which keeps it a safe integer, and a string otherwise.
 */
export const seriesKey = (sensorId: number, metricId: number): number | string =>
  sensorId < 4_294_967_296 && metricId < 1_048_576 ? sensorId * 1_048_576 + metricId : `${sensorId}/${metricId}`

/**
 * Returns the PostgreSQL array literal of finite numbers, such as `{1,2.5,-3e-7}`. JavaScript
 * writes every finite number in a form that `int8` (for safe integers) and `float8` accept,
 * and `join` took half the time of the `pg` driver's serialization, which quotes every element.
 */
export const arrayLiteral = (values: ReadonlyArray<number>): string => `{${values.join(",")}}`
