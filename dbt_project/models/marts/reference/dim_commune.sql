-- One row per commune code and period of validity, with its restatement on today's boundaries.
select
    md5(c.code || '|' || c.valid_from::text) as commune_key,
    c.code,
    c.name,
    c.province_code,
    prov.name as province_name,
    nullif(c.valid_from, '-infinity'::date) as valid_from,
    nullif(c.valid_to, 'infinity'::date) as valid_to,
    c.valid_to = 'infinity'::date as is_current,
    c.current_commune_code,
    cur.name as current_commune_name,
    c.current_province_code,
    cur_prov.name as current_province_name,
    c.restatement_rule,
    c.candidate_count
from {{ ref('int_admin_communes_dated') }} as c
-- The province of the commune's own period (an old commune's province is an old province).
left join {{ ref('int_admin_provinces_dated') }} as prov
    on c.province_code = prov.code and {{ valid_on('prov', 'c.valid_from') }}
left join {{ ref('int_admin_communes_dated') }} as cur
    on c.current_commune_code = cur.code and cur.valid_to = 'infinity'::date
left join {{ ref('int_admin_provinces_dated') }} as cur_prov
    on c.current_province_code = cur_prov.code and cur_prov.valid_to = 'infinity'::date
