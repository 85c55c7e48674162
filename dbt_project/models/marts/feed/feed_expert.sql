-- National expert records, one per record_key (_feed__models.yml).
{{ config(indexes=feed_indexes()) }}
{{ feed_records('expert', ref('int_feed_expert')) }}
