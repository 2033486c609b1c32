"""raise_work_items_sensor through real ticks (build_sensor_context on real Dagster instances).

The queue is a real SQLite store and the warehouse the crafted DuckDB file of
test_rules.py; each tick is `evaluate_tick`, so the cursor seen is the one
Dagster would store.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.workitem_sensors import raise_work_items, raise_work_items_sensor, workitem_sensors
from tests.workitems.test_rules import CraftedWarehouse, copy_of, september
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
