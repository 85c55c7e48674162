{#- The national feed (issue 15): one feed model per national entity (models/marts/feed,
    seed national_feed_entities), read by the publisher (connectors/national_feed.py).

    Each entity has an ephemeral model int_feed_<entity> (models/intermediate/feed) with its
    candidate records: province_code (today's province that feeds the record; null when none
    is known), record_key (null when the record has no national key), payload (the national
    record), source_id / record_id / landed_id (where to fix it) and warehouse_key (the
    warehouse's own key of the record, to name it in feed_unplaced). feed_<entity> is
    `{{ feed_records('<entity>', ref('int_feed_<entity>')) }}`: the placed, keyed candidates, one
    per record_key, with the digest; feed_unplaced lists the others. -#}

{#- The feed model's columns (the shared tail): exactly those of the national feed design. A
    record_key held by several candidates (e.g. the same IP application in two registries)
    is fed once, from the candidate of feed_precedence; the others are listed in feed_unplaced.
    The digest is the SHA-256 of the payload's text: jsonb's text form is canonical (keys
    sorted, no insignificant white space), so the digest changes only when the record does. -#}
{% macro feed_records(entity, candidates) -%}
    select distinct on (candidate.record_key)
        candidate.province_code::text as province_code,
        {{ kpi_literal(entity) }}::text as entity,
        candidate.record_key::text as record_key,
        candidate.payload::jsonb as payload,
        {{ feed_digest('candidate.payload') }} as content_digest,
        candidate.source_id::text as source_id,
        candidate.record_id::text as record_id,
        candidate.landed_id::bigint as landed_id
    from {{ candidates }} as candidate
    where candidate.province_code is not null and candidate.record_key is not null
    order by candidate.record_key, {{ feed_precedence('candidate') }}
{%- endmacro %}

{#- Which candidate of a record_key is fed: the latest landed, then the smallest warehouse key
    (a total order, so the choice is the same in every build). -#}
{% macro feed_precedence(alias) -%}
    {{ alias }}.landed_id desc nulls last, {{ alias }}.warehouse_key
{%- endmacro %}

{#- content_digest of a payload (the spec's formula; the intake treats it as an opaque version). -#}
{% macro feed_digest(payload) -%}
    encode(sha256(convert_to(({{ payload }})::text, 'UTF8')), 'hex')
{%- endmacro %}

{#- The order-independent checksum of a set of records, as the national intake computes it: the
    sum of the first 15 hex digits of sha256(record_key ':' content_digest), as numeric (a
    bigint sum would overflow past ~8 million records); 0 for no records. -#}
{% macro feed_checksum(record_key, content_digest) -%}
    coalesce(sum(
        ('x' || left(encode(sha256(convert_to(
            {{ record_key }} || ':' || {{ content_digest }}, 'UTF8'
        )), 'hex'), 15))::bit(60)::bigint
    ), 0)::numeric
{%- endmacro %}

{#- Indexes of a feed model: its key, and the publisher's read (one province, by key). -#}
{% macro feed_indexes() -%}
    {{ return([
        {'columns': ['record_key'], 'unique': true},
        {'columns': ['province_code', 'record_key']},
    ]) }}
{%- endmacro %}

{#- The pseudonymous key of a person known only by name (a task's principal investigator):
    ops.pseudonym('name', the name without its leading academic titles — "GS.TS.", "ThS." —
    normalised like experts' names). Namesakes share it; it is not an expert_key (those are keyed
    on the citizen id, or name and birth year), so it links the person's tasks, not their expert
    record. -#}
{% macro feed_person_key(name) -%}
    ops.pseudonym(
        'name',
        nullif({{ person_name_key(
            "regexp_replace(" ~ name ~ ", '^([^[:space:].]+\\.[[:space:]]*)+', '')"
        ) }}, '')
    )
{%- endmacro %}

{#- Payload fields that hold codes, not personal data, however they look: enterprise codes (MST,
    ten digits, like a phone number) and keys (pseudonymous 64-hex keys, national record keys).
    The personal-data test (no_personal_data_in_payload) skips them; every other string value
    of every payload is scanned with ops.personal_data_in. -#}
{% macro feed_code_field_pattern() -%}
    {{ return('(^|_)mst$|_key$') }}
{%- endmacro %}

{#- The exchanges' Vietnamese codes (exchange API v1) as the national English codes; a code
    without a mapping is passed on unchanged (the accepted_values tests of the feed flag it). -#}
{% macro feed_exchange_code(kind, expr) -%}
    {%- set codes = {
        'listing_object': {
            'cong_nghe': 'technology', 'thiet_bi': 'equipment', 'giai_phap': 'technical_solution',
        },
        'ip_status': {
            'chua_dang_ky': 'not_filed', 'da_nop_don': 'filed', 'da_cap_van_bang': 'granted',
            'khong_ap_dung': 'not_applicable',
        },
        'listing_status': {
            'dang_chao': 'open', 'dang_dam_phan': 'negotiating', 'da_giao_dich': 'transacted',
            'het_han': 'expired',
        },
        'transaction_form': {
            'chuyen_giao': 'transfer', 'li_xang': 'licence', 'mua_ban_thiet_bi': 'equipment_sale',
            'gop_von_bang_cong_nghe': 'capital_contribution',
        },
    } -%}
    case {{ expr }}
        {%- for code, national in codes[kind].items() %}
        when {{ kpi_literal(code) }} then {{ kpi_literal(national) }}
        {%- endfor %}
        else {{ expr }}
    end
{%- endmacro %}

{#- The national entities (seed national_feed_entities; the singular test
    assert_national_feed_entities_match_seed keeps the two equal): models that read every feed
    model list them here, since refs must be known when the project is parsed. -#}
{% macro national_feed_entity_names() -%}
    {{ return([
        'st_task', 'result_application', 'organisation', 'expert', 'ip_right', 'technology',
        'technology_demand', 'exchange_listing', 'technology_transaction', 'innovation_project',
        'innovation_survey', 'capability_assessment',
    ]) }}
{%- endmacro %}

{#- What to do about a difference between the published feed and the national side's
    acknowledged state, per kind (the same words as connectors/national_reconcile.py). -#}
{% macro feed_resolution(kind) -%}
    {%- set texts = {
        'not_sent': 'run the national feed (the national_feed DAG, or `make feed`)',
        'changed': 'run the national feed: the acknowledged version is older',
        'tombstone_pending': 'run the national feed: the record is no longer published',
        'rejected': 'fix it at the source (`make quarantine` gives the national reason); it is'
            ~ ' sent again once it changes',
    } -%}
    {{ return(texts[kind]) }}
{%- endmacro %}
