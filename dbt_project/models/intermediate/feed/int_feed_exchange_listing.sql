-- Technology exchange listings (chào bán / chào mua) as national records
-- (feed_exchange_listing), keyed `<exchange>:<listing_id>` (the exchange's source id: listing
-- ids are per exchange). Province: the listing's own today, else its exchange's, else its
-- supplier's (dim_organisation), else none (feed_unplaced). Exchange codes in English.
with supplier as (
    select
        mention.source_id,
        mention.record_id,
        org.enterprise_code,
        org.province_code_current
    from {{ ref('bridge_organisation_mention') }} as mention
    inner join {{ ref('dim_organisation') }} as org
        on mention.organisation_key = org.organisation_key
    where mention.entity = 'listing' and mention.role = 'listing_supplier'
),

listing as (
    select
        fct.*,
        supplier.enterprise_code as supplier_mst,
        coalesce(
            fct.province_code_current,
            fct.exchange_province_code,
            supplier.province_code_current
        ) as feed_province_code
    from {{ ref('fct_exchange_listing') }} as fct
    left join supplier
        on fct.source_id = supplier.source_id and fct.listing_id = supplier.record_id
)

select
    listing.feed_province_code as province_code,
    listing.source_id || ':' || listing.listing_id as record_key,
    jsonb_build_object(
        'exchange', listing.source_id,
        'listing_id', listing.listing_id,
        'listing_type', listing.listing_type,
        'listing_object', {{ feed_exchange_code('listing_object', 'listing.listing_object') }},
        'title', listing.title,
        'research_field_code', listing.field,
        'price_from_vnd', listing.price_from_vnd,
        'price_to_vnd', listing.price_to_vnd,
        'supplier_mst', coalesce(listing.supplier_mst, listing.supplier_enterprise_code),
        'supplier_name', listing.supplier_name,
        'ip_status', {{ feed_exchange_code('ip_status', 'listing.ip_status') }},
        'ip_application_number', listing.ip_application_number,
        'status', {{ feed_exchange_code('listing_status', 'listing.status') }},
        'posted_date', listing.posted_date,
        'province_code', listing.feed_province_code,
        'province_code_recorded', listing.province_code,
        'recorded_units_date', listing.unit_date,
        'exchange_province_code', listing.exchange_province_code
    ) as payload,
    listing.source_id,
    listing.listing_id as record_id,
    listing.landed_id,
    listing.listing_key as warehouse_key
from listing
