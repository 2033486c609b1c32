"""One writer, no lock errors (issue 15 item 3): a close with `dagster dev` open, a BI reader on the
published copy, and a second close of the same month requested while the first runs.

`dagster dev` (webserver, daemon and their code servers, with the alert and restatement sensors
ticking) runs on the workspace's instance. Two `billops close --month 2026-10` start two seconds
apart: both see the daemon beating and start none of their own; both submit to the run queue; the
warehouse's slot (the `billops/warehouse` tag, limit 1) keeps the second queued until the first
ends; then the second finds October issued and nothing changed: it restates nothing. Meanwhile a
reader opens the published `billops.duckdb` ten times a second.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest

from tests.conftest import BILLOPS, REPO, Workspace

LOCK_WORDS = ("Could not set lock", "Conflicting lock", "lock on file")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_daemon_and_ui(ws: Workspace, base: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, "dagster dev exited"
        try:
            with ws.instance() as instance:
                beats = instance.get_daemon_heartbeats()
            if "QUEUED_RUN_COORDINATOR" in beats and httpx.get(f"{base}/server_info", timeout=5).status_code == 200:
                return
        except (httpx.HTTPError, Exception):  # the instance or the webserver is still starting
            pass
        time.sleep(1)
    raise AssertionError("dagster dev's daemon and webserver did not come up in time")


@pytest.fixture(scope="module")
def two_closes_with_the_ui_open(golden_module) -> dict:
    from orchestration.instance_config import prepare_instance

    ws = golden_module
    prepare_instance(ws.dagster_home)  # billops's dagster.yaml (the run queue's warehouse slot), as `make dev` does
    with ws.instance() as instance:
        instance.get_runs(limit=1)  # its storage created once, before dagster dev's processes open it together
    published = ws.root / "published"
    env = {**ws.env, "BILLOPS_PUBLISHED": str(published)}
    port = _free_port()
    venv_bin = str(Path(sys.executable).parent)
    dev = subprocess.Popen(
        ["setsid", "env", "--default-signal=INT,TERM", os.path.join(venv_bin, "dagster"), "dev", "-w", "workspace.yaml",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env={**env, "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")},
        stdout=(ws.root / "dagster-dev.log").open("w"), stderr=subprocess.STDOUT)
    reads, errors, stop = [], [], threading.Event()

    def bi_reader() -> None:
        while not stop.is_set():
            target = published / "billops.duckdb"
            if target.exists():
                try:
                    con = duckdb.connect(str(target), read_only=True)
                    reads.append(con.execute("SELECT count(*) FROM marts.invoices").fetchone()[0])
                    con.close()
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.1)

    try:
        _wait_for_daemon_and_ui(ws, f"http://127.0.0.1:{port}", dev)
        reader = threading.Thread(target=bi_reader)
        reader.start()
        first = subprocess.Popen([str(BILLOPS), "close", "--month", "2026-10"], cwd=ws.root, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        second = subprocess.Popen([str(BILLOPS), "close", "--month", "2026-10"], cwd=ws.root, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        outputs = [process.communicate(timeout=900) for process in (first, second)]
        time.sleep(1)
        stop.set()
        reader.join()
        with ws.instance() as instance:
            records = instance.get_run_records(dg.RunsFilter(job_name="close_month_job"))
            runs = sorted(records, key=lambda r: r.create_timestamp)
            events = {r.dagster_run.run_id: [e.message or "" for e in instance.all_logs(r.dagster_run.run_id)]
                      for r in runs}
        return {"ws": ws, "codes": [first.returncode, second.returncode], "outputs": outputs,
                "runs": [(r.dagster_run.run_id, r.dagster_run.status.value, r.start_time, r.end_time) for r in runs],
                "events": events, "reads": reads, "errors": errors,
                "daemons_started": len(list((ws.dagster_home / "billops-logs").glob("daemon.log")))}
    finally:
        stop.set()
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGINT)
            try:
                dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
                dev.wait()


@pytest.fixture(scope="module")
def golden_module(tmp_path_factory) -> Workspace:
    import shutil

    from tests.conftest import GOLDEN

    ws = Workspace.at(tmp_path_factory.mktemp("one-writer"))
    shutil.copytree(GOLDEN / "landing", ws.landing)
    return ws


def test_both_closes_succeed_without_a_lock_error(two_closes_with_the_ui_open):
    out = two_closes_with_the_ui_open
    assert out["codes"] == [0, 0], [o[1][-2000:] for o in out["outputs"]]
    text = "\n".join(part for output in out["outputs"] for part in output)
    text += "\n".join(m for messages in out["events"].values() for m in messages)
    assert not [words for words in LOCK_WORDS if words in text]
    assert out["daemons_started"] == 0  # both commands used dagster dev's daemon


def test_the_second_run_waited_for_the_first_and_restated_nothing(two_closes_with_the_ui_open):
    out = two_closes_with_the_ui_open
    (first_id, first, _, first_end), (second_id, second, second_start, _) = out["runs"]
    assert (first, second) == ("SUCCESS", "SUCCESS")
    assert second_start >= first_end  # queued behind the warehouse's slot, not run beside it
    # The command started first usually submits first, but on a loaded machine the other can win the race to
    # the queue: each command's output is matched to its run by the run id it prints.
    outputs = [" ".join(o[0].split()) for o in out["outputs"]]
    (first_out,) = [o for o in outputs if f"Dagster run {first_id}" in o]
    (second_out,) = [o for o in outputs if f"Dagster run {second_id}" in o]
    assert "close 2026-10 succeeded: issued" in first_out and "7 invoices, 17 lines" in first_out
    assert f"queued: waiting for the warehouse behind run(s) {first_id}" in second_out
    table = "".join(c for c in second_out if not c.isspace() and c not in "│┃")  # Rich wraps the table's cells
    assert "0customersdifferfromwhatwasissued,0newrestatementrows" in table
    assert "close 2026-10 succeeded: restated" in second_out


def test_the_month_is_issued_once(two_closes_with_the_ui_open):
    ws = two_closes_with_the_ui_open["ws"]
    assert ws.query("SELECT count(*), count(DISTINCT invoice_number), sum(total) FROM audit.issued_invoices") == [
        (7, 7, __import__("decimal").Decimal("333.02"))]
    assert ws.query("SELECT count(*) FROM audit.restatements") == [(0,)]
    assert ws.query("SELECT count(*) FROM audit.issued_months") == [(1,)]


def test_the_bi_reader_never_failed(two_closes_with_the_ui_open):
    out = two_closes_with_the_ui_open
    assert out["errors"] == []
    assert out["reads"] and out["reads"][-1] == 7
