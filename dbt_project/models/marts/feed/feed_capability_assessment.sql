-- National capability_assessment records, one per record_key (_feed__models.yml).
{{ config(indexes=feed_indexes()) }}
{{ feed_records('capability_assessment', ref('int_feed_capability_assessment')) }}
