-- An organisation's enterprise code is a key only with a valid check digit (ops.mst_valid),
-- and a branch's parent is the first ten digits of its code.
select
    organisation_key,
    enterprise_code,
    parent_enterprise_code
from {{ ref('dim_organisation') }}
where
    (enterprise_code is not null and not ops.mst_valid(enterprise_code))
    or (parent_enterprise_code is not null and parent_enterprise_code != left(enterprise_code, 10))
