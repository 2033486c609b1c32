"""Seeded random streams: one per purpose, so a new draw in one never shifts another.

``generate`` keys its streams on ``(seed, customers, purpose, ...)``: the same
business (seed and size) gives the same customers and resources in every month,
and each month, day or chunk has its own stream below that. ``simulate`` keys
on ``(seed, SIMULATE_STREAM, year, month, part)``; ``SIMULATE_STREAM`` keeps its
draws apart from the generator's even for equal seeds. The purpose numbers are
part of the output: changing one changes the bytes of every file it feeds.
"""
from __future__ import annotations

import numpy as np

# generate: purposes (the third key)
CUSTOMER_BASE = 1       # the customer pool (month independent)
CORE_RESOURCES = 2      # long-lived resources (month independent)
ACCOUNT_RESOURCES = 3   # transfer, functions, inference, support plans
EPHEMERAL_RESOURCES = 4  # + birth month: short-lived resources
SIGNUP_CREDITS = 5      # promotional credits granted at sign-up
GOODWILL_CREDITS = 6    # + month: goodwill credits granted during a month
USAGE_CHUNK = 8         # (seed, day ordinal, chunk, 8): transfer and per-day usage levels
ANOMALY_PLAN = 9        # + month: which days get re-deliveries, late files, bad rows
ANOMALY_DAY = 10        # + month, day: which rows are held back, re-delivered, templated

# simulate: the stream key and its parts (the fifth key)
SIMULATE_STREAM = 0x5117
PAYMENTS = 1            # claims, payment outcomes, charges
REFUNDS_DISPUTES = 2
TICKETS = 3


def generator_rng(*key: int) -> np.random.Generator:
    """The generator's stream for ``key`` = (seed, customers, purpose, ...)."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def simulator_rng(seed: int, year: int, month: int, part: int) -> np.random.Generator:
    """The simulator's stream for one part of one month."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), SIMULATE_STREAM, year, month, part]))


def take_distinct(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    """k distinct elements of ``pool`` (sorted), or all of them when there are fewer."""
    k = min(k, len(pool))
    return np.sort(rng.choice(pool, k, replace=False)) if k else pool[:0]
