{#- A version table (macros/versioned.sql) never keeps a version current while a higher version
    of the same record is visible: a version is superseded no later than the moment a higher one
    became visible or, when it arrived after the higher one (late, out of order), the moment it
    became visible itself. So at every build's cutoff the current version of a record is its
    highest visible version whatever order its versions were landed in, and a deletion is not
    undone by an older version landed after it. Fails with the key and the two versions. -#}
{% test current_version_is_highest(model, key) %}
with versions as (
    select
        {{ key }} as record_key,
        version,
        visible_at,
        superseded_at
    from {{ model }}
)

select
    lower_version.record_key,
    lower_version.version as lower_version,
    higher_version.version as higher_version,
    lower_version.superseded_at
from versions as lower_version
inner join versions as higher_version
    on
        lower_version.record_key = higher_version.record_key
        and lower_version.version < higher_version.version
where
    lower_version.superseded_at is null
    or lower_version.superseded_at
    > greatest(lower_version.visible_at, higher_version.visible_at)
{% endtest %}
