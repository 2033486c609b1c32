"""The dbt project's files: where they are, and whether any changed since a given time.

Both the dbt assets (assets/dbt_project.py: is the manifest stale?) and `billops-dbt`
(orchestration/private_hooks.py: may dbt reuse its saved manifest?) ask the same question;
`billops-dbt` is a process per dbt invocation, so this module imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
PROJECT_SOURCES = ("models", "macros", "tests")


def project_changed_since(mtime: float) -> bool:
    """True when a dbt source file (models, macros, tests, project or profile) is newer than `mtime`."""
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in PROJECT_SOURCES:
        sources += (DBT_PROJECT_DIR / folder).rglob("*")
    return any(p.is_file() and p.stat().st_mtime > mtime for p in sources)
