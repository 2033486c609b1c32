"""What the generator copies from the contract rather than importing from billops.

The synthetic business plays the outside world (the provider's metering, Stripe, Zendesk, a BI
reader): it writes the landing zone as docs/contract/inputs.md describes it and reads what billops
publishes as docs/contract/published-interface.md describes it, and imports no production module
(tests/test_layering.py), so a change to billops can never quietly change the test data that
judges it. What it needs of the contract it keeps here, written again; tests/synthetic/
test_contract_copies.py fails when a copy and the product's version drift apart.
"""

from __future__ import annotations

# reference/<name>.csv → its columns, in the contract's order (docs/contract/inputs.md, "Reference files";
# billops's own copy: warehouse/landing.py REFERENCE_COLUMNS).
REFERENCE_COLUMNS: dict[str, list[str]] = {
    "customers": ["customer_id", "name", "email", "country", "region", "tax_id", "created_at", "closed_at",
                  "payment_method"],
    "price_book": ["sku", "product", "description", "model", "unit", "unit_price", "monthly_cap", "cap_hours",
                   "included_transfer_gib", "tiers", "effective_from", "effective_to"],
    "tax_rates": ["country", "region", "tax_name", "rate", "reverse_charge", "effective_from", "effective_to"],
    "credit_grants": ["grant_id", "customer_id", "amount", "kind", "granted_at", "expires_at", "reason"],
}
