-- One row per province code and period of validity, with its province on today's boundaries.
select
    md5(code || '|' || valid_from::text) as province_key,
    code,
    name,
    nullif(valid_from, '-infinity'::date) as valid_from,
    nullif(valid_to, 'infinity'::date) as valid_to,
    valid_to = 'infinity'::date as is_current,
    current_province_code,
    current_province_name,
    restatement_rule
from {{ ref('int_admin_provinces_dated') }}
