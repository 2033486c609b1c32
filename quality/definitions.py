"""The controls of a close (docs/contract/controls.md) that judge assets of other domains, as one Definitions.

Each is an asset check on an asset of assets/ or workitems/, named by its control id; the checks an
asset declares itself travel with that asset instead. Merged in orchestration/definitions.py.
"""

import dagster as dg

from quality.amount_controls import amount_controls
from quality.delivery_checks import delivery_checks
from quality.invoice_controls import invoice_controls
from quality.landing_suites import landing_suite_checks
from quality.payment_controls import payment_controls
from quality.reference_checks import reference_checks

defs = dg.Definitions(
    asset_checks=[*reference_checks, *delivery_checks, *landing_suite_checks, invoice_controls, amount_controls,
                  *payment_controls],
)
