-- Experts from provincial registries (registry API v1): every published version, typed, under a
-- pseudonymous key. Citizen id, phone and e-mail are read only to derive the pseudonym and
-- never leave this view.
select
    landed.landed_id,
    landed.batch_id,
    landed.source_id,
    landed.record_id,
    landed.version,
    landed.source_updated_at,
    landed.is_deleted,
    landed.extracted_at,
    landed.visible_at,
    -- Keyed hash computed in the database (ops.pseudonym): the same person gets the same
    -- pseudonym in every registry that sent the same citizen id (or name and birth year).
    case
        when nullif(btrim(landed.record ->> 'citizen_id'), '') is not null
            then ops.pseudonym('citizen_id', btrim(landed.record ->> 'citizen_id'))
        else ops.pseudonym(
            'name_birth_year',
            {{ person_name_key("landed.record ->> 'full_name'") }}
            || '|' || coalesce(landed.record ->> 'birth_year', '')
        )
    end as expert_pseudonym,
    case
        when nullif(btrim(landed.record ->> 'citizen_id'), '') is not null then 'citizen_id'
        else 'name_birth_year'
    end as pseudonym_basis,
    landed.record ->> 'gender' as gender,
    (landed.record ->> 'birth_year')::integer as birth_year,
    landed.record ->> 'degree' as degree,
    landed.record ->> 'academic_title' as academic_title,
    landed.record ->> 'field_code' as field_code,
    nullif(btrim(landed.record ->> 'specialisation'), '') as specialisation,
    nullif(btrim(landed.record ->> 'organisation_name'), '') as organisation_name,
    landed.record ->> 'province_code' as province_code,
    (landed.record ->> 'registered_date')::date as registered_date,
    landed.record ->> 'origin_registry' as origin_registry,
    -- The date the province code refers to, as the gate checks it.
    (landed.record ->> 'registered_date')::date as unit_date
from ({{ published_records('registry-api-v1', 'expert') }}) as landed
