-- National technology_demand records, one per record_key (_feed__models.yml).
{{ config(indexes=feed_indexes()) }}
{{ feed_records('technology_demand', ref('int_feed_technology_demand')) }}
