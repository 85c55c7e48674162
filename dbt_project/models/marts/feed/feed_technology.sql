-- National technology records, one per record_key (_feed__models.yml).
{{ config(indexes=feed_indexes()) }}
{{ feed_records('technology', ref('int_feed_technology')) }}
