{#- Matching key of an organisation's name: the same organisation written differently by two
    sources gets the same key. Steps, in order:
    1. case and diacritics: NFD, then drop the combining marks (tones, vowel marks) and map
       đ/Đ → d, then lower() (only ASCII is left, so lower() is safe on C-locale servers).
       This equals NFC + ops.lower_vi + translate() of every marked vowel (same result on all
       6,084 distinct organisation names of the demo data) at a sixth of the cost, which
       counts on millions of mentions;
    2. punctuation, other symbols and spaces → two spaces, so that every word is wrapped in
       spaces of its own ("Co., Ltd", "KH&CN");
    3. drop legal-form words (organisation_legal_forms()) standing as whole words anywhere,
       adjacent ones too: a lone "co" stays ("Cơ khí" is "co khi" once unmarked), and
       "chi nhánh" stays: a branch is a unit of its own (its own code NNNNNNNNNN-NNN), not its
       parent;
    4. collapse spaces; null when nothing is left.
    About 18 µs a name on one core (1 million names in 18 s; the NFC + lower_vi + translate
    version with \m...\M word boundaries took 91 s). Kept to few nested calls: sqlfluff's
    parser has a depth limit. -#}
{% macro organisation_name_key(expr) -%}
    {%- set forms = [] -%}
    {%- for form in organisation_legal_forms() -%}
        {%- do forms.append(form | replace(' ', '  ')) -%}
    {%- endfor -%}
    nullif(btrim(regexp_replace(regexp_replace(
        ' ' || regexp_replace(
            lower(translate(
                regexp_replace(normalize({{ expr }}, nfd), '[\u0300-\u036f]+', '', 'g'),
                'đĐ',
                'dd'
            )),
            '[^a-z0-9]+', '  ', 'g'
        ) || ' ',
        ' ({{ forms | join("|") }}) ', ' ', 'g'),
        ' +', ' ', 'g')), '')
{%- endmacro %}

{#- Legal-form words as they read once unmarked, longest first: công ty, cty, ctcp, trách
    nhiệm hữu hạn, tnhh, một thành viên, mtv, hai thành viên trở lên, cổ phần, cp, jsc,
    co. ltd, ltd, doanh nghiệp tư nhân, dntn, hợp tác xã, htx, tập đoàn, and hợp danh
    (partnership, the other form of the Law on Enterprises). -#}
{% macro organisation_legal_forms() -%}
    {{ return([
        'hai thanh vien tro len', 'trach nhiem huu han', 'doanh nghiep tu nhan', 'mot thanh vien',
        'hop tac xa', 'cong ty', 'co phan', 'hop danh', 'tap doan', 'co ltd', 'ctcp', 'tnhh',
        'dntn', 'cty', 'mtv', 'jsc', 'ltd', 'htx', 'cp',
    ]) }}
{%- endmacro %}

{#- The organisation a fact's record mentions in `role` (int_organisations_resolved's match):
    a left join on bridge_organisation_mention; select `<as_alias>.organisation_key`. -#}
{% macro join_organisation(alias, entity, role, as_alias) -%}
    left join {{ ref('bridge_organisation_mention') }} as {{ as_alias }}
        on
            {{ alias }}.source_id = {{ as_alias }}.source_id
            and {{ alias }}.record_id = {{ as_alias }}.record_id
            and {{ as_alias }}.entity = '{{ entity }}'
            and {{ as_alias }}.role = '{{ role }}'
{%- endmacro %}
