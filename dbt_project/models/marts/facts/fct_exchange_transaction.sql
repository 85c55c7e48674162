{{ config(materialized="view") }}

-- Current deals of the technology exchanges; a cancelled deal (da_huy) is out. A deal carries
-- no province of its own: it is counted in the province of its exchange, and a deal on the
-- national exchange in the province of the listing it came from (null without one).
select
    deal.transaction_key,
    deal.source_id,
    deal.transaction_id,
    deal.listing_id,
    listing.listing_key,
    deal.technology_name,
    deal.field,
    deal.seller_name,
    deal.seller_enterprise_code,
    deal.buyer_name,
    deal.buyer_enterprise_code,
    deal.value_vnd,
    deal.form,
    deal.signed_date,
    extract(year from deal.signed_date)::integer as signed_year,
    deal.certificate_number,
    exchange.province_code as exchange_province_code,
    listing.province_code as listing_province_code,
    coalesce(exchange.province_code, prov.current_province_code) as province_code_current,
    deal.version,
    deal.source_updated_at,
    deal.batch_id,
    deal.landed_id,
    deal.visible_at
from {{ ref('int_exchange_transactions_versioned') }} as deal
-- The listing as currently known, withdrawn or not (its province does not change with that).
left join {{ ref('int_exchange_listings_versioned') }} as listing
    on
        deal.source_id = listing.source_id
        and deal.listing_id = listing.record_id
        and {{ current_versions_incl_deleted('listing') }}
-- The province the exchange serves, as the source catalogue declares it.
left join {{ ref('dim_source') }} as exchange
    on deal.source_id = exchange.source_id
left join {{ ref('dim_province') }} as prov
    on listing.province_code = prov.code and {{ valid_on('prov', 'listing.unit_date') }}
where {{ current_versions('deal') }}
