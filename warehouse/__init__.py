"""The storage layer: the warehouse file and how it is opened, the landing contract's layout, the tables
Python owns, the operational store and the published copy.

The domains (assets, quality, workitems, alerts), orchestration and cli import from here; this
package imports only config/ (settings, the billing month), so no cycle can form (tests/test_layering.py).
"""
