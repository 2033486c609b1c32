"""The dbt project, declared once for dagster-dbt (DbtProject), with the target of BILLOPS_ENV."""

import sys
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path

from dagster_dbt import DagsterDbtProjectPreparer, DbtCliResource, DbtProject
from packaging import version

from orchestration.dbt_executable import project_changed_since
from orchestration.settings import DBT_PROJECT_DIR, billops_env

# dbt is installed beside this Python (the project's .venv): name it, whatever PATH says.
# `billops-dbt` is dbt handed the saved manifest instead of re-parsing (orchestration/dbt_executable.py).
DBT_EXECUTABLE = str(Path(sys.executable).parent / "billops-dbt")


class BillopsDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource, without two start-up costs that billops never uses.

    Before each invocation dagster-dbt opens a dbt adapter in this process (~3.6 s: loads the
    profile and project) only for `fetch_row_counts` / `fetch_column_metadata`, and it asks the
    executable for its version (`dbt --version`, a ~3.7 s subprocess). billops fetches neither,
    and dbt-core is pinned in this environment, so the version is read from the installed package.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, target=billops_env())


class VenvDbtPreparer(DagsterDbtProjectPreparer):
    """Parses the manifest with the dbt beside this Python, so PATH never has to be edited."""

    def _prepare_manifest(self, project: DbtProject) -> None:
        resource = BillopsDbtCliResource(project_dir=project, dbt_executable=DBT_EXECUTABLE)
        resource.cli(["parse", "--quiet"], target_path=project.target_path).wait()


preparer = VenvDbtPreparer()


def _manifest_is_stale() -> bool:
    """True when no manifest exists or a dbt source file changed after it was written."""
    if not dbt_project.manifest_path.exists():
        return True
    return project_changed_since(dbt_project.manifest_path.stat().st_mtime)


# Under `dagster dev` the manifest is re-parsed at load; elsewhere `make install`
# prepares it, and any process that finds it missing or older than the project
# re-parses it (~3 s), so assets never stream events for models they do not know.
preparer.prepare_if_dev(dbt_project)
if _manifest_is_stale():
    preparer.prepare(dbt_project)
