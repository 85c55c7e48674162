{#- Administrative units are effective-dated: a province or commune code means one unit until
    2025-06-30 and possibly another since 2025-07-01 (old commune codes were reused), so a fact
    resolves its codes with its own date. Join the dated intermediate models (or, from a
    published fact view, which may read only relations of its own build, dim_province and
    dim_commune, whose open ends are null) on the code and the record's date, never on the
    code alone:

        left join {{ ref('int_admin_provinces_dated') }} as prov
            on f.province_code = prov.code and {{ valid_on('prov', 'f.record_date') }}
        left join {{ ref('int_admin_communes_dated') }} as comm
            on f.commune_code = comm.code and {{ valid_on('comm', 'f.record_date') }}

    then prov.current_province_code / comm.current_commune_code restate the record on today's
    boundaries, prov.code / comm.code are the boundaries of its time. The join is an equi-join
    on the code plus a range filter on a table of a few thousand rows: a hash join that costs
    next to nothing on millions of facts (no per-row function, no correlated subquery).
    A record whose code was not valid on its date (e.g. 35 dated 2025-08-01) finds no row:
    leave it unresolved rather than guess. A null date finds no row either. Pass the date the
    record's address was written on, not a planned date: in the demo a Nam Định task (36,
    written 2025-03-17) has a planned start of 2025-08-28, when 36 no longer existed. -#}
{% macro valid_on(alias, date_expr) -%}
    ({{ date_expr }})::date between coalesce({{ alias }}.valid_from, '-infinity'::date)
    and coalesce({{ alias }}.valid_to, 'infinity'::date)
{%- endmacro %}

{#- The name of an administrative unit reduced for comparison across the 2025 reform: NFC,
    Vietnamese letters folded to ASCII (by translate, so independent of the database locale,
    whose lower() may leave accented capitals alone), lower case, the unit-kind prefix
    (Phường, Xã, Thị trấn, Đặc khu) dropped and spaces collapsed. "Thị trấn Bình Minh" and
    "Phường Bình Minh" compare equal. -#}
{% macro admin_unit_name_key(name_expr) -%}
    regexp_replace(
        btrim(regexp_replace(lower(translate(
            normalize({{ name_expr }}, nfc),
            'ÀÁÂÃÈÉÊÌÍÎÒÓÔÕÙÚÛÝàáâãèéêìíîòóôõùúûýĂăĔĕĨĩĬĭŎŏŨũŬŭŶŷƠơƯưṌṍṸṹẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹđĐ',
            'aaaaeeeiiioooouuuyaaaaeeeiiioooouuuyaaeeiiiioouuuuyyoouuoouuaaaaaaaaaaaaaaaaaaaaaaaaeeeeeeeeeeeeeeeeiiiioooooooooooooooooooooooouuuuuuuuuuuuuuyyyyyyyydd'
        )), '\s+', ' ', 'g')),
        '^(phuong|xa|thi tran|dac khu) ',
        ''
    )
{%- endmacro %}
