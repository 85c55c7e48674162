-- National organisation records, one per record_key (_feed__models.yml).
{{ config(indexes=feed_indexes()) }}
{{ feed_records('organisation', ref('int_feed_organisation')) }}
