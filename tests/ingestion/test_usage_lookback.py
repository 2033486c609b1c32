"""Usage duplicates across months (assets/usage_lookback.py), in-process on the golden October.

October is ingested, then a November day lands records that repeat October's ids; the usage
assets of November are materialized on the same warehouse. The October records repeated are
found by the test in the golden Parquet itself. Closes through the command are in
tests/test_cross_month_duplicates.py.
"""

from datetime import date, datetime, timezone

import duckdb
import numpy as np
import pyarrow.parquet as pq

from assets.usage_lookback import in_sorted, union_sorted
from tests.ingestion.conftest import checks, file_loads, materialize, quarantined, usage_row

UTC = timezone.utc
NOVEMBER = "2026-11-01"
NOV_FILE = "usage/dt=2026-11-03/part-0.parquet"
NOV_START = datetime(2026, 11, 3, 5, tzinfo=UTC)


def _october_records(ws) -> list[tuple[str, int, dict]]:
    """(file, row, record) of every golden October record, in (folder, file name, row) order."""
    out = []
    for path in sorted((ws.landing / "usage").glob("dt=2026-10-*/*.parquet")):
        rel = path.relative_to(ws.landing).as_posix()
        out += [(rel, i + 1, r) for i, r in enumerate(pq.read_table(path).to_pylist())]
    return out


def _hash(event_ids: list[str]) -> set[int]:
    con = duckdb.connect()
    con.execute("CREATE TABLE ids (event_id VARCHAR)")
    con.executemany("INSERT INTO ids VALUES (?)", [[e] for e in event_ids])
    return {h for (h,) in con.execute("SELECT hash(event_id, reverse(event_id)) FROM ids").fetchall()}


def _index(ws, month: str) -> list[int]:
    return [h for (h,) in ws.query("SELECT event_hash FROM raw.usage_event_index WHERE billing_month = ?",
                                   [date.fromisoformat(month)])]


def test_the_index_holds_each_accepted_id_once_in_hash_order_and_a_rerun_replaces_it(golden):
    bad = usage_row("oct-bad-interval", end=datetime(2026, 10, 20, 5, tzinfo=UTC))  # quarantined: not accepted
    golden.write_usage("usage/dt=2026-10-20/part-7-bad.parquet", [bad])
    assert materialize(golden).success
    records = _october_records(golden)
    accepted_ids = {r["event_id"] for _, _, r in records if r["event_id"] != "oct-bad-interval"}
    index = _index(golden, "2026-10-01")
    assert len(index) == len(accepted_ids) == 2665  # 2,774 rows read: 109 re-delivered on 2026-10-15, 1 bad
    assert len(records) == 2775
    assert set(index) == _hash(sorted(accepted_ids))
    assert len(set(index)) == len(index)  # each hash once: a batch appends only the hashes the month lacked
    assert materialize(golden).success  # a re-run (or restatement) replaces the month's rows
    assert _index(golden, "2026-10-01") == index


def test_a_november_record_repeating_an_october_id_is_conflicting_and_names_octobers_delivery(golden):
    assert materialize(golden).success
    records = _october_records(golden)
    file, row, first = next(x for x in records if x[2]["customer_id"] == "c002")
    eid = first["event_id"]
    golden.write_usage(NOV_FILE, [
        usage_row(eid, start=NOV_START),                       # October's id, content of November
        usage_row("nov-own-1", start=NOV_START),
        usage_row(eid, start=NOV_START),                       # the same again: not a re-delivery of row 1
        usage_row(eid, customer="c999", start=NOV_START),      # a row rule applies first
    ])
    result = materialize(golden, partition=NOVEMBER)
    assert result.success
    detail = f"event_id {eid} first accepted in 2026-10 in {file} row {row}"
    assert [r[:5] for r in quarantined(golden, "usage") if r[0] == NOV_FILE] == [
        (NOV_FILE, 1, eid, "conflicting_duplicate", detail),
        (NOV_FILE, 3, eid, "conflicting_duplicate", detail),
        (NOV_FILE, 4, eid, "unknown_customer", "customer c999 is not in reference/customers.csv"),
    ]
    assert golden.query("SELECT count(*) FROM audit.redeliveries WHERE file = ?", [NOV_FILE]) == [(0,)]
    assert file_loads(golden, "usage", NOVEMBER) == {NOV_FILE: (4, 1, 0, 3)}
    assert golden.query("SELECT event_id FROM raw.usage_month") == [("nov-own-1",)]
    assert golden.query("SELECT sum(records) FROM raw.usage_daily") == [(1,)]
    assert checks(result)["usage_rows_reconcile"] == (True, "all 1 files reconcile")
    assert set(_index(golden, NOVEMBER)) == _hash(["nov-own-1"])  # November keeps only what it accepted
    # October is untouched: its index and its quarantine
    assert len(_index(golden, "2026-10-01")) == 2665
    assert [r for r in quarantined(golden, "usage") if r[0].startswith("usage/dt=2026-10")] == []


def test_only_ids_october_accepted_count_and_a_hash_alone_is_not_enough(golden):
    quarantined_in_october = usage_row("oct-negative", quantity="-1")
    golden.write_usage("usage/dt=2026-10-20/part-7-bad.parquet", [quarantined_in_october])
    assert materialize(golden).success
    # A November id whose hash is planted in October's index (a writer connection between runs), though
    # October never landed it: a collision, which the read-back of October's files must not confirm.
    (planted,) = _hash(["nov-collides"])
    con = duckdb.connect(str(golden.warehouse))
    con.execute("INSERT INTO raw.usage_event_index VALUES (DATE '2026-10-01', ?)", [planted])
    con.close()
    golden.write_usage(NOV_FILE, [usage_row("oct-negative", start=NOV_START), usage_row("nov-collides", start=NOV_START)])
    result = materialize(golden, partition=NOVEMBER)
    assert result.success
    assert [r for r in quarantined(golden, "usage") if r[0] == NOV_FILE] == []
    assert golden.query("SELECT event_id FROM raw.usage_month ORDER BY 1") == [("nov-collides",), ("oct-negative",)]
    assert file_loads(golden, "usage", NOVEMBER) == {NOV_FILE: (2, 2, 0, 0)}


def test_a_first_month_has_no_lookback(golden):
    """November ingested on a warehouse where October never was: October's ids are November's to accept."""
    eid = _october_records(golden)[0][2]["event_id"]
    golden.write_usage(NOV_FILE, [usage_row(eid, start=NOV_START)])
    assert materialize(golden, partition=NOVEMBER).success
    assert golden.query("SELECT event_id FROM raw.usage_month") == [(eid,)]
    assert golden.query("SELECT count(*) FROM audit.quarantine") == [(0,)]


def test_the_sorted_set_operations_are_exact():
    rng = np.random.default_rng(71)
    a = np.sort(rng.integers(0, 2**64 - 1, 200_000, dtype=np.uint64, endpoint=True))
    b = np.sort(np.concatenate([rng.integers(0, 2**64 - 1, 150_000, dtype=np.uint64, endpoint=True), a[::997]]))
    a = np.sort(np.concatenate([a, a[::5003]]))  # repeats inside a folder, as its sorted hashes hold them
    shared = a[in_sorted(a, b)]
    assert np.array_equal(np.unique(shared), np.intersect1d(a, b)) and len(np.unique(shared)) == len(a[::997])
    assert np.array_equal(union_sorted(a, b, a[:10]), np.union1d(a, b))
    assert np.array_equal(in_sorted(b, a), np.isin(b, a))  # b's largest values lie past a's end too
    empty = np.empty(0, dtype=np.uint64)
    assert len(in_sorted(a, empty)) == len(a) and not in_sorted(a, empty).any() and len(in_sorted(empty, b)) == 0
    assert len(union_sorted()) == 0 and np.array_equal(union_sorted(empty, b), np.unique(b))
