"""The packages are layered: every import points down, and only config/settings.py reads the environment.

A newcomer reads billops from the bottom up (README, "Layout"): the settings and the billing month,
the warehouse (storage), the domains, the wiring of the one Dagster code location, the command.
An import from a lower layer into a higher one, or between two packages of one layer, is what made
the loops issue 15 named (orchestration <-> assets/quality, workitems -> orchestration.settings
-> ... -> workitems, alerts -> orchestration). The synthetic generator stands apart: it writes the
landing zone from the contract and reads the published copy, so it imports no production module.
These checks read the source (ast), so they run in well under a second.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Bottom to top. A package may import its own modules and any package of a LOWER layer, nothing else.
LAYERS: list[tuple[str, ...]] = [
    ("config",),                 # settings (the one reader of the environment), the billing month, redaction
    ("warehouse",),              # storage: the DuckDB warehouse, the operational store, the published copy
    ("workitems", "alerts"),     # domains the others build on: the queue, the on-call alerts
    ("quality",),                # the controls (asset checks); payment controls read the queue
    ("assets",),                 # ingestion, rating (dbt), issuing, publication
    ("orchestration",),          # the one Definitions, jobs, schedules, sensors, resources, the instance
    ("console",),                # the billing team's web console: reads the published copy and the queue
    ("cli",),                    # `billops`
]
APART = ("synthetic",)  # imports no production package, and none imports it but the command
PRODUCTION = tuple(package for layer in LAYERS for package in layer) + APART
LAYER_OF = {package: index for index, layer in enumerate(LAYERS) for package in layer}
# Only the command starts the generator; no other package may depend on it.
MAY_IMPORT_APART = ("cli",)

SETTINGS_MODULE = "config/settings.py"
ENVIRONMENT_READS = ("environ", "getenv", "environb", "putenv", "unsetenv")


def production_files() -> list[Path]:
    return sorted(path for package in PRODUCTION for path in (REPO / package).rglob("*.py"))


def imported_packages(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import, inside functions too."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def import_problem(importer: str, imported: str) -> str | None:
    """Why `importer` may not import `imported` (both top-level packages), or None."""
    if imported == importer or imported not in PRODUCTION:
        return None
    if importer in APART:
        return f"{importer} imports no production module (it keeps its own copy of what it needs)"
    if imported in APART:
        return None if importer in MAY_IMPORT_APART else f"only {', '.join(MAY_IMPORT_APART)} may start {imported}"
    if LAYER_OF[imported] > LAYER_OF[importer]:
        return f"runs back up: {importer} (layer {LAYER_OF[importer] + 1}) imports {imported} (layer {LAYER_OF[imported] + 1})"
    if LAYER_OF[imported] == LAYER_OF[importer]:
        return f"sideways: {importer} and {imported} share layer {LAYER_OF[importer] + 1}"
    return None


def test_every_production_package_has_a_layer():
    on_disk = {p.name for p in REPO.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert on_disk - {"tests", "bench"} <= set(PRODUCTION), "a new package: give it a layer in LAYERS"


def test_imports_point_down_the_layers():
    problems = []
    for path in production_files():
        importer = path.relative_to(REPO).parts[0]
        for line, imported in imported_packages(ast.parse(path.read_text(), str(path))):
            problem = import_problem(importer, imported)
            if problem:
                problems.append(f"{path.relative_to(REPO)}:{line} imports {imported}: {problem}")
    assert problems == []


def environment_reads(tree: ast.AST) -> list[int]:
    """Lines that touch the process environment: os.environ / os.getenv, or `from os import environ`."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_READS \
                and isinstance(node.value, ast.Name) and node.value.id == "os":
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(alias.name in ENVIRONMENT_READS for alias in node.names):
            lines.append(node.lineno)
    return lines


def test_only_the_settings_module_reads_the_environment():
    readers = [f"{path.relative_to(REPO)}:{line}" for path in production_files()
               if path.relative_to(REPO).as_posix() != SETTINGS_MODULE
               for line in environment_reads(ast.parse(path.read_text(), str(path)))]
    assert readers == []
    assert environment_reads(ast.parse((REPO / SETTINGS_MODULE).read_text())), "the settings module reads it"


def test_the_checks_catch_what_they_name():
    """The rules themselves, on crafted cases (a test that can never fail proves nothing)."""
    assert import_problem("warehouse", "orchestration").startswith("runs back up")
    assert import_problem("workitems", "alerts").startswith("sideways")
    assert import_problem("synthetic", "warehouse").startswith("synthetic imports no production module")
    assert import_problem("assets", "synthetic") == "only cli may start synthetic"
    assert import_problem("orchestration", "assets") is None and import_problem("cli", "synthetic") is None
    assert import_problem("config", "dagster") is None
    tree = ast.parse("import os\nfrom os import getenv\nx = os.environ.get('A')\ny = os.path.join('a')\n")
    assert environment_reads(tree) == [2, 3]
