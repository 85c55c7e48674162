-- National st_task records, one per record_key (_feed__models.yml).
{{ config(indexes=feed_indexes()) }}
{{ feed_records('st_task', ref('int_feed_st_task')) }}
