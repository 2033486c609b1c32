"""The landing zone's layout (docs/contract/inputs.md, "Landing zone layout"), said once."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

# reference/<name>.csv → its columns, in the contract's order (the header must match exactly).
REFERENCE_COLUMNS: dict[str, list[str]] = {
    "customers": ["customer_id", "name", "email", "country", "region", "tax_id", "created_at", "closed_at",
                  "payment_method"],
    "price_book": ["sku", "product", "description", "model", "unit", "unit_price", "monthly_cap", "cap_hours",
                   "included_transfer_gib", "tiers", "effective_from", "effective_to"],
    "tax_rates": ["country", "region", "tax_name", "rate", "reverse_charge", "effective_from", "effective_to"],
    "credit_grants": ["grant_id", "customer_id", "amount", "kind", "granted_at", "expires_at", "reason"],
}

# The reference files the usage row rules read (unknown_customer, no_price): a usage day loads and judges these two.
RULE_REFERENCES = ["customers", "price_book"]

PRICING_MODELS = ("hourly_capped", "unit", "transfer", "graduated", "flat_monthly")


def usage_month_prefix(month: date | str) -> str:
    """SQL LIKE pattern of every usage file of a billing month, relative to the landing root."""
    text = month if isinstance(month, str) else f"{month:%Y-%m}"
    return f"usage/dt={text[:7]}-%"


def usage_month_files(landing: Path, month: date) -> list[Path]:
    """The month's usage files in (folder, file name) order: the order that decides the first delivery."""
    return sorted((landing / "usage").glob(f"dt={month:%Y-%m}-[0-3][0-9]/*.parquet"))


def landed_usage_months(landing: Path) -> list[date]:
    """Every month with at least one landed usage file, oldest first (from the `dt=` folder names)."""
    months = {date(int(folder.name[3:7]), int(folder.name[8:10]), 1)
              for folder in (landing / "usage").glob("dt=[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]")
              if folder.is_dir() and any(folder.glob("*.parquet"))}
    return sorted(months)


def file_sha256(path: Path) -> str:
    """The sha256 of a landed file, read in 8 MiB chunks (the ledger's and the planners' hash)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def sql_path_list(paths: list[Path]) -> str:
    """Paths as a DuckDB list literal of quoted strings (a quote inside a name is doubled)."""
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def files_fingerprint(root: Path, files: list[Path]) -> str:
    """16 hex digits of the files' (path under root, size, mtime): what the landing sensors key a run by, so a new
    file or changed bytes request a run and an unchanged set never does. A stat per file, no read."""
    stats = "\n".join(f"{f.relative_to(root).as_posix()}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    return hashlib.sha256(stats.encode()).hexdigest()[:16]
