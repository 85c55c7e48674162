{{ config(materialized="table", indexes=[
    {"columns": ["source_id", "record_id"]},
    {"columns": ["organisation_key"]},
]) }}

-- Which organisation each mention in a source record is: facts join it on (source_id, entity,
-- record_id, role) to get organisation_key.
select
    mention_key,
    source_id,
    entity,
    record_id,
    role,
    organisation_key,
    match_rule,
    match_confidence
from {{ ref('int_organisations_resolved') }}
