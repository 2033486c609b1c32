"""The real local receivers the alert tests send to (a Slack-like HTTP webhook, an SMTP server)
and the daemon's moves (a sensor tick, an instance on a folder), shared by tests/alerts."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.sensors import alert_on_failed_close_sensor, alert_on_failed_warning_check_sensor

UI = "http://billops.test:3000"


@dg.op
def rate_usage():
    raise ValueError("two price rows overlap for sku vm.small")


@dg.job(name="close_month_job")
def failing_close():
    """A close that fails at its one step, named like the real job so the alert sensor judges it."""
    rate_usage()


def instance_on(home: Path) -> dg.DagsterInstance:
    """A persistent instance on `home`; one event-log database and no captured stdout keep runs at ~0.5 s."""
    return dg.DagsterInstance.local_temp(
        str(home),
        overrides={
            "event_log_storage": {
                "module": "dagster.core.storage.event_log",
                "class": "ConsolidatedSqliteEventLogStorage",
                "config": {"base_dir": str(home / "history")},
            },
            "compute_logs": {"module": "dagster.core.storage.noop_compute_log_manager", "class": "NoOpComputeLogManager"},
        },
    )


class Webhook:
    """A Slack-like receiver: records each JSON body; answers with the next queued status (200 once empty)."""

    def __init__(self):
        self.posts: list[dict] = []
        self.statuses: list[int] = []
        self.always: int | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.always or (receiver.statuses.pop(0) if receiver.statuses else 200)
                if status == 200:
                    receiver.posts.append(body)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self):
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(envelope.content.decode())
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tick(instance, cursors: dict) -> list[str]:
    """One tick of each sensor, as the daemon does it, carrying each sensor's cursor."""
    reasons = []
    for sensor in (alert_on_failed_close_sensor, alert_on_failed_warning_check_sensor):
        context = dg.build_sensor_context(instance=instance, cursor=cursors.get(sensor.name))
        reasons.append(sensor(context).skip_message)
        cursors[sensor.name] = context.cursor
    return reasons


def marts_alerts(published: Path) -> list[tuple]:
    """marts.alerts as BI reads it: the published copy in `published` (BILLOPS_PUBLISHED)."""
    with duckdb.connect(str(published / "billops.duckdb"), read_only=True) as connection:
        return connection.execute("SELECT kind, billing_month, run_id, channels, text FROM marts.alerts ORDER BY billing_month").fetchall()


def close_job(*definitions, resources: dict | None = None) -> dg.JobDefinition:
    """A `close_month_job` of these assets and checks, as the alert sensors find it in the instance."""
    assets = [d for d in definitions if not isinstance(d, dg.AssetChecksDefinition)]
    checks = [d for d in definitions if isinstance(d, dg.AssetChecksDefinition)]
    built = dg.Definitions(assets=assets, asset_checks=checks, resources=resources or {},
                           jobs=[dg.define_asset_job("close_month_job")])
    return built.resolve_job_def("close_month_job")


def close(instance, job: dg.JobDefinition, month: str) -> str:
    """Run the job for `month` (YYYY-MM) in the instance; its run id (a failure is expected, not raised)."""
    partitioned = job.partitions_def is not None
    result = job.execute_in_process(
        instance=instance, raise_on_error=False,
        **({"partition_key": f"{month}-01"} if partitioned else {"tags": {"dagster/partition": f"{month}-01"}}),
    )
    return result.run_id
