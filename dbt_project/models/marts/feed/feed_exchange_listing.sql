-- National exchange_listing records, one per record_key (_feed__models.yml).
{{ config(indexes=feed_indexes()) }}
{{ feed_records('exchange_listing', ref('int_feed_exchange_listing')) }}
