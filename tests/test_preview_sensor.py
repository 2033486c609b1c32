"""The preview sensor's decision (orchestration/preview.py), from run records alone, in well under a second.

The daily ingestion job is built on another branch (issue 16 item 1): the sensor reads its runs
by name, so these tests write run records under that name into a scratch instance (and fake
records for the pure decision), and check what the sensor requests.
"""

from __future__ import annotations

import os
import time
from datetime import date
from unittest import mock

import dagster as dg

from orchestration.preview import INGEST_DAY_JOB, preview_after_ingestion_sensor, preview_month_job, preview_requests


def record(run_id: str, partition: str | None, created: float, job: str = INGEST_DAY_JOB) -> dg.RunRecord:
    tags = {"dagster/partition": partition} if partition else {}
    run = dg.DagsterRun(job_name=job, run_id=run_id, status=dg.DagsterRunStatus.SUCCESS, tags=tags)
    return dg.RunRecord(storage_id=int(created.timestamp()), dagster_run=run, create_timestamp=created,
                        update_timestamp=created, start_time=created.timestamp(),
                        end_time=created.timestamp())


def test_one_preview_per_month_keyed_by_its_newest_ingestion_run():
    from datetime import datetime, timezone

    at = lambda minute: datetime(2026, 11, 5, 1, minute, tzinfo=timezone.utc)  # noqa: E731
    records = [record("day4", "2026-11-04", at(1)), record("day5", "2026-11-05", at(2)),
               record("oct31-late", "2026-10-31", at(3)), record("no-partition", None, at(4)),
               record("dec1", "2026-12-01", at(5))]
    requests = preview_requests(records, issued={date(2026, 10, 1)}, closing={date(2026, 12, 1)})
    # October is issued, December is being closed (its close rates it), the unpartitioned run names no month
    assert [(r.partition_key, r.run_key) for r in requests] == [("2026-11-01", "preview-2026-11-day5")]
    assert requests[0].tags == {"billops/trigger": "preview_sensor"}


def test_the_sensor_requests_a_preview_after_a_successful_ingestion_run_once(tmp_path):
    from orchestration.definitions import defs

    env = {"BILLOPS_WAREHOUSE": str(tmp_path / "warehouse.duckdb"), "BILLOPS_LANDING": str(tmp_path / "landing")}
    with mock.patch.dict(os.environ, env), dg.DagsterInstance.ephemeral() as instance:
        def tick(cursor=None):
            return preview_after_ingestion_sensor.evaluate_tick(
                dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))

        first = tick()
        assert not first.run_requests and "no successful ingest_usage_day_job run" in first.skip_message
        for run_id, status, partition in (("ok", dg.DagsterRunStatus.SUCCESS, "2026-11-05"),
                                          ("failed", dg.DagsterRunStatus.FAILURE, "2026-12-02")):
            instance.add_run(dg.DagsterRun(job_name=INGEST_DAY_JOB, run_id=run_id, status=status,
                                           tags={"dagster/partition": partition}))
        instance.add_run(dg.DagsterRun(job_name="close_month_job", run_id="closing", status=dg.DagsterRunStatus.STARTED,
                                       tags={"dagster/partition": "2026-10-01"}))
        instance.add_run(dg.DagsterRun(job_name=INGEST_DAY_JOB, run_id="late-oct", status=dg.DagsterRunStatus.SUCCESS,
                                       tags={"dagster/partition": "2026-10-30"}))
        second = tick(first.cursor)
        assert [(r.partition_key, r.run_key) for r in second.run_requests] == [("2026-11-01", "preview-2026-11-ok")]
        assert second.cursor
        time.sleep(0.01)
        # read again within the overlap: the same key, which the daemon never launches twice
        assert [r.run_key for r in tick(second.cursor).run_requests] == ["preview-2026-11-ok"]


def test_the_job_queues_behind_closes_and_never_issues():
    from orchestration.jobs import close_month_job
    from warehouse.close_options import PREVIEW_TAG, WAREHOUSE_SLOT_TAG

    assert preview_month_job.tags[WAREHOUSE_SLOT_TAG] == close_month_job.tags[WAREHOUSE_SLOT_TAG] == "writer"
    assert preview_month_job.tags[PREVIEW_TAG] == "true"
    from orchestration.definitions import defs

    job = defs.resolve_job_def("preview_month_job")
    # rating and publication only, in one dbt step: not the ingestion, the controls' steps, issuing or the work items
    assert sorted(node.name for node in job.graph.node_defs) == ["dbt_models", "published__marts"]
