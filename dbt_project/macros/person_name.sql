{#- Matching key of a person's name: the same person is written with other case, spacing,
    Unicode form or diacritics in different registries, so names are compared on NFC text,
    lowercased the Vietnamese way (ops.lower_vi), with diacritics removed (đ → d) and spaces
    collapsed. Used for the pseudonym of an expert without a citizen id. -#}
{% macro person_name_key(expr) -%}
    btrim(regexp_replace(
        translate(
            ops.lower_vi(normalize({{ expr }}, nfc)),
            'àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ',
            'aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyyd'
        ),
        '\s+', ' ', 'g'
    ))
{%- endmacro %}
