"""A fixed corpus of hostile inputs run through the real CLI: bad files, columns, labels,
configs, model directories, paths and option values. Each ends with exit 0 or 2, no
traceback, an error of one line (``error: ...``, the last line of stderr), a short stderr,
and no file changed outside the ``--out`` target.

Starting ``python -m docsort.cli`` costs about three seconds of imports here, which would
make ~80 cases a five-minute test; so one child process imports docsort once and forks a
process per case that runs ``docsort.cli.main`` with the case's arguments, exactly what
``python -m docsort.cli`` runs (two at a time, each case still in its own process, with an
address-space limit so that a runaway case fails instead of swapping the machine). The model
the cases use is trained once by the real ``python -m docsort.cli``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import pytest
import yaml

from tests.conftest import run_cli

MAX_STDERR = 2_000  # characters: a message quoting a 1 MB label name would be caught here
WORDS = {
    "sport": "ball goal team match score win league coach",
    "tech": "computer software chip data code network server",
    "food": "bread cheese cook taste meal soup recipe",
}

# Runs in a child of pytest: imports docsort once, then forks one process per case.
RUNNER = r"""
import json, os, resource, sys, time, traceback
import docsort.cli

cases, logs = json.load(open(sys.argv[1])), sys.argv[2]
results, running, pending = {}, {}, list(cases)

def start(case):
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid:
        running[pid] = (case["id"], time.monotonic())
        return
    code = 1
    try:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        os.chdir(case["cwd"])
        stdin = os.open(os.path.join(logs, case["id"] + ".in"), os.O_RDONLY)
        os.dup2(stdin, 0)
        for fd, name in ((1, ".out"), (2, ".err")):
            path = os.path.join(logs, case["id"] + name)
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.argv = ["docsort", *case["args"]]
        try:
            docsort.cli.main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        traceback.print_exc()  # what an uncaught exception prints from python -m docsort.cli
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(code)

while pending or running:
    while pending and len(running) < 2:
        start(pending.pop(0))
    pid, status = os.waitpid(-1, os.WNOHANG)
    if pid == 0:
        for pid, (name, began) in list(running.items()):
            if time.monotonic() - began > 120:
                os.kill(pid, 9)
        time.sleep(0.02)
        continue
    name, _ = running.pop(pid)
    results[name] = os.waitstatus_to_exitcode(status)
json.dump(results, sys.stdout)
"""


def case(name: str, *args: str, fails: str | None = None, stdin: str = "") -> dict[str, Any]:
    """One hostile input: CLI arguments (paths relative to the workspace; ``OUT`` is this
    case's own ``--out`` target) and ``fails``: a part of the one-line error (exit 2), or
    None for a run that succeeds (exit 0)."""
    out = f"out/{name}"
    args = tuple(out + a[3:] if a.startswith("OUT") else a for a in args)
    return {"id": name, "args": list(args), "fails": fails,
            "stdin": stdin, "out": out}  # fmt: skip


def train(name: str, data: str, *options: str, fails: str | None = None) -> dict[str, Any]:
    return case(name, "train", data, "--out", "OUT", *options, fails=fails)


def config(name: str, text: str, fails: str | None, *options: str) -> dict[str, Any]:
    """``docsort train good.csv --config configs/NAME.yaml``, the file holding ``text``."""
    spec = train(name, "good.csv", "--config", f"configs/{name}.yaml", *options, fails=fails)
    spec["config"] = text
    return spec


def predict(name: str, model: str, data: str = "good.csv", *options: str,
            fails: str | None = None) -> dict[str, Any]:  # fmt: skip
    return case(name, "predict", model, data, "--out", "OUT.jsonl", *options, fails=fails)


def laughs(key: str) -> str:
    """The billion-laughs YAML: nine levels of ten aliases each (10**9 values) under ``key``."""
    names = "abcdefghi"
    lines = ["a: &a [" + ", ".join(['"lol"'] * 10) + "]"]
    lines += [f"{n}: &{n} [{', '.join(['*' + names[k]] * 10)}]" for k, n in enumerate(names[1:])]
    return "\n".join(lines) + f"\n{key}: *i\n"


# docsort.io creates the parent folders of an --out with mkdir(exist_ok=True), which raises
# FileExistsError (errno EEXIST, not among the errors io turns into one line) when a part of
# the path is a file: a traceback, left to the io module's owner to fix
LONG = "x" * 300  # a path component longer than the 255 bytes a file system allows

CASES = [
    # -- files ------------------------------------------------------------------------------
    train("missing-file", "absent.csv", fails="not found"),
    train("empty-file", "empty.csv", fails="empty.csv"),
    train("header-only", "header.csv", fails="header.csv"),
    train("binary-as-csv", "binary.csv", fails="binary.csv"),
    train("nul-bytes", "nul.csv"),  # read as text: NUL is a character
    train("utf16-csv", "utf16.csv", fails="utf16.csv"),
    train("unclosed-quote", "quotes.csv", fails="quotes.csv"),
    train("wrong-extension", "data.xlsx", fails="unknown file type .xlsx"),
    train("no-extension", "noext", fails="noext"),
    train("malformed-json", "data.json", fails="data.json"),
    train("json-not-a-list", "number.json", fails="number.json"),
    train("malformed-jsonl", "data.jsonl", fails="line 2"),
    train("corrupt-parquet", "data.parquet", fails="data.parquet"),
    train("empty-folder", "folder_empty", fails="folder_empty"),
    train("folder-without-text", "folder_bin", fails="folder_bin"),
    train("folder-of-one-label", "folder_one", fails="one label only"),
    train("a-device-as-data", "/dev/null", fails="/dev/null"),
    predict("huge-cell-is-cut", "model", "big_cell.csv"),
    # -- columns ----------------------------------------------------------------------------
    train("no-text-column", "good.csv", "--text", "body", fails="no column 'body'"),
    train("no-label-column", "good.csv", "--label", "category", fails="no column 'category'"),
    train("empty-text-option", "good.csv", "--text", "", fails="--text"),
    train("empty-label-sep", "good.csv", "--label-sep", "", fails="--label-sep"),
    train("unclosed-template", "good.csv", "--template", "{text", fails="--template"),
    train("nested-template", "good.csv", "--template", "{text!r:>{x}}", fails="--template"),
    train("second-column-absent", "good.csv", "--text", "text,abstract", fails="'abstract'"),
    predict("predict-no-column", "model", "good.csv", "--text", "body", fails="'body'"),
    predict("keep-an-output-field", "model", "good.csv", "--keep", "label", fails="--keep"),
    # -- labels -----------------------------------------------------------------------------
    train("no-labels-at-all", "no_labels.csv", fails="no row has a label"),
    train("one-label", "one_label.csv", fails="one label only"),
    train("labels-file-missing", "good.csv", "--labels", "absent.yaml", fails="not found"),
    train("labels-not-yaml", "good.csv", "--labels", "labels_bad.yaml", fails="not valid YAML"),
    train("labels-bomb", "good.csv", "--labels", "labels_bomb.yaml", fails="expand it to"),
    train("labels-a-list", "good.csv", "--labels", "labels_list.yaml", fails="labels_list.yaml"),
    train(
        "label-name-a-list",
        "good.csv",
        "--labels",
        "labels_name_list.yaml",
        fails="a label name is a text, not a list",
    ),  # fmt: skip
    train(
        "labels-file-lacks-a-label",
        "good.csv",
        "--labels",
        "labels_two.yaml",
        fails="'tech' is not in the labels file",
    ),  # fmt: skip
    train("huge-label-name-absent-from-data", "good.csv", "--labels", "labels_huge.yaml"),
    predict(
        "predict-unknown-labels",
        "model",
        "good.csv",
        "--labels",
        "labels_other.yaml",
        fails="'weather' is unknown to this model",
    ),  # fmt: skip
    # -- configs (issue 23's parameter cases, then structure) --------------------------------
    config("C-text", 'C: "abc"', "tfidf C must be a number > 0, not 'abc'"),
    config("C-negative", "C: -1", "tfidf C must be a number > 0, not -1"),
    config("C-list", "C: [1, 2]", "not a list [1, 2]"),
    config("C-mapping", "C: {a: 1}", "not a mapping {'a': 1}"),
    config("max-features-0", "max_features: 0", "tfidf max_features must be a whole number"),
    config("max-iter-negative", "max_iter: -3", "tfidf max_iter must be a whole number >= 1"),
    config("min-df-fraction", "min_df: 2.5", "tfidf min_df must be a whole number >= 1"),
    config("class-weight-word", "class_weight: sometimes", "tfidf class_weight must be"),
    config("seed-text", 'seed: "x"', "tfidf seed must be a whole number"),
    config("ngrams-reversed", "word_ngrams: [3, 1]", "tfidf word_ngrams must be [low, high]"),
    config("ngrams-text", 'word_ngrams: "abc"', "tfidf word_ngrams must be"),
    config("calibration-folds-1000", "calibration_folds: 1000", None),
    config("config-bomb", laughs("C"), "expand it to more than"),
    config("config-a-list", "- C\n- 1\n", "expected a mapping"),
    config("config-not-yaml", "C: [1, 2\n", "not valid YAML"),
    config("config-empty", "", None),
    config("unknown-kind-in-config", "kind: bert\n", "unknown model kind 'bert'"),
    config("unknown-parameter", "colour: red\n", "has no parameter 'colour'"),
    config("non-text-key", "1: 2\n", "has no parameter 1"),
    config(
        "cascade-stage-value",
        "stages: [{kind: tfidf, C: 0}, {kind: tfidf}]\n",
        "cascade stage 1 (tfidf-1): tfidf C must be",
        "--model",
        "cascade",
    ),  # fmt: skip
    config("llm-old-parameter-name", "model: qwen-0.5b\n", None, "--model", "llm"),
    config("llm-both-names", "model: a\nbase: b\n", "give 'base' only", "--model", "llm"),
    train("unknown-kind-option", "good.csv", "--model", "bert", fails="unknown model kind"),
    train("config-missing", "good.csv", "--config", "absent.yaml", fails="not found"),
    train("config-binary", "good.csv", "--config", "binary.csv", fails="not UTF-8"),
    # -- model directories ------------------------------------------------------------------
    predict("model-missing", "absent_model", fails="not found"),
    predict("model-empty-dir", "m_empty", fails="no docsort.yaml"),
    predict("model-a-file", "good.csv", fails="good.csv"),
    predict("manifest-not-yaml", "m_badyaml", fails="is a corrupt model"),
    predict("manifest-a-list", "m_list", fails="is a corrupt model"),
    predict("manifest-bomb", "m_bomb", fails="expand it to"),
    predict("manifest-bad-params", "m_params", fails="tfidf C must be a number"),
    predict("weights-garbage", "m_garbage", fails="weights cannot be read"),
    predict("weights-a-dict", "m_dict", fails="holds a dict, not a fitted tfidf model"),
    predict("weights-missing", "m_noweights", fails="tfidf.joblib is missing"),
    predict("manifest-fewer-labels", "m_fewer", fails="lists 2 labels, its weights"),
    predict("manifest-more-labels", "m_more", fails="lists 4 labels, its weights"),
    predict("saved-by-a-newer-docsort", "m_newer"),
    case(
        "eval-corrupt-model",
        "eval",
        "m_dict",
        "good.csv",
        "--out",
        "OUT",
        fails="is a corrupt model",
    ),  # fmt: skip
    case(
        "ensemble-corrupt-member",
        "ensemble",
        "model",
        "m_fewer",
        "--out",
        "OUT",
        fails="ensemble member 2",
    ),  # fmt: skip
    # -- paths ------------------------------------------------------------------------------
    *(
        train("out-inside-a-file", "good.csv", "--out", "good.csv/model", fails="good.csv"),
        predict(
            "predict-out-inside-a-file",
            "model",
            "good.csv",
            "--out",
            "good.csv/p.jsonl",
            fails="good.csv",
        ),  # fmt: skip
        case(
            "eval-out-inside-a-file",
            "eval",
            "model",
            "good.csv",
            "--out",
            "good.csv/r",
            fails="good.csv",
        ),  # fmt: skip
    ),
    train("out-is-the-data", "good.csv", "--out", "good.csv", fails="good.csv"),
    train("out-a-project-folder", "good.csv", "--out", "project", fails="project"),
    train("out-the-workspace", "good.csv", "--out", ".", fails="'.'"),
    train("out-component-too-long", "good.csv", "--out", f"out/{LONG}", fails="out/"),
    train(
        "out-path-too-long", "good.csv", "--out", "out/" + "/".join(["y" * 200] * 25), fails="out/"
    ),  # fmt: skip
    predict("predict-out-a-folder", "model", "good.csv", "--out", "project", fails="project"),
    case("eval-out-a-file", "eval", "model", "good.csv", "--out", "good.csv", fails="good.csv"),
    # -- option values ----------------------------------------------------------------------
    predict("top-k-0", "model", "good.csv", "--top-k", "0", fails="--top-k"),
    predict("top-k-negative", "model", "good.csv", "--top-k", "-1", fails="--top-k"),
    train("valid-split-2", "good.csv", "--valid-split", "2", fails="--valid-split"),
    train("valid-split-negative", "good.csv", "--valid-split", "-0.5", fails="--valid-split"),
    train("window-without-long-doc", "good.csv", "--window", "3", fails="--long-doc"),
    train("window-3", "good.csv", "--long-doc", "window", "--window", "3", fails="at least 8"),
    train("long-doc-unknown", "good.csv", "--long-doc", "sideways", fails="strategy"),
    train("threads-0", "good.csv", "--threads", "0", fails="threads"),
    train("device-gpu", "good.csv", "--device", "gpu", fails="device"),
    predict("stdin-empty", "model", "-", fails="no"),
]


def write_workspace(root: Path) -> None:
    """The files the cases read, each hostile in one way."""
    rng = random.Random(0)
    lines = ["text,label"] + [
        f"{' '.join(rng.choices(WORDS[label].split(), k=8))},{label}"
        for label in WORDS
        for _ in range(12)
    ]
    good = "\n".join(lines) + "\n"
    files: dict[str, str | bytes] = {
        "good.csv": good,
        "big_cell.csv": "text,label\n" + "word " * 300_000 + ",sport\nball goal,sport\n",
        "empty.csv": "",
        "header.csv": "text,label\n",
        "binary.csv": rng.randbytes(4096),
        "nul.csv": "text,label\n" + "ball\x00goal,sport\nchip\x00code,tech\n" * 10,
        "utf16.csv": good.encode("utf-16"),
        "quotes.csv": 'text,label\n"an unclosed quote,sport\nball,sport\n',
        "data.xlsx": good,
        "noext": good,
        "data.json": '{"text": ',
        "number.json": "42\n",
        "data.jsonl": '{"text": "ball", "label": "sport"}\n{"text": "goal", "label"\n',
        "data.parquet": "not a parquet file\n",
        "folder_bin/blob.bin": rng.randbytes(64),
        "folder_one/sport/a.txt": "ball goal",
        "folder_one/sport/b.txt": "team match",
        "no_labels.csv": "text,label\n" + "ball goal,\n" * 10,
        "one_label.csv": "text,label\n" + "ball goal,sport\n" * 10,
        "labels_bad.yaml": "labels: [unclosed\n",
        "labels_bomb.yaml": laughs("labels"),
        "labels_list.yaml": "- sport\n- tech\n",
        "labels_name_list.yaml": "labels:\n  - name: [sport, tech]\n  - food\n",
        "labels_two.yaml": "sport: games\nfood: meals\n",
        "labels_huge.yaml": f"labels: [sport, tech, food, {'z' * 200_000}]\n",
        "labels_other.yaml": "sport: games\nweather: rain\n",
        "project/notes.txt": "my notes\n",
        "project/src/main.py": "print('hello')\n",
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    (root / "folder_empty").mkdir()
    (root / "m_empty").mkdir()
    (root / "configs").mkdir()
    (root / "out").mkdir()
    for spec in CASES:
        if "config" in spec:
            (root / "configs" / f"{spec['id']}.yaml").write_text(spec["config"], encoding="utf-8")


def corrupt_copies(root: Path) -> None:
    """Copies of the trained model, each broken in one way."""
    model = root / "model"
    manifest = yaml.safe_load((model / "docsort.yaml").read_text(encoding="utf-8"))

    def copy(name: str, **changes: Any) -> Path:
        shutil.copytree(model, root / name)
        if changes:
            text = yaml.safe_dump({**manifest, **changes})
            (root / name / "docsort.yaml").write_text(text, encoding="utf-8")
        return root / name

    copy("m_badyaml").joinpath("docsort.yaml").write_text("kind: [tfidf\n", encoding="utf-8")
    copy("m_list").joinpath("docsort.yaml").write_text("- kind\n- labels\n", encoding="utf-8")
    copy("m_bomb").joinpath("docsort.yaml").write_text(
        laughs("labels") + "kind: tfidf\n", encoding="utf-8"
    )
    copy("m_params", params={**manifest["params"], "C": "abc"})
    copy("m_garbage").joinpath("tfidf.joblib").write_bytes(b"not a pickle")
    joblib.dump({"predict_proba": None}, copy("m_dict") / "tfidf.joblib")
    copy("m_noweights").joinpath("tfidf.joblib").unlink()
    copy("m_fewer", labels=manifest["labels"][:2])
    copy("m_more", labels=[*manifest["labels"], {"name": "weather"}])
    copy("m_newer", docsort_version="99.0.0")


def snapshot(root: Path) -> dict[str, Any]:
    """Every path under ``root`` but ``out/``: its type, mode and content hash."""
    seen: dict[str, Any] = {}
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        if rel == Path("out"):
            dirs[:] = []
            continue
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            digest = hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else None
            seen[str(rel / name)] = (info.st_mode, digest)
    return seen


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case run once; their exit codes and stderr, and the workspace before and after."""
    root = tmp_path_factory.mktemp("workspace")
    logs = tmp_path_factory.mktemp("logs")
    write_workspace(root)
    trained = run_cli("train", str(root / "good.csv"), "--out", str(root / "model"))
    assert trained.returncode == 0, trained.stderr
    corrupt_copies(root)
    for spec in CASES:
        (logs / f"{spec['id']}.in").write_text(spec["stdin"], encoding="utf-8")
    (logs / "cases.json").write_text(json.dumps([{**c, "cwd": str(root)} for c in CASES]))
    before = snapshot(root)
    env = {**os.environ, "DOCSORT_NO_PROGRESS": "1", "COLUMNS": "200",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(logs / "cases.json"), str(logs)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    codes = json.loads(done.stdout)
    stderr = {c["id"]: (logs / f"{c['id']}.err").read_text(errors="replace") for c in CASES}
    return {"root": root, "codes": codes, "stderr": stderr, "before": before,
            "after": snapshot(root)}  # fmt: skip


def test_the_corpus_is_large_and_its_names_unique() -> None:
    assert len(CASES) >= 50
    assert len({c["id"] for c in CASES}) == len(CASES)


def marked(spec: dict[str, Any]) -> Any:
    """A case as a test parameter; a known defect outside this test's reach is a strict xfail
    (it fails the run once fixed, so that the mark goes)."""
    marks = [pytest.mark.xfail(strict=True, reason=spec["xfail"])] if "xfail" in spec else []
    return pytest.param(spec, id=spec["id"], marks=marks)


@pytest.mark.parametrize("spec", [marked(c) for c in CASES])
def test_a_hostile_input_ends_in_one_line(outcome: dict[str, Any], spec: dict[str, Any]) -> None:
    code, err = outcome["codes"][spec["id"]], outcome["stderr"][spec["id"]]
    assert "Traceback" not in err, err[-3000:]
    assert code in (0, 2), f"exit {code}: {err[-3000:]}"
    quoted = max(len(a) for a in spec["args"])  # a message may quote the path it was given
    assert len(err) < MAX_STDERR + quoted, err[:MAX_STDERR]
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    if spec["fails"] is None:
        assert code == 0 and not errors, err
    else:
        assert code == 2 and len(errors) == 1 and lines[-1] == errors[0], err
        assert spec["fails"] in errors[0], errors[0]


def test_no_file_outside_the_out_targets_changed(outcome: dict[str, Any]) -> None:
    before, after = outcome["before"], outcome["after"]
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert changed == []
    targets = {Path(c["out"]).name for c in CASES} | {f"{Path(c['out']).name}.jsonl" for c in CASES}
    left = sorted(p.name for p in (outcome["root"] / "out").iterdir())
    assert [name for name in left if name not in targets] == []  # no temp files left behind


def test_cases_that_warn_say_so_in_one_line(outcome: dict[str, Any]) -> None:
    err = outcome["stderr"]
    assert "warning: tfidf calibration_folds 1000 is more than" in err["calibration-folds-1000"]
    assert "warning: llm parameter 'model' is deprecated" in err["llm-old-parameter-name"]
    assert "saved by docsort 99.0.0, newer than" in err["saved-by-a-newer-docsort"]
    assert "characters)" in err["huge-label-name-absent-from-data"]  # the name was cut
