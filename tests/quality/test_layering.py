"""docsort.quality is a lower layer (docs/architecture.md): it never imports the api or the
cli, and only the audit imports cleanlab (suggest runs without it)."""

from __future__ import annotations

import subprocess
import sys

from tests.api.test_layers import offending


def test_quality_never_imports_the_api_or_the_cli() -> None:
    assert offending("quality", forbidden=("docsort.api", "docsort.cli")) == []


def test_importing_the_api_and_cli_loads_no_cleanlab() -> None:
    script = (
        "import sys, docsort.api, docsort.cli\n"
        "print([m for m in sys.modules if m.startswith('cleanlab')])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
