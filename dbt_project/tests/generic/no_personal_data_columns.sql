{#- A model about people must not have a column that holds personal data in clear (Decree
    13/2023/NĐ-CP): a column named like a citizen id, phone or e-mail fails. Reads the
    relation's columns from the catalogue. -#}
{% test no_personal_data_columns(model) %}
select column_name
from information_schema.columns
where
    table_schema = '{{ model.schema }}'
    and table_name = '{{ model.identifier }}'
    and column_name ~* '(citizen|cccd|cmnd|phone|mobile|email|e_mail)'
{% endtest %}
