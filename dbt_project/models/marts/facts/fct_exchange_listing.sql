{{ config(materialized="view") }}

-- Current listings (offers and demands) of the technology exchanges; a withdrawn listing
-- (da_go) is out.
select
    listing.listing_key,
    listing.source_id,
    listing.listing_id,
    listing.listing_type,
    listing.listing_type_code,
    listing.listing_object,
    listing.title,
    listing.field,
    listing.price_from_vnd,
    listing.price_to_vnd,
    listing.supplier_name,
    listing.supplier_enterprise_code,
    listing.province_code,
    prov.current_province_code as province_code_current,
    exchange.province_code as exchange_province_code,
    listing.ip_status,
    listing.ip_application_number,
    listing.status,
    listing.posted_date,
    listing.unit_date,
    listing.version,
    listing.source_updated_at,
    listing.batch_id,
    listing.landed_id,
    listing.visible_at
from {{ ref('int_exchange_listings_versioned') }} as listing
left join {{ ref('dim_source') }} as exchange
    on listing.source_id = exchange.source_id
left join {{ ref('dim_province') }} as prov
    on listing.province_code = prov.code and {{ valid_on('prov', 'listing.unit_date') }}
where {{ current_versions('listing') }}
