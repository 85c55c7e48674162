-- Kinds of S&T task, keyed as the registry contract's task_type.
select
    code as task_type,
    name_en,
    name_vi,
    is_project
from {{ ref('code_task_types') }}
