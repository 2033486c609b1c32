"""The file ledger (assets/ledger.py) through the ingestion skeleton: changed and vanished files.

Landed files are immutable and never deleted: a file whose bytes changed, or
that the ledger recorded and is gone, is named, the rest of the batch loads,
and the asset fails (so the close does) until the original bytes are back.
"""

import hashlib
import json
import os
from datetime import datetime, timezone

import pyarrow.parquet as pq

from tests.ingestion.conftest import (
    failure_message, file_loads, landed_usage, materialize, materialize_jsonl, usage_row, usage_snapshot,
)

CHANGED = "usage/dt=2026-10-03/part-0.parquet"
VANISHED = "usage/dt=2026-10-07/part-0.parquet"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_changed_usage_file_is_named_with_both_hashes_and_the_rest_loads(golden):
    assert materialize(golden).success
    target = golden.landing / CHANGED
    before = _sha(target)
    table = pq.read_table(target)
    pq.write_table(table.slice(0, table.num_rows - 1), target)
    result = materialize(golden)
    assert not result.success
    assert (f"{CHANGED}: content changed since it first landed (sha256 {before[:12]}… now {_sha(target)[:12]}…)"
            in failure_message(result))
    others = {f: n for f, n in landed_usage(golden).items() if f != CHANGED}
    assert {f: v[0] for f, v in file_loads(golden, "usage").items()} == others
    assert golden.query("SELECT count(*) FROM raw.usage_month WHERE source_file = ?", [CHANGED]) == [(0,)]
    assert golden.query("SELECT sha256 FROM audit.landed_files WHERE path = ?", [CHANGED]) == [(before,)]


def test_vanished_usage_file_is_named_the_rest_loads_and_restoring_it_gives_the_first_run(golden):
    assert materialize(golden).success
    first = usage_snapshot(golden)
    target = golden.landing / VANISHED
    held = target.read_bytes()
    rows = pq.ParquetFile(target).metadata.num_rows
    target.unlink()
    result = materialize(golden)
    assert not result.success  # the close fails: invoices computed without it would be silently lower
    message = failure_message(result)
    assert "usage: 1 file(s) not loaded, the month is incomplete" in message
    assert f"{VANISHED}: recorded in the ledger (first seen " in message and "no longer in the landing zone" in message
    assert VANISHED not in file_loads(golden, "usage")
    assert {f: v[0] for f, v in file_loads(golden, "usage").items()} == landed_usage(golden)
    assert golden.query("SELECT count(*) FROM raw.usage_month")[0][0] == len(first[0]) - rows
    assert golden.query("SELECT count(*) FROM audit.landed_files WHERE path = ?", [VANISHED]) == [(1,)]  # never forgotten

    target.write_bytes(held)
    assert materialize(golden).success
    assert usage_snapshot(golden) == first


def _september(golden) -> str:
    september = "usage/dt=2026-09-30/part-0.parquet"
    golden.write_usage(september, [usage_row("sep-1", start=datetime(2026, 9, 30, 5, tzinfo=timezone.utc))])
    assert materialize(golden, partition="2026-09-01").success
    return september


def test_a_vanished_file_of_another_month_fails_every_close_naming_it(golden):
    september = _september(golden)
    (golden.landing / september).unlink()
    result = materialize(golden)  # October's own folders are whole: the whole ledger is verified all the same
    assert not result.success
    assert f"{september}: recorded in the ledger (first seen " in failure_message(result)
    assert "usage: 1 file(s) not loaded, the month is incomplete" in failure_message(result)
    result = materialize(golden, partition="2026-09-01")
    assert not result.success
    assert f"{september}: recorded in the ledger" in failure_message(result)


def test_a_changed_file_of_another_month_fails_every_close_naming_it_even_at_the_same_size(golden):
    september = _september(golden)
    target = golden.landing / september
    before = _sha(target)
    held = target.read_bytes()
    # Same size, other bytes: only the hash can tell (the mtime moved, so the close hashes it).
    changed = bytearray(held)
    index = held.index(b"sep-1")
    changed[index:index + 5] = b"sep-2"
    target.write_bytes(bytes(changed))
    assert target.stat().st_size == len(held)
    result = materialize(golden)
    assert not result.success
    assert (f"{september}: content changed since it first landed (sha256 {before[:12]}… now {_sha(target)[:12]}…)"
            in failure_message(result))
    target.write_bytes(held)  # the original bytes back (a new mtime): the ledger vouches for it again
    assert materialize(golden).success


def test_other_months_files_are_hashed_only_when_their_size_or_mtime_moved(golden):
    september = _september(golden)
    target = golden.landing / september
    (recorded,), = golden.query("SELECT modified_ns FROM audit.landed_files WHERE path = ?", [september])
    assert recorded == target.stat().st_mtime_ns
    os.utime(target, ns=(recorded + 10**9, recorded + 10**9))  # touched, same bytes: hashed once, passes
    assert materialize(golden).success
    assert golden.query("SELECT modified_ns FROM audit.landed_files WHERE path = ?", [september]) == [
        (recorded + 10**9,)]


def _write_jsonl(ws, relative: str, records: list[dict]) -> None:
    path = ws.landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


TICKET = {"id": 1, "created_at": "2026-10-01T09:00:00Z", "updated_at": "2026-10-02T10:00:00Z", "status": "open",
          "organization_id": "c002"}
CHARGE = {"id": "ch_1", "object": "charge", "amount": 1234, "currency": "usd", "customer": "c002",
          "created": 1_790_000_000, "status": "succeeded", "metadata": {"invoice_number": "BO-202609-000002"}}


def test_vanished_ticket_and_charge_files_are_named_and_the_rest_loads(golden):
    _write_jsonl(golden, "tickets/a.jsonl", [TICKET])
    _write_jsonl(golden, "tickets/b.jsonl", [{**TICKET, "id": 2}])
    _write_jsonl(golden, "payments/charges/c.jsonl", [CHARGE])
    assert materialize_jsonl(golden).success
    (golden.landing / "tickets/a.jsonl").unlink()
    (golden.landing / "payments/charges/c.jsonl").unlink()
    result = materialize_jsonl(golden)
    assert not result.success
    messages = "\n".join(f.event_specific_data.error.to_string() for f in result.get_step_failure_events())
    assert "tickets/a.jsonl: recorded in the ledger" in messages
    assert "payments/charges/c.jsonl: recorded in the ledger" in messages
    assert golden.query("SELECT id FROM raw.tickets") == [(2,)]
    assert file_loads(golden, "tickets") == {"tickets/b.jsonl": (1, 1, 0, 0)}
    assert file_loads(golden, "charges") == {}


def test_changed_charge_file_is_an_error_naming_it(golden):
    _write_jsonl(golden, "payments/charges/c.jsonl", [CHARGE])
    assert materialize_jsonl(golden).success
    _write_jsonl(golden, "payments/charges/c.jsonl", [{**CHARGE, "amount": 1}])
    result = materialize_jsonl(golden)
    assert not result.success
    message = failure_message(result)
    assert "payments/charges/c.jsonl: content changed since it first landed" in message
