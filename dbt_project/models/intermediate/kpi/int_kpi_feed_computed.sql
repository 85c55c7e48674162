-- NB-P8 (001 §II.3, "7 specialised databases connected to the national platform"), from the
-- national feed's ledger: a province's national specialised databases (seed
-- national_feed_entities) with at least one record the national side acknowledged, connected by
-- the end of each year (cumulative), from the year its feed started (its first planned batch or
-- acknowledgement) to the as-of year. A province whose feed never started has no row (no data).
-- Years are those of Vietnam (Asia/Ho_Chi_Minh).
with entity_database as (
    select
        entity,
        national_database
    from {{ ref('national_feed_entities') }}
),

database_count as (
    select count(distinct national_database) as database_total
    from entity_database
),

-- When the national side first acknowledged a record of each province's entity: what it holds
-- now (feed_record_state), and the upserts of acknowledged batches it did not reject (a record
-- deleted or re-sent since does not undo the connection).
acknowledged as (
    select
        province_code,
        entity,
        acknowledged_at
    from {{ source('ops', 'feed_record_state') }}
    union all
    select
        batch.province_code,
        batch.entity,
        batch.acknowledged_at
    from {{ source('ops', 'feed_batch') }} as batch
    where
        batch.state = 'acknowledged'
        and exists (
            select 1
            from {{ source('ops', 'feed_batch_record') }} as batch_record
            where
                batch_record.idempotency_key = batch.idempotency_key
                and batch_record.content_digest is not null
                and not exists (
                    select 1
                    from {{ source('ops', 'feed_rejection') }} as rejection
                    where
                        rejection.idempotency_key = batch_record.idempotency_key
                        and rejection.entity = batch.entity
                        and rejection.record_key = batch_record.record_key
                )
        )
),

connected as (
    select
        acknowledged.province_code,
        entity_database.national_database,
        min(
            extract(year from acknowledged.acknowledged_at at time zone 'Asia/Ho_Chi_Minh')
        )::integer as first_year
    from acknowledged
    inner join entity_database
        on acknowledged.entity = entity_database.entity
    group by acknowledged.province_code, entity_database.national_database
),

started as (
    select
        province_code,
        min(first_year) as first_year
    from (
        select
            batch.province_code,
            extract(year from batch.planned_at at time zone 'Asia/Ho_Chi_Minh')::integer
                as first_year
        from {{ source('ops', 'feed_batch') }} as batch
        union all
        select
            connected.province_code,
            connected.first_year
        from connected
    ) as activity
    group by province_code
),

province_years as (
    select
        started.province_code,
        generate_series(
            started.first_year,
            greatest(started.first_year, extract(year from {{ kpi_as_of_date() }})::integer)
        ) as year  -- noqa: RF04
    from started
)

select
    province_years.province_code,
    province_years.year,
    'connected_specialised_databases' as measure,
    count(connected.national_database)::numeric as actual_value,
    count(connected.national_database)::numeric as numerator,
    null::numeric as denominator,
    count(connected.national_database) || ' of ' || max(database_count.database_total)
    || ' national specialised databases with records acknowledged by the national STI platform'
    || ' by the end of ' || province_years.year
    || coalesce(
        ': ' || string_agg(connected.national_database, ', ' order by connected.national_database),
        ''
    ) as basis
from province_years
cross join database_count
left join connected
    on
        province_years.province_code = connected.province_code
        and province_years.year >= connected.first_year
group by province_years.province_code, province_years.year
