"""A generated month with every anomaly: unpriced usage (C9) blocks the month before anything is issued.

The month-to-month chain of generated months (manifest recall and precision,
credits, payments) is tests/test_demo_chain.py.
"""

import json

from synthetic.generate import generate
from tests.conftest import Workspace


def test_unpriced_usage_blocks_the_month(tmp_path):
    ws = Workspace.at(tmp_path)
    generate("2026-10", 30, 9, ws.landing, anomalies="all", progress=False)
    manifest = [json.loads(line) for line in (ws.landing / "_truth" / "anomalies.jsonl").read_text().splitlines()]
    unpriced = [e for e in manifest if e.get("reason") == "no_price"]
    assert unpriced
    result = ws.close("2026-10")
    assert result.returncode == 1
    assert (f"C9_usage_is_priced on raw/usage: C9 failed: {len(unpriced)} usage rows quarantined as no_price (SKUs: "
            in " ".join(result.stderr.split()))
    assert "close 2026-10 failed; nothing was issued or restated" in " ".join(result.stderr.split())
    quarantined = set(ws.query("SELECT file, row_number FROM audit.quarantine WHERE reason = 'no_price'"))
    assert quarantined == {(e["file"], e["row_number"]) for e in unpriced}
    assert ws.query("SELECT count(*) FROM audit.issued_invoices") == [(0,)]
    # Blocked before rating: no draft was computed and nothing was published.
    assert ws.query("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'marts' AND view_name = 'invoices'") == [(0,)]
