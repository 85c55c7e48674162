-- National ip_right records, one per record_key (_feed__models.yml).
{{ config(indexes=feed_indexes()) }}
{{ feed_records('ip_right', ref('int_feed_ip_right')) }}
