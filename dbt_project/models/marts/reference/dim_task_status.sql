-- S&T task statuses in life-cycle order, keyed as the registry contract's task status.
select
    code as task_status,
    name_en,
    name_vi,
    lifecycle_order,
    is_accepted,
    is_terminal
from {{ ref('code_task_statuses') }}
