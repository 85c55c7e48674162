-- Experts (chuyên gia), pseudonymous: one row per person across registries. No citizen id,
-- phone, e-mail or name: tests/assert_resolution_dim_expert_no_personal_data.sql checks.
select
    expert_key,
    match_rule,
    match_confidence,
    source_ids,
    registration_count,
    gender,
    birth_year,
    degree,
    academic_title,
    field_code,
    specialisation,
    organisation_name,
    organisation_key,
    province_code_current,
    first_registered_date,
    latest_registered_date,
    first_seen_at
from {{ ref('int_experts_resolved') }}
