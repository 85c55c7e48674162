-- VSIC divisions by version. Sections only for VSIC 2018, whose 21 sections A–U are those of
-- ISIC Rev. 4; VSIC 2025 regroups them after ISIC Rev. 5 and its list is not in the seeds.
select
    d.vsic_version || '-' || d.division_code as vsic_key,
    d.vsic_version,
    d.division_code,
    s.section_code,
    s.section_name_en,
    case d.vsic_version
        when '2018' then 'QĐ 27/2018/QĐ-TTg'
        when '2025' then 'QĐ 36/2025/QĐ-TTg'
    end as vsic_decision
from {{ ref('vsic_divisions') }} as d
left join {{ ref('vsic_sections') }} as s
    on
        d.vsic_version = s.vsic_version
        and d.division_code between s.division_from and s.division_to
