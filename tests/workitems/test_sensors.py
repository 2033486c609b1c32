"""raise_work_items_sensor through real ticks (build_sensor_context on real Dagster instances).

The queue is a real SQLite store and the warehouse the crafted DuckDB file of
test_rules.py; each tick is `evaluate_tick`, so the cursor seen is the one
Dagster would store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.workitem_sensors import raise_work_items, raise_work_items_sensor, workitem_sensors
from tests.workitems.test_rules import CraftedWarehouse, copy_of, september
from warehouse.schema import bootstrap
from workitems.eligibility import proposed_due_date
from workitems.store import approve, decline, list_items, queue_engine

SEPTEMBER_ITEMS = 10  # test_rules: 4 refunds / credit notes, 6 payment extensions


@pytest.fixture(scope="module")
def september_file(tmp_path_factory) -> Path:
    return september(tmp_path_factory.mktemp("september") / "warehouse.duckdb").path


@pytest.fixture
def env(september_file, tmp_path, monkeypatch):
    """A crafted warehouse, a fresh queue and a Dagster home, wired as the sensor reads them."""
    warehouse = copy_of(september_file, tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("BILLOPS_WAREHOUSE", str(warehouse.path))
    monkeypatch.setenv("BILLOPS_QUEUE_URL", f"sqlite:///{tmp_path / 'queue.sqlite'}")
    monkeypatch.delenv("BILLOPS_WORKITEM_WEBHOOK_URL", raising=False)
    (tmp_path / "dagster_home").mkdir()
    return warehouse, tmp_path / "dagster_home"


def tick(instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, sensor_name=raise_work_items_sensor.name)
    return raise_work_items_sensor.evaluate_tick(context)


def queue() -> list[dict]:
    return list_items(queue_engine())


def keys() -> list[str]:
    return sorted(item["dedup_key"] for item in queue())


def mirrored(warehouse: CraftedWarehouse) -> list[tuple]:
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        return con.execute("SELECT dedup_key, status FROM marts.work_items ORDER BY dedup_key").fetchall()


def test_the_sensor_runs_by_default_every_30_seconds():
    assert workitem_sensors == [raise_work_items_sensor]
    assert raise_work_items_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert raise_work_items_sensor.minimum_interval_seconds == 30


def test_ticks_over_the_same_data_raise_each_item_once_and_mirror_it(env):
    warehouse, _ = env
    instance = dg.DagsterInstance.ephemeral()
    first = tick(instance, None)
    assert "10 raised" in first.skip_message and "mirrored" in first.skip_message
    assert len(keys()) == SEPTEMBER_ITEMS
    second = tick(instance, first.cursor)
    assert "0 proposed, 0 raised" in second.skip_message and "unchanged" in second.skip_message
    third = tick(instance, None)  # no cursor: re-proposed (R1/R3 already in the queue are left out), none raised
    assert "7 proposed, 0 raised" in third.skip_message
    assert len(keys()) == SEPTEMBER_ITEMS
    assert [key for key, _ in mirrored(warehouse)] == keys()
    (r2,) = [item for item in queue() if item["rule"] == "R2"]
    assert (r2["charge_id"], r2["amount"], r2["requires_approval"]) == ("ch_3b", Decimal("120.00"), True)


def test_a_crash_between_writing_items_and_moving_the_cursor_loses_and_duplicates_nothing(env):
    warehouse, _ = env
    instance = dg.DagsterInstance.ephemeral()
    warehouse.ticket(7001, "C1", ["refund_request"], "INV-1", day=9)  # R1 of INV-1 becomes R3
    warehouse.file_load("tickets")
    crashed = raise_work_items(warehouse.path, queue_engine(), cursor=None)  # written, then the process dies
    assert len(crashed.raised) == SEPTEMBER_ITEMS
    after_restart = tick(instance, None)  # the cursor was never advanced
    assert "0 raised" in after_restart.skip_message
    assert len(keys()) == SEPTEMBER_ITEMS and "refund:R3:INV-1:7001" in keys()
    assert json.loads(after_restart.cursor)["watermark"] == json.loads(crashed.cursor)["watermark"]


def test_a_restart_with_a_new_instance_raises_nothing_twice(env):
    warehouse, dagster_home = env
    with dg.DagsterInstance.local_temp(str(dagster_home)) as instance:
        cursor = tick(instance, None).cursor
    with dg.DagsterInstance.local_temp(str(dagster_home)) as restarted:
        again = tick(restarted, cursor)
        fresh = tick(restarted, None)
    assert "0 raised" in again.skip_message and "0 raised" in fresh.skip_message
    assert len(keys()) == SEPTEMBER_ITEMS


def test_new_data_between_ticks_is_raised_once(env):
    warehouse, _ = env
    instance = dg.DagsterInstance.ephemeral()
    cursor = tick(instance, None).cursor
    warehouse.charge("ch_5b", "INV-5", "C5", "60.00", "succeeded", 2)  # a duplicate charge arrives with a close
    warehouse.file_load("charges")
    arrived = tick(instance, cursor)
    assert "1 raised" in arrived.skip_message
    assert tick(instance, arrived.cursor).skip_message.startswith("0 proposed, 0 raised")
    assert "1 raised" not in tick(instance, None).skip_message
    assert len(keys()) == SEPTEMBER_ITEMS + 1 and "refund:R2:INV-5:ch_5b" in keys()


def test_a_decided_item_is_never_reopened(env):
    _, _ = env
    instance = dg.DagsterInstance.ephemeral()
    tick(instance, None)
    by_key = {item["dedup_key"]: item["work_item_id"] for item in queue()}
    decline(queue_engine(), by_key["payment_extension:E1:INV-8:ch_8"], "carol", "customer asked for card update")
    approve(queue_engine(), by_key["refund:R1:INV-1:-"], "alice")
    tick(instance, None)
    tick(instance, None)
    statuses = {item["dedup_key"]: item["status"] for item in queue()}
    assert statuses["payment_extension:E1:INV-8:ch_8"] == "declined"
    assert statuses["refund:R1:INV-1:-"] == "approved"
    assert len(statuses) == SEPTEMBER_ITEMS


def test_an_executed_refund_marks_its_approved_item_done_once(env):
    warehouse, _ = env
    instance = dg.DagsterInstance.ephemeral()
    cursor = tick(instance, None).cursor
    by_key = {item["dedup_key"]: item["work_item_id"] for item in queue()}
    r1, r3 = by_key["refund:R1:INV-1:-"], by_key["refund:R3:INV-4:4001"]
    approve(queue_engine(), r1, "alice")
    warehouse.refund("re_wi_1", "ch_1", "50.00", work_item_id=r1)
    warehouse.refund("re_wi_2", "ch_4", "12.34", work_item_id=r3)  # not approved: reported, stays open
    warehouse.file_load("refunds")
    closed = tick(instance, cursor)
    assert "1 done" in closed.skip_message and "1 refunds not matched" in closed.skip_message
    statuses = {item["work_item_id"]: item for item in queue()}
    assert statuses[r1]["status"] == "done" and statuses[r3]["status"] == "open"
    assert json.loads(statuses[r1]["evidence"])["done"]["refund_id"] == "re_wi_1"
    assert "0 done" in tick(instance, closed.cursor).skip_message
    assert ("refund:R1:INV-1:-", "done") in mirrored(warehouse)


def test_a_locked_warehouse_skips_the_tick_without_moving_the_cursor(env):
    warehouse, _ = env
    instance = dg.DagsterInstance.ephemeral()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
                               "time.sleep(60)", str(warehouse.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        skipped = tick(instance, "previous-cursor")
        assert "warehouse busy" in skipped.skip_message
        assert skipped.cursor == "previous-cursor"
        assert queue() == []
    finally:
        holder.kill()
        holder.wait()
    resumed = tick(instance, "previous-cursor")
    assert "10 raised" in resumed.skip_message and resumed.cursor != "previous-cursor"


def test_before_any_close_the_tick_skips_and_keeps_no_cursor(tmp_path, monkeypatch):
    monkeypatch.setenv("BILLOPS_QUEUE_URL", f"sqlite:///{tmp_path / 'queue.sqlite'}")
    monkeypatch.setenv("BILLOPS_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    instance = dg.DagsterInstance.ephemeral()
    assert tick(instance, None).cursor is None  # no file yet
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        bootstrap(con)  # audit tables, but no dbt staging yet
    skipped = tick(instance, None)
    assert skipped.cursor is None and "no month closed yet" in skipped.skip_message
    assert queue() == []


# --- End to end: generate + simulate + close twice, then one tick against the ground-truth manifest ---

# The three tests below read the session's generated chain (tests/generated_chain.py: two months of 200
# customers, closed through the real command), copied once for this module, then one sensor tick.


@pytest.fixture(scope="module")
def chained(generated_chain, tmp_path_factory):
    """The generated chain copied (its queue too), then one sensor tick; the queue and the truth."""
    from tests.conftest import copy_workspace

    assert generated_chain.results[("close", "--month", "2026-10")].returncode == 0
    source = generated_chain.ws
    ws = copy_workspace(source, tmp_path_factory.mktemp("e2e") / "ws")
    shutil.copy2(source.root / "second_correction.json", ws.root)
    root = ws.root
    env = {**ws.settings, "BILLOPS_QUEUE_URL": f"sqlite:///{root / 'ops.sqlite'}"}
    billops = Path(sys.executable).parent / "billops"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("BILLOPS_WORKITEM_WEBHOOK_URL", raising=False)
        outcome = tick(dg.DagsterInstance.ephemeral(), None)
        items = queue()
    truth = generated_chain.manifest()
    return {"root": root, "env": env, "billops": billops, "outcome": outcome, "items": items,
            "truth": [e for e in truth if e.get("step") == "simulate" and e.get("month") == "2026-10"]}


def _warehouse_rows(root: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _expected_items(chained) -> dict[tuple, tuple]:
    """(kind, rule, invoice, charge or ticket) → (amount, proposed_due_date, reason) from the manifest and, for
    over-billing, from audit.restatements and the payments recomputed here, independently of workitems.rules."""
    root, truth = chained["root"], chained["truth"]
    due = dict(_warehouse_rows(root, "SELECT invoice_number, due_date FROM audit.issued_invoices"))
    latest = {number: difference for number, difference in _warehouse_rows(root, """
        SELECT invoice_number, arg_max(difference, detected_at) FROM audit.restatements
        WHERE invoice_number IS NOT NULL GROUP BY 1""")}
    paid = {number for (number,) in _warehouse_rows(root, """
        WITH charged AS (SELECT invoice_number, sum(amount) AS cents FROM raw.charges WHERE status = 'succeeded'
                         GROUP BY 1),
             refunded AS (SELECT c.invoice_number, sum(r.amount) AS cents FROM raw.refunds r
                          JOIN raw.charges c ON c.id = r.charge_id WHERE r.status = 'succeeded' GROUP BY 1)
        SELECT i.invoice_number FROM audit.issued_invoices i JOIN charged c USING (invoice_number)
        LEFT JOIN refunded r USING (invoice_number)
        WHERE c.cents - coalesce(r.cents, 0) >= i.total * 100""")}
    expected = {}
    for e in truth:
        if e["anomaly"] == "duplicate_charge":
            expected[("refund", "R2", e["invoice_number"], e["charge_id"])] = (Decimal(e["amount"]), None, None)
        elif e["anomaly"] == "failed_payment":
            verdict = ((proposed_due_date(due[e["invoice_number"]]), "eligible: due date + 14 days") if e["eligible"]
                       else (None, e["ineligible_reasons"][0]))
            expected[("payment_extension", "E1", e["invoice_number"], None)] = (None, *verdict)
        elif e["anomaly"] == "true_claim":
            assert latest[e["invoice_number"]] < 0, e  # the claim's cause was landed: the restatement found it
            kind = "refund" if e["invoice_number"] in paid else "credit_note"
            expected[(kind, "R3", e["invoice_number"], str(e["ticket_id"]))] = (-latest[e["invoice_number"]], None, None)
    claimed = {e["invoice_number"] for e in truth if e["anomaly"] == "true_claim"}
    for number, difference in latest.items():
        if difference < 0 and number not in claimed:
            kind = "refund" if number in paid else "credit_note"
            expected[(kind, "R1", number, None)] = (-difference, None, None)
    return expected


def test_every_seeded_case_is_exactly_one_item_of_the_right_kind_rule_and_amount(chained):
    expected = _expected_items(chained)
    raised = {}
    for item in chained["items"]:
        link = None if item["rule"] in ("R1", "E1") else item["charge_id"] or item["ticket_id"]
        key = (item["kind"], item["rule"], item["invoice_number"], link)
        assert key not in raised, f"two items for {key}"
        reason = item["reason"] if item["kind"] == "payment_extension" else None
        raised[key] = (item["amount"], item["proposed_due_date"], reason)
    matched = {key for key, value in raised.items() if expected.get(key) == value}
    recall, precision = len(matched) / len(expected), len(matched) / len(raised)
    by_rule = {rule: sum(1 for key in expected if key[1] == rule) for rule in ("R1", "R2", "R3", "E1")}
    print(f"\nwork items: {len(raised)} raised, {len(expected)} expected {by_rule}; "
          f"recall {recall:.0%}, precision {precision:.0%}")
    assert {k: (raised.get(k), v) for k, v in expected.items() if raised.get(k) != v} == {}
    assert [k for k in raised if k not in expected] == []
    assert recall == precision == 1.0
    assert all(by_rule[rule] >= 1 for rule in ("R1", "R2", "R3", "E1")), by_rule
    # R1 is the second price correction: only invoices holding that SKU, and every restatement says so
    second = json.loads((chained["root"] / "second_correction.json").read_text())
    r1 = {key[2] for key in expected if key[1] == "R1"}
    assert r1 <= set(second["invoices"])
    causes = dict(_warehouse_rows(chained["root"], "SELECT invoice_number, arg_max(cause, detected_at) "
                                                   "FROM audit.restatements GROUP BY 1"))
    assert all("price_correction" in causes[number] for number in r1)


def test_false_claims_raise_nothing_and_are_listed_in_billing_claims_no_error(chained):
    false_claims = {(str(e["ticket_id"]), e["invoice_number"]) for e in chained["truth"] if e["anomaly"] == "false_claim"}
    assert false_claims
    tickets = {item["ticket_id"] for item in chained["items"]}
    over_billed = {item["invoice_number"] for item in chained["items"] if item["rule"] in ("R1", "R3")}
    assert not {t for t, _ in false_claims} & tickets and not {n for _, n in false_claims} & over_billed
    listed = set(_warehouse_rows(chained["root"], "SELECT ticket_id, invoice_number FROM marts.billing_claims_no_error"))
    assert false_claims <= listed


def test_approved_refunds_are_executed_once_by_the_next_simulation(chained):
    """The processor half of the loop: `simulate` refunds what the team approved, metadata.work_item_id set."""
    root, env = chained["root"], chained["env"]
    engine = queue_engine(env["BILLOPS_QUEUE_URL"])
    refunds = [item for item in list_items(engine, kind="refund") if item["status"] == "open"]
    for item in refunds:
        approve(engine, item["work_item_id"], "alice")
        if item["requires_approval"]:
            approve(engine, item["work_item_id"], "bob")

    def run() -> subprocess.CompletedProcess:
        return subprocess.run([str(chained["billops"]), "simulate", "--month", "2026-11", "--seed", "7"], cwd=root,
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=600)

    assert run().returncode == 0
    path = root / "landing/payments/refunds/refunds-2026-11.jsonl"
    first = path.read_bytes()
    assert run().returncode == 0 and path.read_bytes() == first  # deterministic
    executed = {json.loads(line)["metadata"]["work_item_id"]: json.loads(line)
                for line in first.decode().splitlines() if json.loads(line).get("metadata", {}).get("work_item_id")}
    assert sorted(executed) == sorted(item["work_item_id"] for item in refunds)
    for item in refunds:
        refund = executed[item["work_item_id"]]
        assert refund["amount"] == int(item["amount"] * 100) and refund["status"] == "succeeded"
        if item["rule"] == "R2":
            assert refund["charge"] == item["charge_id"]
