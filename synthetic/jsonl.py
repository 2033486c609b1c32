"""JSON-lines files as the payment processor and the help desk export them, and DuckDB reading them back."""
from __future__ import annotations

import json
import os
import pathlib


def compact_json(obj: dict) -> str:
    """One line of JSON, no spaces, UTF-8 kept (as Stripe and Zendesk exports look)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def write_jsonl(path: pathlib.Path, lines: list[str]) -> int:
    """Replace ``path`` atomically with ``lines``; returns the line count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(line + "\n" for line in lines))
    os.replace(tmp, path)
    return len(lines)


def dollars(cents: int) -> str:
    """Whole cents as a contract amount string (``1234`` → ``"12.34"``)."""
    return f"{cents // 100}.{cents % 100:02d}"


def sql_path_list(paths: list[pathlib.Path]) -> str:
    """Paths as a DuckDB list literal of quoted strings (a quote inside a name is doubled), for `read_json`."""
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"
