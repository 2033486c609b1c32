"""The close raises the work items: the `marts/work_items` asset of close_month_job (workitems/asset.py).

The queue is a real SQLite store and the warehouse the crafted DuckDB file of test_rules.py; each
close is `dg.materialize` of the asset on a real Dagster instance (as a run of the close
materializes it), so what is checked is the asset's own materialization metadata and the queue.
The assertions are those the work-item sensor had (decisions #59): the same items, once each,
whatever repeats, crashes or restarts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date as dt_date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tests.workitems.test_rules import CraftedWarehouse, copy_of, september
from warehouse.resource import WarehouseResource
from warehouse.schema import bootstrap
from workitems.asset import KEY, work_items
from workitems.eligibility import proposed_due_date
from workitems.mirror import publish_work_items
from workitems.rules import open_read_only, propose_items
from workitems.store import approve, decline, get_item, list_items, queue_engine, raise_items

SEPTEMBER_ITEMS = 10  # test_rules: 4 refunds / credit notes, 6 payment extensions


@pytest.fixture(scope="module")
def september_file(tmp_path_factory) -> Path:
    return september(tmp_path_factory.mktemp("september") / "warehouse.duckdb").path


@pytest.fixture
def env(september_file, tmp_path, monkeypatch):
    """A crafted warehouse, a fresh queue and a Dagster home, wired as a close run reads them."""
    warehouse = copy_of(september_file, tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("BILLOPS_WAREHOUSE", str(warehouse.path))
    monkeypatch.setenv("BILLOPS_QUEUE_URL", f"sqlite:///{tmp_path / 'queue.sqlite'}")
    monkeypatch.delenv("BILLOPS_WORKITEM_WEBHOOK_URL", raising=False)
    (tmp_path / "dagster_home").mkdir()
    return warehouse, tmp_path / "dagster_home"


def close(instance: dg.DagsterInstance, warehouse: Path) -> dict:
    """The asset materialized for September as a close's run does; its materialization metadata."""
    resource = WarehouseResource(path=str(warehouse), landing=str(Path(warehouse).parent / "landing"))
    result = dg.materialize([work_items], partition_key="2026-09-01", instance=instance,
                            resources={"warehouse": resource})
    assert result.success
    (materialization,) = result.asset_materializations_for_node("marts__work_items")
    return {key: value.value for key, value in materialization.metadata.items()}


def queue() -> list[dict]:
    return list_items(queue_engine())


def keys() -> list[str]:
    return sorted(item["dedup_key"] for item in queue())


def mirrored(warehouse: CraftedWarehouse) -> list[tuple]:
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        return con.execute("SELECT dedup_key, status FROM marts.work_items ORDER BY dedup_key").fetchall()


def test_the_close_job_raises_work_items_after_issuing_and_before_the_marts_that_read_the_queue():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    node = graph.get(KEY)
    assert KEY in defs.resolve_job_def("close_month_job").asset_layer.executable_asset_keys
    assert node.group_name == "workitems" and node.partitions_def is not None
    assert {"audit/issued_invoices", "audit/restatements", "staging/stg_payments__refunds"} <= {
        key.to_user_string() for key in node.parent_keys}
    children = {key.to_user_string() for key in node.child_keys}
    assert {"marts/accounts_receivable", "marts/kpi_billing_monthly"} <= children  # they read the queue
    # every other mart, and the open-month models, wait for the items too: one dbt step publishes (decision #98)
    assert {"marts/invoices", "marts/tickets", "intermediate/int_invoices_open"} <= children
    assert all(child.startswith("marts/") or child.endswith("_open") for child in children), children
    # no sensor raises items any more, and so none opens the warehouse for it (decisions #59, #60)
    assert "raise_work_items_sensor" not in {sensor.name for sensor in defs.sensors}


def test_closes_over_the_same_data_raise_each_item_once_and_mirror_it(env):
    warehouse, _ = env
    instance = dg.DagsterInstance.ephemeral()
    first = close(instance, warehouse.path)
    assert (first["proposed"], first["raised"], first["marked_done"], first["queue_items"]) == (10, 10, 0, 10)
    assert first["raised_ids"] == ", ".join(f"WI-{n:06d}" for n in range(1, 11))
    assert len(keys()) == SEPTEMBER_ITEMS
    again = close(instance, warehouse.path)  # re-proposed (R1/R3 already in the queue are left out), none raised
    assert (again["proposed"], again["raised"], again["queue_items"]) == (7, 0, 10)
    assert len(keys()) == SEPTEMBER_ITEMS
    assert [key for key, _ in mirrored(warehouse)] == keys()
    (r2,) = [item for item in queue() if item["rule"] == "R2"]
    assert (r2["charge_id"], r2["amount"], r2["requires_approval"]) == ("ch_3b", Decimal("120.00"), True)
    created = get_item(queue_engine(), r2["work_item_id"])["events"][0]
    assert (created["action"], created["by"], created["channel"]) == ("created", "billops close", "close")


def test_a_crash_between_writing_items_and_the_materialization_loses_and_duplicates_nothing(env):
    warehouse, _ = env
    instance = dg.DagsterInstance.ephemeral()
    warehouse.ticket(7001, "C1", ["refund_request"], "INV-1", day=9)  # R1 of INV-1 becomes R3
    con = open_read_only(warehouse.path)
    try:
        proposals = propose_items(con, [])
    finally:
        con.close()
    written = raise_items(queue_engine(), proposals, raised_by="billops close", channel="close")  # then the run dies
    assert sum(created for _, created in written) == SEPTEMBER_ITEMS
    assert mirrored(warehouse) == []  # the run died before it mirrored
    rerun = close(instance, warehouse.path)
    assert rerun["raised"] == 0 and rerun["queue_items"] == SEPTEMBER_ITEMS
    assert len(keys()) == SEPTEMBER_ITEMS and "refund:R3:INV-1:7001" in keys()
    assert [key for key, _ in mirrored(warehouse)] == keys()


def test_a_restart_with_a_new_instance_raises_nothing_twice(env):
    warehouse, dagster_home = env
    with dg.DagsterInstance.local_temp(str(dagster_home)) as instance:
        assert close(instance, warehouse.path)["raised"] == SEPTEMBER_ITEMS
    with dg.DagsterInstance.local_temp(str(dagster_home)) as restarted:
        assert close(restarted, warehouse.path)["raised"] == 0
    assert len(keys()) == SEPTEMBER_ITEMS


def test_new_data_at_the_next_close_is_raised_once(env):
    warehouse, _ = env
    instance = dg.DagsterInstance.ephemeral()
    close(instance, warehouse.path)
    warehouse.charge("ch_5b", "INV-5", "C5", "60.00", "succeeded", 2)  # a duplicate charge arrives with a close
    arrived = close(instance, warehouse.path)
    assert arrived["raised"] == 1 and arrived["raised_ids"] == "WI-000011"
    assert close(instance, warehouse.path)["raised"] == 0
    assert len(keys()) == SEPTEMBER_ITEMS + 1 and "refund:R2:INV-5:ch_5b" in keys()


def test_a_decided_item_is_never_reopened(env):
    warehouse, _ = env
    instance = dg.DagsterInstance.ephemeral()
    close(instance, warehouse.path)
    by_key = {item["dedup_key"]: item["work_item_id"] for item in queue()}
    decline(queue_engine(), by_key["payment_extension:E1:INV-8:ch_8"], "carol", "customer asked for card update")
    approve(queue_engine(), by_key["refund:R1:INV-1:-"], "alice")
    close(instance, warehouse.path)
    close(instance, warehouse.path)
    statuses = {item["dedup_key"]: item["status"] for item in queue()}
    assert statuses["payment_extension:E1:INV-8:ch_8"] == "declined"
    assert statuses["refund:R1:INV-1:-"] == "approved"
    assert len(statuses) == SEPTEMBER_ITEMS
    assert ("payment_extension:E1:INV-8:ch_8", "declined") in mirrored(warehouse)


def test_an_executed_refund_marks_its_approved_item_done_once(env):
    warehouse, _ = env
    instance = dg.DagsterInstance.ephemeral()
    close(instance, warehouse.path)
    by_key = {item["dedup_key"]: item["work_item_id"] for item in queue()}
    r1, r3 = by_key["refund:R1:INV-1:-"], by_key["refund:R3:INV-4:4001"]
    approve(queue_engine(), r1, "alice")
    warehouse.refund("re_wi_1", "ch_1", "50.00", work_item_id=r1)
    warehouse.refund("re_wi_2", "ch_4", "12.34", work_item_id=r3)  # not approved: reported, stays open
    closed = close(instance, warehouse.path)
    assert (closed["marked_done"], closed["marked_done_ids"], closed["refunds_not_matched"]) == (1, r1, 1)
    assert closed["refunds_not_matched_detail"] == f"re_wi_2: {r3} is open; only an approved item can be done"
    statuses = {item["work_item_id"]: item for item in queue()}
    assert statuses[r1]["status"] == "done" and statuses[r3]["status"] == "open"
    assert json.loads(statuses[r1]["evidence"])["done"]["refund_id"] == "re_wi_1"
    assert close(instance, warehouse.path)["marked_done"] == 0
    assert ("refund:R1:INV-1:-", "done") in mirrored(warehouse)
    done = get_item(queue_engine(), r1)["events"][-1]
    assert (done["action"], done["by"], done["channel"]) == ("done", "payments feed", "close")


def test_before_any_month_was_rated_the_close_raises_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("BILLOPS_QUEUE_URL", f"sqlite:///{tmp_path / 'queue.sqlite'}")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        bootstrap(con)  # audit tables, but no dbt staging yet
    outcome = close(dg.DagsterInstance.ephemeral(), tmp_path / "warehouse.duckdb")
    assert (outcome["raised"], outcome["queue_items"], outcome["note"]) == (0, 0, "no month rated yet: nothing to raise")
    assert queue() == []


# --- A close launched as the UI launches it ---------------------------------------------------------------


def _queue_rows(root: Path) -> list[tuple]:
    """The items a close raised (the hand-made one of tests/golden_november.py left out), without ids or times."""
    engine = queue_engine(f"sqlite:///{root / 'ops.sqlite'}")
    try:
        rows = [item for item in list_items(engine)
                if get_item(engine, item["work_item_id"])["events"][0]["by"] == "billops close"]
    finally:
        engine.dispose()
    return sorted((r["dedup_key"], r["kind"], r["rule"], r["customer_id"], r["invoice_number"], r["amount"],
                   r["proposed_due_date"], r["reason"], json.loads(r["evidence"]), r["status"], r["requires_approval"])
                  for r in rows)


def test_a_close_run_launched_as_the_ui_does_raises_the_items_billops_close_raised(copy_closed_golden, closed_november):
    """November after the golden October, closed as a run of close_month_job for the partition (`dagster job
    execute`, what the UI's launch or the schedule's run request runs), not through `billops close`: the run
    raises the month's items itself, the same ones the command's close of the same landing raised."""
    from tests.conftest import REPO
    from tests.golden_november import land_november

    assert closed_november.result.returncode == 0, closed_november.result.stderr[-3000:]
    ws = copy_closed_golden
    land_november(ws)
    published = ws.root / "published"
    run = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m", "orchestration.definitions", "-a", "defs",
         "-j", "close_month_job", "--tags", json.dumps({"dagster/partition": "2026-11-01"})],
        cwd=REPO, env={**ws.env, "BILLOPS_PUBLISHED": str(published)}, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    raised = _queue_rows(ws.root)
    assert raised == _queue_rows(closed_november.ws.root)
    # c003 failed to pay BO-202610-000003 (301.55, due 2026-11-15 in the golden expected invoices) and never paid:
    # one extension, eligible (an old customer), proposed 14 days later
    assert [(key, kind, rule, customer, invoice, amount, due, reason, status)
            for key, kind, rule, customer, invoice, amount, due, reason, _, status, _ in raised] == [
        ("payment_extension:E1:BO-202610-000003:ch_4", "payment_extension", "E1", "c003", "BO-202610-000003", None,
         dt_date(2026, 11, 29), "eligible: due date + 14 days", "open")]
    with ws.instance() as instance:
        event = instance.get_latest_materialization_event(KEY)
    metadata = {key: value.value for key, value in event.asset_materialization.metadata.items()}
    assert (event.asset_materialization.partition, metadata["raised"], metadata["queue_items"]) == ("2026-11-01", 1, 1)
    with duckdb.connect(str(published / "billops.duckdb"), read_only=True) as con:
        assert con.execute("SELECT dedup_key, status FROM marts.work_items").fetchall() == [
            ("payment_extension:E1:BO-202610-000003:ch_4", "open")]


# --- End to end: generate + simulate + close twice, the queue the closes left against the ground truth ---

# The tests below read the session's generated chain (tests/generated_chain.py: two months of 200
# customers, closed through the real command, whose runs raised the items), copied once for this module.


@pytest.fixture(scope="module")
def chained(generated_chain, tmp_path_factory):
    """The generated chain copied (its queue too): the queue as `billops close` left it, and the truth."""
    from tests.conftest import copy_workspace

    assert generated_chain.results[("close", "--month", "2026-10")].returncode == 0
    source = generated_chain.ws
    ws = copy_workspace(source, tmp_path_factory.mktemp("e2e") / "ws")
    shutil.copy2(source.root / "second_correction.json", ws.root)
    # the published copy too (BILLOPS_PUBLISHED's default, data/published): `billops simulate` reads it
    shutil.copytree(source.root / "data" / "published", ws.root / "data" / "published", symlinks=True)
    root = ws.root
    env = {**ws.settings, "BILLOPS_QUEUE_URL": f"sqlite:///{root / 'ops.sqlite'}"}
    billops = Path(sys.executable).parent / "billops"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("BILLOPS_WORKITEM_WEBHOOK_URL", raising=False)
        items = queue()
    truth = generated_chain.manifest()
    return {"root": root, "env": env, "billops": billops, "items": items, "results": generated_chain.results,
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


def test_each_close_prints_the_work_items_its_run_raised(chained):
    """The command prints the asset's outcome from its run's metadata: September's close raises nothing (no
    payment or ticket answers it yet); October's restates September, then closes October, one line per run,
    and together they raised the whole queue."""
    import re

    september = chained["results"][("close", "--month", "2026-09")].stdout
    assert re.findall(r"work items: (\d+) raised, (\d+) marked done", september) == [("0", "0")]
    october = chained["results"][("close", "--month", "2026-10")].stdout
    lines = re.findall(r"work items: (\d+) raised, (\d+) marked done", october)
    assert len(lines) == october.count("Dagster run ") == 2  # one line per run, as each run's summary
    assert sum(int(raised) for raised, _ in lines) == len(chained["items"]) > 0
    assert [done for _, done in lines] == ["0", "0"]
    # every item was raised by a close, as the audit trail says
    engine = queue_engine(chained["env"]["BILLOPS_QUEUE_URL"])
    creators = {(e["by"], e["channel"]) for item in chained["items"]
                for e in get_item(engine, item["work_item_id"])["events"] if e["action"] == "created"}
    assert creators == {("billops close", "close")}


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
    # what `billops workitems approve` does after each decision: the processor reads the published copy
    publish_work_items(root / "data" / "published", engine)

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
