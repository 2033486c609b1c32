"""The warehouse's own layer: the landing contract's layout and the tables Python owns.

Everything else (assets, quality, orchestration, cli, synthetic) imports from
here; this package imports nothing of the project, so no cycle can form.
"""
