"""The billing month, one type from the command to dbt's vars.

A close names its month as `YYYY-MM` (`billops close --month 2026-10`), Dagster partitions by the
first day (`2026-10-01`, config/partitions.py), the warehouse keys tables by that date and dbt
reads the period as `[period_start, period_end)`. `BillingMonth` is all four at once, so no
module slices `month[:7]` or appends `-01` to turn one spelling into another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

KEY_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, order=True)
class BillingMonth:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month {self.month} of {self.year} is not 1 to 12")

    @classmethod
    def parse(cls, key: str) -> BillingMonth:
        """'2026-10' → October 2026; ValueError naming the text otherwise."""
        match = KEY_PATTERN.match(key.strip()) if isinstance(key, str) else None
        if not match:
            raise ValueError(f"{key!r} is not a month in the form YYYY-MM")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def from_partition_key(cls, partition_key: str) -> BillingMonth:
        """'2026-10-01' (Dagster's monthly partition key) → October 2026."""
        return cls.of(date.fromisoformat(partition_key))

    @classmethod
    def of(cls, day: date | datetime) -> BillingMonth:
        """The month a day (or instant) falls in."""
        return cls(day.year, day.month)

    @property
    def start(self) -> date:
        """The first day, inclusive."""
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        """The first day of the next month: the period's end, exclusive."""
        return self.next().start

    @property
    def key(self) -> str:
        """'YYYY-MM', as the command and every message name it."""
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def partition_key(self) -> str:
        """'YYYY-MM-01', Dagster's partition key of the month."""
        return f"{self.key}-01"

    def next(self) -> BillingMonth:
        return BillingMonth(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> BillingMonth:
        return BillingMonth(self.year - (self.month == 1), 12 if self.month == 1 else self.month - 1)

    def __str__(self) -> str:
        return self.key
