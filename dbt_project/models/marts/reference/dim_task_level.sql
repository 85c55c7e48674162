-- Management levels of S&T tasks, keyed as the registry contract's task_level.
select
    code as task_level,
    name_en,
    name_vi,
    level_rank
from {{ ref('code_task_levels') }}
