-- Every published version of every expert record (see macros/versioned.sql).
{{ config(**versioned_config()) }}

select
    md5(stg.source_id || '|' || stg.record_id) as expert_key,
    stg.landed_id,
    stg.batch_id,
    stg.source_id,
    stg.record_id,
    stg.version,
    stg.source_updated_at,
    stg.is_deleted,
    stg.expert_pseudonym,
    stg.pseudonym_basis,
    stg.gender,
    stg.birth_year,
    stg.degree,
    stg.academic_title,
    stg.field_code,
    stg.specialisation,
    stg.organisation_name,
    stg.province_code,
    stg.registered_date,
    stg.origin_registry,
    stg.unit_date,
    {{ version_columns('stg') }}
from {{ ref('stg_registry__experts') }} as stg
where {{ not_yet_versioned('stg', 'expert') }}
