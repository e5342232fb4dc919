"""The README and docs/: the README stays short, its quick commands run on a copy of the
repository, links resolve, and every benchmark table rebuilds byte-identical from the committed
results (benchmarks/results/)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
BENCHMARKS_PAGE = DOCS / "benchmarks.md"
MAX_README_LINES = 200
QUICK_SECONDS = 300  # per block; the whole run takes well under a minute on 2 cores

# script, its table-only arguments, the name of its <!-- NAME:start --> marker
TABLE_SCRIPTS = [
    ("run.py", ["--table-only"], "results"),
    ("cascade.py", ["--table-only"], "cascade"),
    ("certified.py", ["--table-only"], "certified"),
    ("dual.py", ["table"], "dual"),
    ("llm.py", ["--table-only"], "llm"),
    ("llm_lora.py", ["--table-only"], "llm-lora"),
    ("long_docs.py", ["--table-only"], "long"),
    ("pair.py", ["--table-only"], "pair"),
    ("serve.py", ["--table-only"], "serve"),
    ("batch.py", ["--table-only"], "batch"),
    ("augment.py", ["table"], "augment"),
    ("distill.py", ["table"], "distill"),
    ("tune.py", ["table"], "tune"),
    ("train_workers.py", ["table"], "workers"),
    ("grpo.py", ["table"], "grpo"),
    ("embedders.py", ["--table-only"], "embedders"),
]


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of every fenced code block of a Markdown text."""
    blocks: list[tuple[str, str]] = []
    info: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if info is None:
            if line.startswith("```"):
                info, body = line[3:].strip(), []
        elif line.startswith("```"):
            blocks.append((info, "\n".join(body) + "\n"))
            info = None
        else:
            body.append(line)
    assert info is None, "a fenced block is not closed"
    return blocks


def prose(text: str) -> str:
    """The text outside fenced code blocks (a ``# comment`` there is not a heading)."""
    kept: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return "\n".join(kept)


def quick_blocks(text: str) -> list[str]:
    return [body for info, body in fenced_blocks(text) if info.split() == ["bash", "quick"]]


def test_fenced_blocks_reads_info_strings() -> None:
    text = "a\n```bash quick\necho 1\n```\n```python\nx = 1\n```\n```bash\nls\n```\n"
    assert fenced_blocks(text) == [
        ("bash quick", "echo 1\n"),
        ("python", "x = 1\n"),
        ("bash", "ls\n"),
    ]
    assert quick_blocks(text) == ["echo 1\n"]
    assert prose(text) == "a"


def test_readme_is_at_most_200_lines() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move text to docs/"


def test_readme_keeps_the_ci_commands() -> None:
    """CI (.ci/run) runs the README's set-up and test commands: they stay byte-identical."""
    code = {
        line.split("#")[0].rstrip()
        for info, body in fenced_blocks(README.read_text(encoding="utf-8"))
        if info.split()[:1] == ["bash"]
        for line in body.splitlines()
    }
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [line for line in ci if line and not line.startswith(("#", "set ", "cd "))]
    assert commands, ".ci/run runs no command"
    for command in commands:
        assert command in code, f"the README lacks the CI command {command!r}"


def test_readme_commands_name_no_shared_paths() -> None:
    """A fresh clone has no ../shared: README commands use built-in sets or repository files."""
    for info, body in fenced_blocks(README.read_text(encoding="utf-8")):
        assert "../shared" not in body, f"a ```{info} block of README.md names ../shared"


def _copy_of_repository(dest: Path) -> Path:
    """The tracked files (as they are in the working tree) and the project's .venv, linked."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # tracked but deleted in the working tree: not part of the copy
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    # `bash scripts/setup.sh` builds .venv in a fresh clone; this copy borrows the running one
    (dest / ".venv").symlink_to(Path(sys.executable).parent.parent, target_is_directory=True)
    return dest


def test_readme_quick_blocks_run(tmp_path: Path) -> None:
    blocks = quick_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 3, "the README should mark its quick commands ```bash quick"
    assert any("docsort demo" in b for b in blocks)
    assert any("docsort train" in b for b in blocks)
    repo = _copy_of_repository(tmp_path / "repo")
    env = dict(os.environ, DOCSORT_NO_PROGRESS="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for block in blocks:  # in README order, in one directory: later blocks may use earlier ones
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=QUICK_SECONDS,
        )
        assert done.returncode == 0, (
            f"README block failed ({done.returncode}):\n{block}\n"
            f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
        )
        if "docsort demo" in block:  # the main job on built-in defaults, as the README says
            metrics = json.loads((repo / "runs/demo/eval/metrics.json").read_text())
            assert metrics["accuracy"] > 0.95 and metrics["n"] == 445
            assert "report.md" in done.stdout and (repo / "runs/demo/model").is_dir()


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = prose(path.read_text(encoding="utf-8"))
    return {_slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def test_slug_matches_github() -> None:
    assert _slug("Dual encoder (`dual`)") == "dual-encoder-dual"
    assert _slug("Pair scoring: USPTO phrase-to-phrase matching") == (
        "pair-scoring-uspto-phrase-to-phrase-matching"
    )


MARKDOWN = [README, *sorted(DOCS.rglob("*.md"))]


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    text = prose(page.read_text(encoding="utf-8"))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        name, _, anchor = target.partition("#")
        linked = (page.parent / name).resolve() if name else page
        assert linked.exists(), f"{page.name}: link to a missing file {target}"
        if anchor:
            assert anchor in _anchors(linked), f"{page.name}: no heading for {target}"


def _blank_section(text: str, name: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    assert text.count(start) == 1 and text.count(end) == 1, f"markers of {name}"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n(to be rebuilt)\n{end}{tail}"


@pytest.mark.parametrize(
    ("script", "args", "name"), TABLE_SCRIPTS, ids=[s[0] for s in TABLE_SCRIPTS]
)
def test_benchmark_table_rebuilds_from_results(
    tmp_path: Path, script: str, args: list[str], name: str
) -> None:
    """The script's table-only mode, on a copy of docs/benchmarks.md whose table was blanked,
    writes back exactly the committed page."""
    _rebuilds(tmp_path, script, args, name, BENCHMARKS_PAGE)


# tables kept on another page (a kind's, a command's): script, table-only arguments, marker
# name, page
PAGE_TABLE_SCRIPTS = [
    ("fusion.py", ["table"], "fusion", DOCS / "kinds" / "encoder.md"),
    ("batch.py", ["--table-only"], "batch-summary", DOCS / "batch.md"),
    ("tune.py", ["table"], "tune-summary", DOCS / "tune.md"),
]


@pytest.mark.parametrize(
    ("script", "args", "name", "page"), PAGE_TABLE_SCRIPTS, ids=[s[0] for s in PAGE_TABLE_SCRIPTS]
)
def test_page_table_rebuilds_from_results(
    tmp_path: Path, script: str, args: list[str], name: str, page: Path
) -> None:
    """The same for a table on another page than docs/benchmarks.md."""
    _rebuilds(tmp_path, script, args, name, page)


def _rebuilds(tmp_path: Path, script: str, args: list[str], name: str, page: Path) -> None:
    committed = page.read_text(encoding="utf-8")
    copy = tmp_path / page.name
    copy.write_text(_blank_section(committed, name), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args, "--docs", str(copy)],
        cwd=ROOT,
        env=dict(os.environ, DOCSORT_NO_PROGRESS="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert page.read_text(encoding="utf-8") == committed, "the real page was written"
    rebuilt = copy.read_text(encoding="utf-8")
    assert rebuilt == committed, (
        f"{script} rebuilds the {name} table differently from {page.name}: "
        "rerun it without --docs and commit the page, or fix the script"
    )
