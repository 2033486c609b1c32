"""Two generated months through the `billops` command, built once per test run and shared.

generate 2026-09 → close → simulate 2026-10 → generate 2026-10 → (a second price correction) → close.
The demo chain's tests (tests/test_demo_chain.py) and the work-item end-to-end tests
(tests/workitems/test_raising.py) read the same chain: it costs five commands and three
Dagster runs, so it is built once, by whichever worker asks first (file lock), and never
changed afterwards — a test that writes (a sensor tick, a simulation) works on a copy.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tests.conftest import Workspace, build_once, completed

CUSTOMERS, SEED = "200", "7"
STEPS = (
    ("generate", "--month", "2026-09", "--customers", CUSTOMERS, "--seed", SEED),
    ("close", "--month", "2026-09"),
    ("simulate", "--month", "2026-10", "--seed", SEED),
    ("generate", "--month", "2026-10", "--customers", CUSTOMERS, "--seed", SEED),
    ("close", "--month", "2026-10"),
)
SEPTEMBER_ISSUED = "SELECT * FROM audit.issued_invoices WHERE billing_month = DATE '2026-09-01' ORDER BY invoice_number"


@dataclass
class GeneratedChain:
    ws: Workspace
    results: dict[tuple, subprocess.CompletedProcess]
    september_issued_digest: str  # of SEPTEMBER_ISSUED right after September's close

    def manifest(self) -> list[dict]:
        return [json.loads(line) for line in (self.ws.landing / "_truth" / "anomalies.jsonl").read_text().splitlines()]


def digest(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def land_a_second_price_correction(root: Path) -> None:
    """R1 needs over-billed invoices nobody claimed: the simulator's correction touches few invoices (often only
    the claimed ones), so a second SKU of September is corrected the same way (synthetic.price_book), one that no
    false claim's invoice holds. October's close restates September with both."""
    from synthetic.price_book import correct_price, correctable_skus, read_price_book

    truth = [json.loads(line) for line in (root / "landing/_truth/anomalies.jsonl").read_text().splitlines()]
    (claims_sku,) = [e["sku"] for e in truth if e["anomaly"] == "price_correction"]
    false_invoices = {e["invoice_number"] for e in truth if e["anomaly"] == "false_claim"}
    price_path = root / "landing/reference/price_book.csv"
    correctable = correctable_skus(read_price_book(price_path), "2026-09-01", "2026-10-01") - {claims_sku}
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        touched = {sku: set(numbers) for sku, numbers in con.execute("""
            SELECT sku, list(DISTINCT invoice_number) FROM audit.issued_invoice_lines
            WHERE billing_month = DATE '2026-09-01' AND sku IS NOT NULL AND amount > 0 GROUP BY sku""").fetchall()}
    candidates = {sku: numbers for sku, numbers in touched.items()
                  if sku in correctable and not numbers & false_invoices and 3 <= len(numbers) <= 40}
    sku = max(candidates, key=lambda s: (len(candidates[s]), s))
    correct_price(price_path, sku, "2026-09-01", "2026-10-01")
    (root / "second_correction.json").write_text(json.dumps({"sku": sku, "invoices": sorted(candidates[sku])}))


def _build(root: Path) -> dict:
    ws = Workspace.at(root)
    root.mkdir(parents=True, exist_ok=True)
    results, september = {}, ""
    for step in STEPS:
        if step == ("close", "--month", "2026-10"):
            land_a_second_price_correction(root)
        # The closes through the installed executable (end to end); generate and simulate through the
        # same Typer app in this process (each real process pays ~8 s of Dagster and GX start-up).
        done = ws.billops(*step, real=step[0] == "close")
        results[" ".join(step)] = {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
        if step == ("close", "--month", "2026-09") and done.returncode == 0:
            september = digest(ws.query(SEPTEMBER_ISSUED))
        if done.returncode != 0:
            break
    return {"results": results, "september_issued_digest": september}


def generated_chain(shared: Path) -> GeneratedChain:
    """The chain under `shared` (a directory every xdist worker sees), built by the first caller."""
    root, data = build_once(shared, "generated-chain", _build)
    results = {tuple(key.split()): completed(key.split(), r) for key, r in data["results"].items()}
    return GeneratedChain(Workspace.at(root), results, data["september_issued_digest"])
