-- The national entities the feed's marts read (macro national_feed_entity_names) are exactly
-- those of the seed national_feed_entities, which the publisher delivers.
with listed as (
    select listed_entity.entity
    from (
        values
        {%- for entity in national_feed_entity_names() %}
            ({{ kpi_literal(entity) }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as listed_entity (entity)
),

seeded as (
    select entity
    from {{ ref('national_feed_entities') }}
)

select
    coalesce(listed.entity, seeded.entity) as entity,
    case
        when listed.entity is null then 'in the seed, not in national_feed_entity_names()'
        else 'in national_feed_entity_names(), not in the seed'
    end as problem
from listed
full outer join seeded
    on listed.entity = seeded.entity
where listed.entity is null or seeded.entity is null
