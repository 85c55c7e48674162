{#- A national record (jsonb) must hold no personal data in clear (Decree 13/2023/NĐ-CP): every
    string value, nested ones included, is scanned with the quality gate's own patterns
    (ops.personal_data_in: citizen ID, phone number, e-mail address). Fields that hold codes
    however they look (enterprise codes, pseudonymous and record keys: feed_code_field_pattern)
    are skipped; their own tests check their format. Returns the record and what was found. -#}
{% test no_personal_data_in_payload(model, column_name) %}
select
    record_key,
    ops.personal_data_in(
        {{ column_name }},
        array(
            select field_name
            from jsonb_object_keys({{ column_name }}) as field_name
            where field_name ~ '{{ feed_code_field_pattern() }}'
        )
    ) as personal_data_found
from {{ model }}
where
    ops.personal_data_in(
        {{ column_name }},
        array(
            select field_name
            from jsonb_object_keys({{ column_name }}) as field_name
            where field_name ~ '{{ feed_code_field_pattern() }}'
        )
    ) is not null
{% endtest %}
