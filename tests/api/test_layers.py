"""The layering contract of docs/architecture.md: entry points go through ``docsort.api``,
models never reach up, and predicting never imports the report or matplotlib."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import docsort

PACKAGE = Path(docsort.__file__).parent
ENTRY_POINT_MAY_IMPORT = ("docsort.api", "docsort.errors", "docsort.progress")
LOWER_LAYERS = ("models", "data", "text", "evaluation", "ingest", "redact", "augment")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every docsort module a file imports (top level or inside functions)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(node.lineno, n) for n in names if n.startswith("docsort")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("docsort")]
    return found


def offending(folder: str, allowed: tuple[str, ...] = (), forbidden: tuple[str, ...] = ()):
    bad = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for line, module in imported_modules(path):
            # ``from docsort import api`` names the package docsort and the member api
            if module == "docsort":
                continue
            if allowed and not module.startswith(allowed):
                bad.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
            if forbidden and module.startswith(forbidden):
                bad.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    return bad


def test_the_cli_imports_only_the_api() -> None:
    # the CLI may start the service (``docsort serve``) and the batch engines (``docsort
    # predict --engine``), entry points of their own
    allowed = (*ENTRY_POINT_MAY_IMPORT, "docsort.cli", "docsort.serve", "docsort.batch")
    assert offending("cli", allowed=allowed) == []


def test_the_service_imports_only_the_api() -> None:
    bad = offending("serve", allowed=(*ENTRY_POINT_MAY_IMPORT, "docsort.serve"))
    assert bad == []


def test_the_batch_engines_import_only_the_api() -> None:
    bad = offending("batch", allowed=(*ENTRY_POINT_MAY_IMPORT, "docsort.batch"))
    assert bad == []


def test_lower_layers_never_import_the_api_or_the_cli() -> None:
    for folder in LOWER_LAYERS:
        assert offending(folder, forbidden=("docsort.api", "docsort.cli")) == [], folder


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from docsort.models.base import load\n")
    assert imported_modules(path) == [(2, "docsort.models.base"), (2, "docsort.models.base.load")]


def test_entry_points_ask_capabilities_not_kind_names() -> None:
    pattern = re.compile(r'kind ==|hasattr\(model|output == "scores"')
    hits = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for folder in ("api", "cli", "serve", "batch")
        for path in (PACKAGE / folder).rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


def test_loading_and_predicting_import_no_report_and_no_matplotlib(trained_model_dir: Path) -> None:
    script = (
        "import sys, docsort\n"
        f"model = docsort.load({str(trained_model_dir)!r})\n"
        "rows = docsort.predict(model, ['a neural network for speech recognition'])\n"
        "assert rows[0]['label'] in model.labels_.names\n"
        "heavy = [m for m in sys.modules if m.startswith(('matplotlib', 'docsort.evaluation'))]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
