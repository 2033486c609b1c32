"""The ground-truth manifest `_truth/anomalies.jsonl` (docs/contract/synthetic-data.md).

Each step (`generate`, `simulate`) owns its lines for a month: writing them
again replaces exactly those and keeps every other line, so re-running a step
is idempotent and the steps can run in any order.
"""

import json
import os
from pathlib import Path


def replace_step_lines(landing: Path, step: str, month: str, lines: list[str]) -> None:
    """Swap this step's lines for `month` for `lines` (already JSON text), atomically."""
    path = landing / "_truth" / "anomalies.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    kept: list[str] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                kept.append(line)
                continue
            if not (isinstance(entry, dict) and entry.get("step") == step and entry.get("month") == month):
                kept.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept + lines), encoding="utf-8")
    os.replace(tmp, path)
