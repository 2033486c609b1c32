"""The project carries its own contract (docs/contract/), and everything points at it.

Three promises, each derived from the repository as it stands, never from a copy kept here:

- every reference to a contract document in a tracked file (code, SQL, YAML, Markdown, the
  Makefile) resolves to a file in the repository — a bare `billing-rules.md` in a docstring,
  or a path into a spec folder outside the repository, fails;
- every relative link of the contract's pages leads to a file, and to a heading where it
  names one;
- the contract names every quarantine reason code the code can write and every control id
  (C1…, P1…) the code defines as a check.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONTRACT = REPO / "docs" / "contract"
THIS_FILE = Path(__file__).resolve().relative_to(REPO).as_posix()

# Contract documents, by the names the project's spec used and the names under docs/contract/.
# The hyphenated stems are also caught without ".md" ("billing-rules §4").
STEMS = ("landing-contract", "billing-rules", "synthetic-data", "work-items", "published-interface")
PLAIN = ("controls", "kpis", "architecture", "inputs")
REFERENCE = re.compile(
    r"(?P<path>[\w./-]*?)\b(?P<name>(?:" + "|".join(STEMS) + r")(?:\.md\b|(?=\s*§))|(?:" + "|".join(PLAIN) + r")\.md\b)"
)
OUTSIDE = re.compile(r"\.\./shared\b|shared/spec\b|shared/golden\b")
LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
TEXT_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".sql", ".toml", ".cfg", ".txt", ".sh", ""}


def tracked_text_files() -> list[str]:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return [
        f for f in files
        if not f.startswith("tests/fixtures/") and f != THIS_FILE
        and (Path(f).suffix in TEXT_SUFFIXES or Path(f).name == "Makefile") and (REPO / f).is_file()
    ]


def resolves(referrer: str, path: str) -> bool:
    """A reference resolves from the repository root or from the referring file's folder."""
    bases = (REPO, (REPO / referrer).parent)
    return any((base / path).resolve().is_file() and (base / path).resolve().is_relative_to(REPO) for base in bases)


def bad_references(line: str, referrer: str) -> list[str]:
    """The contract references of one line that do not resolve (a bare stem has no path at all)."""
    bad = [m[0].strip() for m in REFERENCE.finditer(line)
           if not (m["name"].endswith(".md") and resolves(referrer, m["path"] + m["name"]))]
    outside = OUTSIDE.search(line)
    return bad + ([f"{outside[0]} (outside the repository)"] if outside else [])


def test_every_contract_reference_resolves_inside_the_repository():
    dangling = [
        f"{rel}:{number}: {bad}"
        for rel in tracked_text_files()
        for number, line in enumerate((REPO / rel).read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        for bad in bad_references(line, rel)
    ]
    assert dangling == []


def test_a_bare_or_outside_reference_is_caught():
    """The scanner itself, on lines it never saw: what it must reject, and what it must accept."""
    assert bad_references("see billing-rules.md §4", "quality/x.py") == ["billing-rules.md"]
    assert bad_references("(billing-rules §4, controls C12)", "warehouse/x.py") == ["billing-rules"]
    assert bad_references("the landing-contract.md, Tickets", "assets/x.py") == ["landing-contract.md"]
    assert bad_references("see controls.md", "quality/x.py") == ["controls.md"]
    assert bad_references("`../shared/spec/` was updated", "README.md") == ["../shared (outside the repository)"]
    assert bad_references("docs/contract/billing-rules.md §4 and docs/contract/controls.md", "quality/x.py") == []
    assert bad_references("[tax](billing-rules.md#5-tax)", "docs/contract/controls.md") == []
    assert bad_references("[rules](contract/work-items.md)", "docs/workitems.md") == []
    assert bad_references("[rules](contract/work-items.md)", "docs/contract/kpis.md") == ["contract/work-items.md"]


def anchors(markdown: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def contract_pages() -> list[Path]:
    return sorted(CONTRACT.glob("*.md")) + [REPO / "docs" / "README.md"]


@pytest.mark.parametrize("page", contract_pages(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_contract_links_lead_somewhere(page: Path):
    broken = []
    for match in LINK.finditer(page.read_text(encoding="utf-8")):
        target = match["target"]
        if re.match(r"^[a-z]+://|^mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no heading #{anchor})")
    assert broken == []


def test_the_contract_has_every_page_it_promises():
    index = (CONTRACT / "README.md").read_text(encoding="utf-8")
    pages = {p.name for p in CONTRACT.glob("*.md")} - {"README.md"}
    assert pages == {"inputs.md", "billing-rules.md", "controls.md", "work-items.md", "kpis.md",
                     "published-interface.md", "synthetic-data.md"}
    assert all(f"]({name})" in index for name in pages)


# --- what the code defines --------------------------------------------------------------------

def string_constants(folder: str) -> set[str]:
    """Every string literal (f-string pieces included) of the package's modules."""
    found = set()
    for module in sorted((REPO / folder).glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def code_reason_codes() -> set[str]:
    """The CHECK constraint's list, and every code ingestion's rules write (the assets/ modules that
    quarantine: SQL classifications `THEN '<code>'` and JSON-lines `Rule("<code>", ...)`)."""
    from warehouse.schema import QUARANTINE_REASONS

    written = set()
    for module in sorted((REPO / "assets").glob("*.py")):
        text = module.read_text(encoding="utf-8")
        if "audit.quarantine" in text or "Rule(" in text:
            written |= set(re.findall(r"\bRule\(\s*\"([a-z_]+)\"", text))
            written |= set(re.findall(r"THEN '([a-z_]+)'", text))
    return set(QUARANTINE_REASONS) | written


def documented_reason_codes() -> set[str]:
    """The codes of the reason table of inputs.md ("| `code` | applies to | when |")."""
    text = (CONTRACT / "inputs.md").read_text(encoding="utf-8")
    section = text.split("## Quarantine and its reason codes", 1)[1]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))


def test_every_quarantine_reason_code_is_in_the_contract():
    codes = code_reason_codes()
    assert {"bad_schema", "bad_json", "no_price", "conflicting_duplicate"} <= codes  # the scan finds them
    assert documented_reason_codes() == codes


def code_controls() -> tuple[set[str], set[str]]:
    """(control ids, full check names) the checks of quality/ and assets/ define."""
    strings = string_constants("quality") | string_constants("assets")
    ids = {m[1] for s in strings if (m := re.match(r"^([CP]\d{1,2})_", s))}
    names = {s for s in strings if re.fullmatch(r"[CP]\d{1,2}_[a-z][a-z0-9_]*", s)}
    return ids, names


def test_every_control_the_code_defines_is_in_the_contract():
    ids, names = code_controls()
    controls = (CONTRACT / "controls.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| ([CP]\d{1,2}) \|", controls, flags=re.M))
    assert {f"C{i}" for i in range(1, 14)} | {f"P{i}" for i in range(1, 5)} <= ids  # the scan finds them
    assert ids <= rows, f"controls defined in code but not in docs/contract/controls.md: {sorted(ids - rows)}"
    assert {n for n in names if f"`{n}`" not in controls} == set()
    assert {"C14", "P1", "P2", "P3", "P4"} <= rows and all(f"C{i}" in rows for i in range(1, 15))
