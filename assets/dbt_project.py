"""The dbt project that rates the month, declared once as dagster-dbt documents it: a `DbtProject`
with the target of BILLOPS_ENV.

`make install` prepares it (`dagster-dbt project prepare-and-package --file` this file: dbt parses
the project into `dbt_project/target/manifest.json`, which `@dbt_assets` read at load, assets/dbt.py).
Loading the assets (`prepare_for_loading`) parses it again under `dagster dev`, as
`DbtProject.prepare_if_dev()` does, so an edited model shows at once, and elsewhere only when the
manifest is missing or older than a dbt source file, so the assets never stream events for models
they do not know. Those parses run `dbt parse` (dbt's own command line) with the dbt beside this
Python: dagster-dbt's preparer looks `dbt` up on PATH, which `.venv/bin/dagster dev` run without
an activated venv does not have, and would ask it for `--version` first. The resource that runs
dbt during a close is bound on top, in orchestration/resources.py.
"""

import fcntl
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from config.project_files import DBT_PROJECT_DIR, project_changed_since
from config.settings import billops_env

# dbt is installed beside this Python (the project's .venv): name it, whatever PATH says.
# `billops-dbt` is that dbt handed the saved manifest instead of re-parsing (orchestration/private_hooks.py).
DBT_EXECUTABLE = str(Path(sys.executable).parent / "billops-dbt")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, target=billops_env())


def manifest_is_stale() -> bool:
    """True when no manifest exists or a dbt source file changed after it was written."""
    if not dbt_project.manifest_path.exists():
        return True
    return project_changed_since(dbt_project.manifest_path.stat().st_mtime)


def parse_project() -> None:
    """`dbt parse` of the project into its target folder (the manifest); an error names dbt's own message."""
    project_dir = str(dbt_project.project_dir)
    target_path = dbt_project.project_dir / dbt_project.target_path
    parsed = subprocess.run(
        [DBT_EXECUTABLE, "parse", "--quiet", "--no-send-anonymous-usage-stats", "--project-dir", project_dir,
         "--profiles-dir", project_dir, "--target", dbt_project.target, "--target-path", str(target_path),
         "--log-path", str(target_path)],
        cwd=project_dir, capture_output=True, text=True,
    )
    if parsed.returncode != 0:
        raise RuntimeError(f"dbt parse of {project_dir} failed ({parsed.returncode}): "
                           f"{(parsed.stdout + parsed.stderr).strip()[-2000:]}")


def prepare_manifest(always: bool) -> None:
    """Parse the project into its manifest when `always` or when it is stale, one process at a time
    (two test workers, or `dagster dev`'s code servers, load the definitions together)."""
    lock_path = dbt_project.project_dir / dbt_project.target_path / "manifest.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if always or manifest_is_stale():
            parse_project()


def prepare_for_loading() -> None:
    """Make the manifest current before `@dbt_assets` read it (assets/dbt.py): parsed again at each
    load under `dagster dev`, as `DbtProject.prepare_if_dev()` does, otherwise only when stale."""
    under_dagster_dev = dbt_project.preparer.using_dagster_dev()
    if under_dagster_dev or manifest_is_stale():
        prepare_manifest(always=under_dagster_dev)
