"""Tests of the synthetic landing-data generator (small months, real values)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import USAGE_SCHEMA  # the contract's schema, independent of the generator

from synthetic.generate import generate

MONTH = "2026-10"
SEED = 11
N = 20

HEADERS = {
    "customers.csv": ["customer_id", "name", "email", "country", "region", "tax_id", "created_at",
                      "closed_at", "payment_method"],
    "price_book.csv": ["sku", "product", "description", "model", "unit", "unit_price", "monthly_cap",
                       "cap_hours", "included_transfer_gib", "tiers", "effective_from", "effective_to"],
    "tax_rates.csv": ["country", "region", "tax_name", "rate", "reverse_charge", "effective_from",
                      "effective_to"],
    "credit_grants.csv": ["grant_id", "customer_id", "amount", "kind", "granted_at", "expires_at",
                          "reason"],
}
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PLAIN_DEC = re.compile(r"^-?\d+(\.\d+)?$")
MONTH_START = datetime(2026, 10, 1, tzinfo=timezone.utc)
MONTH_END = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _read_csv(root: Path, name: str) -> tuple[list[str], list[dict]]:
    with open(root / "reference" / name, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames), list(r)


def _manifest(root: Path) -> list[dict]:
    p = root / "_truth" / "anomalies.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


def _ts(s: str) -> datetime:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def land(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("land_default")
    summary = generate(MONTH, N, SEED, root, progress=False)
    return root, summary


def _accepted_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "usage").glob("dt=*/*.parquet")
                  if p.name in ("part-0.parquet", "part-2-late.parquet"))


def test_summary_and_layout(land):
    root, s = land
    days = sorted(p.name for p in (root / "usage").iterdir())
    assert days == [f"dt=2026-10-{d:02d}" for d in range(1, 32)]
    for d in days:
        assert (root / "usage" / d / "part-0.parquet").exists()
    assert s["rows"] > 20 * 1000
    assert s["customers"] >= N
    assert s["bytes"] > 0 and s["files"] >= 4 + 31
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in (root / "usage").glob("dt=*/*.parquet"))
    assert total == s["rows"]


def test_reference_csv_columns_and_formats(land):
    root, _ = land
    for name, header in HEADERS.items():
        fields, rows = _read_csv(root, name)
        assert fields == header, name
        assert rows, name
    _, customers = _read_csv(root, "customers.csv")
    for c in customers:
        assert TS.match(c["created_at"]) and _ts(c["created_at"]) < MONTH_END
        assert c["closed_at"] == "" or (TS.match(c["closed_at"]) and _ts(c["closed_at"]) < MONTH_END)
        assert c["payment_method"] in ("card", "paypal", "none")
        assert c["country"] in ("US", "DE", "FR", "NL", "GB", "AU", "IN")
        assert (c["region"] != "") == (c["country"] == "US")
    # some sign up inside the month
    assert any(_ts(c["created_at"]) >= MONTH_START for c in customers)
    _, prices = _read_csv(root, "price_book.csv")
    for p in prices:
        assert DATE.match(p["effective_from"]) and (p["effective_to"] == "" or DATE.match(p["effective_to"]))
        for col in ("unit_price", "monthly_cap", "cap_hours", "included_transfer_gib"):
            assert p[col] == "" or PLAIN_DEC.match(p[col]), (col, p[col])
        if p["unit_price"]:
            assert -Decimal(p["unit_price"]).as_tuple().exponent <= 8
        if p["model"] == "graduated":
            tiers = json.loads(p["tiers"])
            assert tiers[-1]["up_to"] is None and all("unit_price" in t for t in tiers)
            assert p["unit_price"] == ""
        else:
            assert p["tiers"] == ""
        if p["model"] == "hourly_capped":
            assert p["cap_hours"] == "672" and p["monthly_cap"]
    models = {p["model"] for p in prices}
    assert models == {"hourly_capped", "unit", "transfer", "graduated", "flat_monthly"}
    _, taxes = _read_csv(root, "tax_rates.csv")
    keys = {(t["country"], t["region"]) for t in taxes}
    assert ("US", "NY") in keys and ("US", "CA") not in keys and ("US", "OR") not in keys
    assert {t["reverse_charge"] for t in taxes} == {"true", "false"}
    _, grants = _read_csv(root, "credit_grants.csv")
    ids = {c["customer_id"] for c in customers}
    for g in grants:
        assert g["customer_id"] in ids
        assert re.match(r"^\d+\.\d{2}$", g["amount"])
        assert TS.match(g["granted_at"]) and _ts(g["granted_at"]) < MONTH_END
        assert g["expires_at"] == "" or TS.match(g["expires_at"])
        assert g["kind"] in ("promo", "goodwill", "refund_credit")
    assert any(g["expires_at"] == "" for g in grants) and any(g["expires_at"] for g in grants)
    assert any(MONTH_START <= _ts(g["granted_at"]) < MONTH_END for g in grants)


def test_price_book_ranges_do_not_overlap_and_month_has_a_change(land):
    root, _ = land
    _, prices = _read_csv(root, "price_book.csv")
    by_sku: dict[str, list[tuple[date, date]]] = {}
    for p in prices:
        f = date.fromisoformat(p["effective_from"])
        t = date.fromisoformat(p["effective_to"]) if p["effective_to"] else date.max
        assert f < t
        by_sku.setdefault(p["sku"], []).append((f, t))
    for sku, ranges in by_sku.items():
        ranges.sort()
        for (f1, t1), (f2, t2) in zip(ranges, ranges[1:]):
            assert t1 <= f2, sku
        assert ranges[-1][1] == date.max, sku  # every SKU is priced today
    changed = [p for p in prices if p["effective_from"] == "2026-10-16"]
    assert len(changed) == 1 and changed[0]["model"] == "hourly_capped"
    assert any(p["sku"] == changed[0]["sku"] and p["effective_to"] == "2026-10-16" for p in prices)


def test_parquet_schema(land):
    root, _ = land
    for p in (root / "usage").glob("dt=*/*.parquet"):
        assert pq.read_schema(p).remove_metadata() == USAGE_SCHEMA, p


def test_accepted_records_follow_the_contract(land):
    root, _ = land
    con = duckdb.connect()
    files = [str(p) for p in _accepted_files(root)]
    con.execute(f"create table u as select * from read_parquet({files!r}, filename=true)")
    con.execute(f"create table c as select * from read_csv('{root}/reference/customers.csv', all_varchar=true)")
    con.execute(f"create table pb as select * from read_csv('{root}/reference/price_book.csv', all_varchar=true)")
    q = lambda s: con.execute(s).fetchone()[0]  # noqa: E731
    assert q("select count(*) from u") > 0
    assert q("""select count(*) from u where event_id is null or customer_id is null or resource_id is null
                or sku is null or region is null or quantity is null or quantity <= 0""") == 0
    assert q("select count(*) from u where end_time <= start_time or end_time - start_time > interval 1 hour") == 0
    assert q("select count(*) - count(distinct event_id) from u") == 0
    # in the folder's day and month
    assert q("""select count(*) from u where cast(start_time at time zone 'UTC' as date)
                <> cast(regexp_extract(filename, 'dt=([0-9-]+)', 1) as date)""") == 0
    assert q("select count(*) from u where start_time < '2026-10-01T00:00:00Z' or start_time >= '2026-11-01T00:00:00Z'") == 0
    # known customers, alive at the time
    assert q("select count(*) from u anti join c using (customer_id)") == 0
    assert q("""select count(*) from u join c using (customer_id)
                where start_time < cast(c.created_at as timestamptz)
                   or (c.closed_at is not null and end_time > cast(c.closed_at as timestamptz))""") == 0
    # priced on the start date
    assert q("""select count(*) from u where not exists (select 1 from pb where pb.sku = u.sku
                and cast(pb.effective_from as date) <= cast(u.start_time at time zone 'UTC' as date)
                and (pb.effective_to is null or cast(u.start_time at time zone 'UTC' as date) < cast(pb.effective_to as date)))""") == 0
    # account-level SKUs use the customer id; support is one record per day of quantity 1
    assert q("""select count(*) from u where sku in ('transfer-out-gib','functions-gib-s','inference-tokens',
                'support-developer','support-standard') and resource_id <> customer_id""") == 0
    assert q("""select count(*) from u where sku like 'support-%' and quantity <> 1""") == 0
    assert q("""select max(n) from (select count(*) n from u where sku like 'support-%'
                group by customer_id, sku, cast(start_time at time zone 'UTC' as date))""") in (None, 1)
    # one record per resource and hour for hourly resources
    assert q("""select max(n) from (select count(*) n from u group by resource_id, sku,
                date_trunc('hour', start_time))""") == 1
    # GiB-hour quantities = GiB x hours: volume quantities over a full hour are whole GiB
    assert q("""select count(*) from u where sku = 'volume-gib' and end_time - start_time = interval 1 hour
                and quantity <> round(quantity)""") == 0
    # realistic mix
    skus = {r[0] for r in con.execute("select distinct sku from u").fetchall()}
    assert "transfer-out-gib" in skus and "volume-gib" in skus
    assert any(s.startswith("droplet-") for s in skus)
    assert len([s for s in skus if s.startswith("droplet-")]) >= 3
    # fractional first/last hours exist (created or destroyed mid-hour)
    assert q("select count(*) from u where end_time - start_time < interval 1 hour and sku like 'droplet-%'") > 0


def test_manifest_entries_match_the_data(land):
    root, summary = land
    entries = [e for e in _manifest(root) if e["step"] == "generate" and e["month"] == MONTH]
    kinds = Counter(e["anomaly"] for e in entries)
    assert kinds == Counter(summary["anomalies"])
    reasons = {e["reason"] for e in entries if e["expect"] == "quarantine"}
    assert reasons == {"bad_schema", "bad_interval", "negative_quantity", "unknown_customer",
                       "outside_month", "conflicting_duplicate"}
    assert "no_price" not in reasons
    assert kinds["redelivery"] >= 1 and kinds["late_file"] >= 1
    assert {e["expect"] for e in entries} == {"dedupe", "accept", "quarantine"}
    _, customers = _read_csv(root, "customers.csv")
    known = {c["customer_id"] for c in customers}
    accepted = pa.concat_tables(pq.read_table(p) for p in _accepted_files(root))
    accepted_ids = set(accepted["event_id"].to_pylist())
    cache: dict[str, list[dict]] = {}

    def row(file: str, n: int) -> dict:
        if file not in cache:
            cache[file] = pq.read_table(root / file).to_pylist()
        return cache[file][n - 1]

    for e in entries:
        assert e["step"] == "generate" and e["month"] == MONTH
        if e["anomaly"] == "late_file":
            t = pq.read_table(root / e["file"])
            assert t.num_rows == e["rows"] > 0
            assert e["file"].endswith("part-2-late.parquet")
            continue
        r = row(e["file"], e["row_number"])
        assert r["event_id"] == e["event_id"]
        assert r["customer_id"] == e["customer_id"]
        if e["expect"] == "dedupe":
            orig = row(e["original_file"], e["original_row_number"])
            assert orig == r and e["original_file"] < e["file"]
            continue
        assert e["expect"] == "quarantine"
        reason = e["reason"]
        if reason == "conflicting_duplicate":
            orig = row(e["original_file"], e["original_row_number"])
            assert orig["event_id"] == r["event_id"] and orig != r
            assert e["original_file"] < e["file"]
            continue
        assert r["event_id"] is not None and r["event_id"] not in accepted_ids
        if reason == "bad_schema":
            assert None in (r["customer_id"], r["sku"], r["resource_id"], r["quantity"])
        else:
            assert None not in r.values()
        if reason == "bad_interval":
            d = r["end_time"] - r["start_time"]
            assert d <= timedelta(0) or d > timedelta(hours=1)
        elif reason == "negative_quantity":
            assert r["quantity"] < 0
        elif reason == "unknown_customer":
            assert r["customer_id"] not in known
        elif reason == "outside_month":
            assert not (MONTH_START <= r["start_time"] < MONTH_END)
            assert "dt=2026-10-" in e["file"]
        if reason != "bad_interval" and reason != "bad_schema":
            assert timedelta(0) < r["end_time"] - r["start_time"] <= timedelta(hours=1)
        if reason not in ("unknown_customer", "bad_schema"):
            assert r["customer_id"] in known
    # rates stay small
    bad = sum(1 for e in entries if e["expect"] == "quarantine")
    assert bad < 0.01 * summary["rows"]


def test_redelivered_and_late_rows_are_not_in_part0(land):
    root, _ = land
    for late in (root / "usage").glob("dt=*/part-2-late.parquet"):
        ids = set(pq.read_table(late)["event_id"].to_pylist())
        part0 = set(pq.read_table(late.parent / "part-0.parquet")["event_id"].to_pylist())
        assert ids and not ids & part0
    red = list((root / "usage").glob("dt=*/part-1-redelivery.parquet"))
    assert len(red) == 1
    ids = set(pq.read_table(red[0])["event_id"].to_pylist())
    assert ids <= set(pq.read_table(red[0].parent / "part-0.parquet")["event_id"].to_pylist())


def test_deterministic_bytes(land, tmp_path):
    root, _ = land
    generate(MONTH, N, SEED, tmp_path, progress=False)
    a = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    b = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert a == b
    for rel in a:
        assert (root / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_rerun_is_idempotent_and_keeps_other_lines(tmp_path):
    generate(MONTH, N, SEED, tmp_path, progress=False)
    m = tmp_path / "_truth" / "anomalies.jsonl"
    first = m.read_text()
    with open(m, "a") as f:
        f.write(json.dumps({"step": "simulate", "month": MONTH, "anomaly": "duplicate_charge",
                            "expect": "work_item:refund", "charge_id": "ch_1"}) + "\n")
    generate("2026-09", N, SEED, tmp_path, progress=False)
    generate(MONTH, N, SEED, tmp_path, progress=False)
    lines = [json.loads(x) for x in m.read_text().splitlines()]
    assert sum(1 for x in lines if x["step"] == "simulate") == 1
    gen_oct = [x for x in lines if x["step"] == "generate" and x["month"] == MONTH]
    assert len(gen_oct) == len(first.splitlines())
    assert any(x["step"] == "generate" and x["month"] == "2026-09" for x in lines)


def test_none_is_clean(tmp_path):
    s = generate(MONTH, N, SEED, tmp_path, anomalies="none", progress=False)
    assert s["anomalies"] == {}
    names = {p.name for p in (tmp_path / "usage").glob("dt=*/*.parquet")}
    assert names == {"part-0.parquet"}
    assert _manifest(tmp_path) == []
    t = pq.read_table(tmp_path / "usage")  # hive-style read of the whole month
    assert t.num_rows == s["rows"]


def test_all_adds_no_price(tmp_path):
    s = generate(MONTH, N, SEED, tmp_path, anomalies="all", progress=False)
    entries = _manifest(tmp_path)
    np_entries = [e for e in entries if e.get("reason") == "no_price"]
    assert np_entries and s["anomalies"].get("unknown_sku") == len(np_entries)
    _, prices = _read_csv(tmp_path, "price_book.csv")
    priced = {p["sku"] for p in prices}
    for e in np_entries:
        r = pq.read_table(tmp_path / e["file"]).to_pylist()[e["row_number"] - 1]
        assert r["event_id"] == e["event_id"] and r["sku"] not in priced
        assert r["quantity"] > 0 and r["end_time"] > r["start_time"]
    other = {e["reason"] for e in entries if e["expect"] == "quarantine"}
    assert {"bad_schema", "bad_interval", "negative_quantity", "unknown_customer", "outside_month",
            "conflicting_duplicate", "no_price"} == other


def test_consecutive_months_continue_the_business(tmp_path):
    generate("2026-10", N, SEED, tmp_path, anomalies="none", progress=False)
    _, c10 = _read_csv(tmp_path, "customers.csv")
    _, g10 = _read_csv(tmp_path, "credit_grants.csv")
    _, p10 = _read_csv(tmp_path, "price_book.csv")
    generate("2026-11", N, SEED, tmp_path, anomalies="none", progress=False)
    _, c11 = _read_csv(tmp_path, "customers.csv")
    _, g11 = _read_csv(tmp_path, "credit_grants.csv")
    _, p11 = _read_csv(tmp_path, "price_book.csv")
    by11 = {c["customer_id"]: c for c in c11}
    for c in c10:
        d = by11[c["customer_id"]]
        assert {k: v for k, v in d.items() if k != "closed_at"} == {k: v for k, v in c.items() if k != "closed_at"}
        if c["closed_at"]:
            assert d["closed_at"] == c["closed_at"]
    assert len(c11) > len(c10)  # sign-ups
    assert {g["grant_id"] for g in g10} <= {g["grant_id"] for g in g11}
    # price history is kept: every October row is still there (only an open end may be closed)
    key = lambda p: (p["sku"], p["effective_from"])  # noqa: E731
    k11 = {key(p): p for p in p11}
    for p in p10:
        q = k11[key(p)]
        assert q["unit_price"] == p["unit_price"]
        assert q["effective_to"] == p["effective_to"] or p["effective_to"] == ""
    con = duckdb.connect()
    last = con.execute(f"""select distinct resource_id, sku from read_parquet('{tmp_path}/usage/dt=2026-10-31/*.parquet')
                           where end_time = '2026-11-01T00:00:00Z'""").fetchall()
    first = set(con.execute(f"""select distinct resource_id, sku from read_parquet('{tmp_path}/usage/dt=2026-11-01/*.parquet')
                                where start_time = '2026-11-01T00:00:00Z'""").fetchall())
    hourly = [x for x in last if not x[1].startswith(("support-", "functions-", "inference-"))]
    assert len(hourly) > 10
    assert set(hourly) <= first
    # October files are untouched by generating November
    assert (tmp_path / "usage" / "dt=2026-10-31" / "part-0.parquet").exists()
