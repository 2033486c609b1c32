"""The work-item queue's part of a close: `marts/work_items`, raised by the close's own run (decisions #59).

Merged in orchestration/definitions.py.
"""

import dagster as dg

from workitems.asset import workitems_assets

defs = dg.Definitions(assets=[*workitems_assets])
