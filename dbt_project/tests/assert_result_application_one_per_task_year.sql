-- One current report per task and report year in each source (the contract's grain; the
-- gate checks each report alone, not their uniqueness).
select
    source_id,
    task_code,
    report_year,
    count(*) as reports
from {{ ref('fct_result_application') }}
group by source_id, task_code, report_year
having count(*) > 1
