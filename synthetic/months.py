"""Month arithmetic on epoch seconds, shared by every synthetic module.

The generator counts months as ordinals from 2020-01 (ordinal 0) so that a
month can key a random stream and index arrays; all instants are integer
seconds since the Unix epoch in UTC (numpy arrays of them, never datetimes, so
that nothing is a Python loop per row).
"""
from __future__ import annotations

import datetime as dt

import numpy as np

HOUR = 3600
DAY = 86400
UTC = dt.timezone.utc
EPOCH_2020 = int(dt.datetime(2020, 1, 1, tzinfo=UTC).timestamp())


def month_ordinal(year: int, month: int) -> int:
    """Months since 2020-01 (2020-01 is 0)."""
    return (year - 2020) * 12 + (month - 1)


def ordinal_year_month(ordinal: int) -> tuple[int, int]:
    """(year, month) of a month ordinal."""
    return 2020 + ordinal // 12, ordinal % 12 + 1


def month_start(ordinal: int) -> int:
    """Epoch seconds of 00:00 UTC on the first day of the month."""
    year, month = ordinal_year_month(ordinal)
    return int(dt.datetime(year, month, 1, tzinfo=UTC).timestamp())


def date_midnight(day: dt.date) -> int:
    """Epoch seconds of 00:00 UTC on ``day``."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def iso_utc(seconds) -> list[str]:
    """Epoch seconds as contract timestamps (``YYYY-MM-DDTHH:MM:SSZ``), vectorised."""
    text = np.datetime_as_string(np.asarray(seconds, dtype="int64").astype("datetime64[s]"), unit="s")
    return [x + "Z" for x in text.tolist()]


def iso_date(seconds: int) -> str:
    """Epoch seconds as an ISO date (``YYYY-MM-DD``, UTC)."""
    return dt.datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")
