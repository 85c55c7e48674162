-- National technology_transaction records, one per record_key (_feed__models.yml).
{{ config(indexes=feed_indexes()) }}
{{ feed_records('technology_transaction', ref('int_feed_technology_transaction')) }}
