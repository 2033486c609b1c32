"""The billing month: the one partitioning of everything billed by month."""

import dagster as dg

# Months from 2020 on; end_offset lets a month be closed up to a year ahead of
# the calendar (synthetic and test months are often in the future).
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date="2020-01-01", end_offset=12)
