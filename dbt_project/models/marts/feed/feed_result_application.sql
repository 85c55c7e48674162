-- National result_application records, one per record_key (_feed__models.yml).
{{ config(indexes=feed_indexes()) }}
{{ feed_records('result_application', ref('int_feed_result_application')) }}
