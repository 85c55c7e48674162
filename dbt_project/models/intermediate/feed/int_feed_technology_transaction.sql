-- Technology transactions of the exchanges (giao dịch, hợp đồng chuyển giao công nghệ) as
-- national records (feed_technology_transaction), keyed `<exchange>:<transaction_id>`.
-- Province: the deal's (its exchange's, or on the national exchange its listing's), else its
-- seller's, else its buyer's (dim_organisation), else none (feed_unplaced).
with party as (
    select
        mention.source_id,
        mention.record_id,
        mention.role,
        org.enterprise_code,
        org.province_code_current
    from {{ ref('bridge_organisation_mention') }} as mention
    inner join {{ ref('dim_organisation') }} as org
        on mention.organisation_key = org.organisation_key
    where mention.entity = 'transaction' and mention.role in ('seller', 'buyer')
),

deal as (
    select
        fct.*,
        seller.enterprise_code as seller_mst,
        buyer.enterprise_code as buyer_mst,
        coalesce(
            fct.province_code_current,
            seller.province_code_current,
            buyer.province_code_current
        ) as feed_province_code
    from {{ ref('fct_exchange_transaction') }} as fct
    left join party as seller
        on
            fct.source_id = seller.source_id
            and fct.transaction_id = seller.record_id
            and seller.role = 'seller'
    left join party as buyer
        on
            fct.source_id = buyer.source_id
            and fct.transaction_id = buyer.record_id
            and buyer.role = 'buyer'
)

select
    deal.feed_province_code as province_code,
    deal.source_id || ':' || deal.transaction_id as record_key,
    jsonb_build_object(
        'exchange', deal.source_id,
        'transaction_id', deal.transaction_id,
        'listing_record_key', deal.source_id || ':' || deal.listing_id,
        'technology_name', deal.technology_name,
        'research_field_code', deal.field,
        'seller_mst', coalesce(deal.seller_mst, deal.seller_enterprise_code),
        'seller_name', deal.seller_name,
        'buyer_mst', coalesce(deal.buyer_mst, deal.buyer_enterprise_code),
        'buyer_name', deal.buyer_name,
        'value_vnd', deal.value_vnd,
        'form', {{ feed_exchange_code('transaction_form', 'deal.form') }},
        'signed_date', deal.signed_date,
        'certificate_number', deal.certificate_number,
        'province_code', deal.feed_province_code,
        'listing_province_code_recorded', deal.listing_province_code,
        'exchange_province_code', deal.exchange_province_code
    ) as payload,
    deal.source_id,
    deal.transaction_id as record_id,
    deal.landed_id,
    deal.transaction_key as warehouse_key
from deal
