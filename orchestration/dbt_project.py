"""The dbt project, declared once for dagster-dbt (DbtProject), with the target of BILLOPS_ENV."""

import sys
from pathlib import Path

from dagster_dbt import DagsterDbtProjectPreparer, DbtCliResource, DbtProject

from orchestration.settings import DBT_PROJECT_DIR, billops_env

# dbt is installed beside this Python (the project's .venv): name it, whatever PATH says.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, target=billops_env())


class VenvDbtPreparer(DagsterDbtProjectPreparer):
    """Parses the manifest with the dbt beside this Python, so PATH never has to be edited."""

    def _prepare_manifest(self, project: DbtProject) -> None:
        resource = DbtCliResource(project_dir=project, dbt_executable=DBT_EXECUTABLE)
        resource.cli(["parse", "--quiet"], target_path=project.target_path).wait()


preparer = VenvDbtPreparer()


def _manifest_is_stale() -> bool:
    """True when no manifest exists or a dbt source file changed after it was written."""
    if not dbt_project.manifest_path.exists():
        return True
    built = dbt_project.manifest_path.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        sources += (DBT_PROJECT_DIR / folder).rglob("*")
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


# Under `dagster dev` the manifest is re-parsed at load; elsewhere `make install`
# prepares it, and any process that finds it missing or older than the project
# re-parses it (~3 s), so assets never stream events for models they do not know.
preparer.prepare_if_dev(dbt_project)
if _manifest_is_stale():
    preparer.prepare(dbt_project)
