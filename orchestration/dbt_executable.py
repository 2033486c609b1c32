"""`billops-dbt`: dbt itself, handed the project's parsed manifest instead of re-parsing it.

dbt re-parses the whole project (~8 s) whenever the vars or the profile differ from the
last parse in its target folder, and both carry the warehouse's path: every new warehouse
(each deployment, each test workspace) and every new month paid a full parse on its first
close. Nothing the parse produces depends on them: the period vars are read only by macros
at compile time (macros/billing_period.sql) and the path only names the database (its file
stem). So for `build`, `run` and `test` this executable loads the manifest that `dbt parse`
saved in the project's target folder and hands it to dbt's programmatic API
(`dbtRunner(manifest=...)`, dbt's documented way to skip parsing), provided that manifest is
newer than every project file and names the same database. Otherwise, and for every other
command, it is plain `dbt`. It imports no Dagster (only the project's paths): a subprocess of its own.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from orchestration.settings import DBT_PROJECT_DIR as PROJECT_DIR

SAVED_MANIFEST = PROJECT_DIR / "target" / "partial_parse.msgpack"
ACCELERATED = ("build", "run", "test")
PROJECT_SOURCES = ("models", "macros", "tests")


def project_changed_since(mtime: float) -> bool:
    """True when a dbt source file (models, macros, tests, project or profile) is newer than `mtime`."""
    sources = [PROJECT_DIR / "dbt_project.yml", PROJECT_DIR / "profiles.yml"]
    for folder in PROJECT_SOURCES:
        sources += (PROJECT_DIR / folder).rglob("*")
    return any(p.is_file() and p.stat().st_mtime > mtime for p in sources)


def _warehouse(args: list[str]) -> str | None:
    """The warehouse the profile will open: the `warehouse` var, else BILLOPS_WAREHOUSE."""
    if "--vars" in args:
        value = args[args.index("--vars") + 1]
        try:
            variables = json.loads(value)
        except json.JSONDecodeError:
            return None  # YAML vars: leave them to dbt
        if "warehouse" in variables:
            return variables["warehouse"]
    return os.environ.get("BILLOPS_WAREHOUSE")


def saved_manifest(args: list[str]):
    """The manifest saved by the last parse, or None where dbt must parse (see the module's docstring)."""
    if not args or args[0] not in ACCELERATED or not SAVED_MANIFEST.exists():
        return None
    if project_changed_since(SAVED_MANIFEST.stat().st_mtime):
        return None
    warehouse = _warehouse(args)
    if not warehouse:
        return None
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumuro_decoder

    try:
        manifest = Manifest.from_msgpack(SAVED_MANIFEST.read_bytes(), decoder=extended_mashumuro_decoder)
    except Exception:  # written by another dbt version, or mid-write: parse instead
        return None
    databases = {node.database for node in manifest.nodes.values() if node.resource_type == "model"}
    if databases != {Path(warehouse).stem}:
        return None
    manifest.build_parent_and_child_maps()  # as dbt does with a saved manifest it reuses
    return manifest


def main() -> None:
    args = sys.argv[1:]
    manifest = saved_manifest(args)
    if manifest is None:
        from dbt.cli.main import cli

        cli()  # plain dbt, exits with dbt's own code
        return
    from dbt.cli.main import dbtRunner

    result = dbtRunner(manifest=manifest).invoke(args)
    # dbt's exit codes: 0 success, 1 a node failed, 2 dbt itself failed.
    sys.exit(0 if result.success else (2 if result.exception is not None else 1))


if __name__ == "__main__":
    main()
