-- The gate quarantines tasks that end before they start; none may reach the mart.
select
    st_task_key,
    start_date,
    end_date
from {{ ref('fct_st_task') }}
where end_date < start_date
