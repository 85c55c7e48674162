-- National innovation_survey records, one per record_key (_feed__models.yml).
{{ config(indexes=feed_indexes()) }}
{{ feed_records('innovation_survey', ref('int_feed_innovation_survey')) }}
