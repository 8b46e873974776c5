import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { continuousAggregates } from "../../runtime/database/ReadModels.ts"

/**
 * Creates the read models of the query service and turns on compression of `sensor_data`.
 *
 * - `sensor_data_1m`, `_1h`, `_1d`: continuous aggregates with the partial aggregates that
 *   compose (count, sum, min, max, first and last with their times) per bucket, sensor and
 *   metric. They are created empty (`with no data`) and filled by the refresh policies, so the
 *   migration does not scan the readings. `materialized_only` is on because the query service
 *   combines materialised buckets with raw readings itself.
 * - `sensor_latest`: the latest value of every sensor and metric. Two statement-level triggers
 *   with transition tables keep it, one for inserts and one for the updates of an upsert, because
 *   PostgreSQL allows a transition table only on a trigger for a single event. A reading older
 *   than the stored one leaves it alone. bench/latest-values-write-cost.ts measured the cost.
 * - Compression settings (segmented by sensor and metric, ordered by time), which the
 *   compression policy needs; the policies themselves are applied at every start.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const aggregate of continuousAggregates) {
    yield* sql.unsafe(`
      create materialized view ${aggregate.name}
      with (timescaledb.continuous, timescaledb.materialized_only = true) as
      select time_bucket(interval '${aggregate.interval}', time) as bucket, sensor_id, metric_id,
             count(*) as value_count, sum(value) as value_sum, min(value) as value_min, max(value) as value_max,
             min(time) as first_time, first(value, time) as first_value,
             max(time) as last_time, last(value, time) as last_value
      from sensor_data
      group by bucket, sensor_id, metric_id
      with no data`)
  }
  yield* sql`
    create table sensor_latest (
      sensor_id bigint not null,
      metric_id integer not null,
      time timestamptz not null,
      value double precision not null,
      primary key (sensor_id, metric_id)
    )`
  yield* sql`
    insert into sensor_latest (sensor_id, metric_id, time, value)
    select distinct on (sensor_id, metric_id) sensor_id, metric_id, time, value
    from sensor_data
    order by sensor_id, metric_id, time desc`
  yield* sql`
    create function sensor_latest_from_rows() returns trigger language plpgsql as $$
    begin
      insert into sensor_latest (sensor_id, metric_id, time, value)
      select distinct on (sensor_id, metric_id) sensor_id, metric_id, time, value
      from written_rows
      order by sensor_id, metric_id, time desc
      on conflict (sensor_id, metric_id) do update set time = excluded.time, value = excluded.value
      where excluded.time >= sensor_latest.time;
      return null;
    end $$`
  yield* sql`
    create trigger sensor_latest_after_insert after insert on sensor_data
    referencing new table as written_rows
    for each statement execute function sensor_latest_from_rows()`
  yield* sql`
    create trigger sensor_latest_after_update after update on sensor_data
    referencing new table as written_rows
    for each statement execute function sensor_latest_from_rows()`
  yield* sql`
    alter table sensor_data set (
      timescaledb.compress,
      timescaledb.compress_segmentby = 'sensor_id, metric_id',
      timescaledb.compress_orderby = 'time'
    )`
})
