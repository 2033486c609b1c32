"""The files billops ships with: the repository, its dbt project, and whether a dbt file changed since a time.

Both the dbt assets (assets/dbt_project.py: is the manifest stale?) and `billops-dbt`
(orchestration/private_hooks.py: may dbt reuse its saved manifest?) ask that question;
`billops-dbt` is a process per dbt invocation, so this module imports nothing heavy.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
PROJECT_SOURCES = ("models", "macros", "tests")


def project_changed_since(mtime: float) -> bool:
    """True when a dbt source file (models, macros, tests, project or profile) is newer than `mtime`."""
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in PROJECT_SOURCES:
        sources += (DBT_PROJECT_DIR / folder).rglob("*")
    return any(p.is_file() and p.stat().st_mtime > mtime for p in sources)
