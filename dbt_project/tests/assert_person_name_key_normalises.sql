-- person_name_key (macros/person_name.sql) gives one key for the spellings of a name that
-- registries send: case, spacing, NFD vs NFC, diacritics and đ. Any row returned is a miss.
select
    spelling,
    {{ person_name_key('spelling') }} as name_key
from (
    values
    ('Đặng Thị Hường'),
    ('  ĐẶNG   THỊ HƯỜNG '),
    (normalize('Đặng Thị Hường', nfd)),
    ('Dang Thi Huong'),
    ('dang thi huong')
) as spellings (spelling)
where {{ person_name_key('spelling') }} <> 'dang thi huong'
