"""The dbt project, declared once for dagster-dbt (DbtProject)."""

import os
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from orchestration.settings import DBT_PROJECT_DIR

# dbt is installed beside this Python (the project's .venv); find it whatever PATH says.
_venv_bin = str(Path(sys.executable).parent)
if _venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _venv_bin + os.pathsep + os.environ.get("PATH", "")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, target="local")
# Under `dagster dev` the manifest is re-parsed at load; elsewhere `make install`
# (or the first import, when it is missing) prepares it.
dbt_project.prepare_if_dev()
if not dbt_project.manifest_path.exists():
    dbt_project.preparer.prepare(dbt_project)
