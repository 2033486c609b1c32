"""Where billops reads and writes, and which environment it runs in, from the environment.

Paths (docs/contract/published-interface.md) are resolved to absolute ones against the directory
the command runs in, once, so that dbt (which runs in its own project directory)
and Dagster see the same files. Nothing here writes to the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

# BILLOPS_ENV picks the dbt target (dbt_project/profiles.yml): local | ci | prod.
ENVIRONMENTS = ("local", "ci", "prod")

DEFAULTS = {
    "BILLOPS_LANDING": "data/landing",
    "BILLOPS_WAREHOUSE": "data/warehouse.duckdb",
    "DAGSTER_HOME": ".dagster",
    "BILLOPS_PUBLISHED": "data/published",
}


def billops_env() -> str:
    """The deployment environment, read in this one place."""
    env = os.environ.get("BILLOPS_ENV", "local")
    if env not in ENVIRONMENTS:
        raise ValueError(f"BILLOPS_ENV={env!r}: expected one of {', '.join(ENVIRONMENTS)}")
    return env


@dataclass(frozen=True)
class Settings:
    landing: Path
    warehouse: Path
    dagster_home: Path
    published: Path


def absolute(value: str) -> Path:
    return Path(value).expanduser().resolve()


def setting(name: str) -> str:
    """A path variable as set, or the contract's default."""
    return os.environ.get(name) or DEFAULTS[name]


def load_settings() -> Settings:
    """Read BILLOPS_LANDING, BILLOPS_WAREHOUSE, DAGSTER_HOME and BILLOPS_PUBLISHED with the contract's defaults."""
    return Settings(
        landing=absolute(setting("BILLOPS_LANDING")),
        warehouse=absolute(setting("BILLOPS_WAREHOUSE")),
        dagster_home=absolute(setting("DAGSTER_HOME")),
        published=absolute(setting("BILLOPS_PUBLISHED")),
    )


def safe_url(url: str | None) -> str:
    """A URL setting as it may be shown: `scheme://host[:port]`, never its path, query or credentials.

    A Slack-style webhook carries its token in the path and a database URL its password in the
    userinfo, so an error, a log line, an audit trail or a mart only ever gets this form.
    """
    if not url:
        return "(not set)"
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(unparseable URL)"
    if not parts.scheme:
        return "(unparseable URL)"
    if parts.scheme.startswith("sqlite"):
        return url.strip().split("?", 1)[0]  # a local file: its path is where to look, and it carries no credentials
    if not host:
        return f"{parts.scheme}://"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")
