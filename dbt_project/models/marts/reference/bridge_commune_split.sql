-- Old commune → every new commune it went to in the 2025 reform, with an equal allocation
-- weight (1/n) for analysts who apportion an old commune's counts over its new communes; the
-- reference data has no population or area shares to weight by.
select
    md5(old_commune_code || '|' || old_valid_from::text) as old_commune_key,
    md5(new_commune_code || '|' || new_valid_from::text) as new_commune_key,
    old_commune_code,
    old_commune_name,
    old_province_code,
    new_commune_code,
    new_commune_name,
    new_province_code,
    merge_type,
    effective_date,
    candidate_count,
    allocation_weight,
    keeps_old_name,
    reuses_old_code,
    is_successor,
    restatement_rule
from {{ ref('int_admin_commune_split_candidates') }}
