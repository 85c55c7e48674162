-- National innovation_project records, one per record_key (_feed__models.yml).
{{ config(indexes=feed_indexes()) }}
{{ feed_records('innovation_project', ref('int_feed_innovation_project')) }}
