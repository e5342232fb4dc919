"""The registry package's place in the layers, registry references and URIs (no MLflow
needed): only the MLflow model's code reaches the API, and a model directory is predicted
without importing MLflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from docsort.errors import DocsortError
from docsort.tracking.uri import (
    Reference,
    default_uri,
    local_artifacts,
    parse_reference,
    registry_uri,
    sqlite_file,
    tracking_uri,
)
from tests.api.test_layers import PACKAGE, imported_modules

ENTRY_POINTS = {"pyfunc.py", "model_code.py"}  # what MLflow runs: over docsort.api


def test_tracking_never_imports_the_api_but_its_mlflow_model() -> None:
    bad = [
        f"{path.name}:{line} imports {module}"
        for path in sorted((PACKAGE / "tracking").glob("*.py"))
        if path.name not in ENTRY_POINTS
        for line, module in imported_modules(path)
        if module.startswith(("docsort.api", "docsort.cli", "docsort.serve"))
    ]
    assert bad == []


def test_references_parse_or_say_the_two_forms() -> None:
    assert parse_reference("models:/arxiv-topics@champion") == Reference(
        "arxiv-topics", alias="champion"
    )
    assert parse_reference("models:/arxiv/03") == Reference("arxiv", version="3")
    assert str(parse_reference("models:/a.b_c@challenger")) == "models:/a.b_c@challenger"
    for bad in (
        "models:/arxiv",
        "models:/arxiv/0",
        "models:/a/b/1",
        "models:/@x",
        "models:/a@",
        "runs:/x",
    ):
        with pytest.raises(DocsortError, match="give models:/NAME@ALIAS"):
            parse_reference(bad)


def test_the_default_registry_is_a_sqlite_file_in_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("DOCSORT_HOME", str(tmp_path / "home"))
    assert (
        tracking_uri() == registry_uri() == default_uri() == f"sqlite:///{tmp_path}/home/mlflow.db"
    )
    assert local_artifacts(default_uri()) == tmp_path / "home" / "mlartifacts"
    monkeypatch.delenv("DOCSORT_HOME")
    assert default_uri() == f"sqlite:///{Path('.docsort').resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert registry_uri() == "http://127.0.0.1:5000" and local_artifacts(registry_uri()) is None
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:///reg.db")
    assert (tracking_uri(), registry_uri()) == ("http://127.0.0.1:5000", "sqlite:///reg.db")
    assert registry_uri("sqlite:////x/y.db") == "sqlite:////x/y.db"  # --tracking-uri: both
    assert sqlite_file("sqlite:////x/y.db") == Path("/x/y.db")
    assert sqlite_file("sqlite:///rel/y.db") == Path("rel/y.db")


def test_mlflow_is_imported_only_when_a_registry_is_used() -> None:
    """Statically: MLflow is imported at module level only by the MLflow model's code, and the
    API reaches the tracking package at module level only for ``tracking.uri`` (no MLflow), so
    opening a model directory never imports it (the slow test below checks in a process)."""
    import ast

    for path in sorted((PACKAGE / "tracking").glob("*.py")):
        top = [
            n
            for n in ast.parse(path.read_text()).body
            if isinstance(n, ast.Import | ast.ImportFrom)
        ]
        names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        heavy = [n for n in names if n.split(".")[0] in ("mlflow", "sqlalchemy")]
        assert heavy == [] or path.name in ENTRY_POINTS, (path.name, heavy)
    for path in sorted((PACKAGE / "api").glob("*.py")):
        top = [n for n in ast.parse(path.read_text()).body if isinstance(n, ast.ImportFrom)]
        reached = {n.module for n in top if (n.module or "").startswith("docsort.tracking")}
        assert reached <= {"docsort.tracking.uri"}, (path.name, reached)


@pytest.mark.slow
def test_predicting_a_directory_imports_no_mlflow(model_dir: Path) -> None:
    script = (
        "import sys, docsort\n"
        f"rows = docsort.predict(docsort.load({str(model_dir)!r}), ['lattice attacks'])\n"
        "print([m for m in sys.modules if m.split('.')[0] in ('mlflow', 'sqlalchemy')])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_mlflow_signature_asks_for_the_columns_the_model_reads() -> None:
    from docsort.tracking.models import input_columns

    assert input_columns({"text": "text"}) == ["text"]
    assert input_columns({"text": ["title", "abstract"]}) == ["title", "abstract"]
    assert input_columns({"text": "text", "template": "{title}. {abstract} ({title})"}) == [
        "title",
        "abstract",
    ]
    pair = {"text": "anchor", "pair": "target", "context": "context"}
    assert input_columns(pair) == ["anchor", "target", "context"]
