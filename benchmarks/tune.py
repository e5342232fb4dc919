"""Hyperparameter search on the same wall-clock budget: Optuna TPE (+ median pruning), Ray Tune
ASHA and Ray Tune PBT against the kind's default configuration, for the encoder with LoRA on
minilm over a banking77 subset.

    nice .venv/bin/python benchmarks/tune.py run --budget 300      # the default, then each search
    .venv/bin/python benchmarks/tune.py table                      # the docs section only

The subset: the first ``--labels`` intents (sorted by name), ``--train`` training rows and
``--valid`` validation rows of each, drawn from banking77's training rows with ``--seed``; the
test rows are banking77's test rows of those intents. Each search gets ``--budget`` seconds of
wall time on this machine (Optuna starts no trial after it and lets the running one finish;
Ray Tune stops every trial still running at it; the wall time really taken is recorded),
the same space (lr, weight decay, warm-up ratio,
LoRA rank) and the same fixed parameters. Optuna runs one trial at a time with every core; Ray
ASHA runs one trial per core (``--cpus-per-trial 1``) and Ray PBT its whole population at once
(``--cpus-per-trial`` cores / population: a population that does not fit is paused and
restarted from its checkpoints at every epoch, see docs/tune.md). The value compared is the
best validation macro-F1 a search found (what it optimises); the test macro-F1 of its best
model is beside it.
Results: benchmarks/results/tune/SUBSET/METHOD-seedN.json (run once per ``--seed``), SUBSET
naming the subset (``banking77-10i-10t-5v``: 10 intents, 10 training and 5 validation rows
each); the tables between the ``<!-- tune:start -->`` markers of docs/benchmarks.md (every
method's row, one part per subset) and the ``<!-- tune-summary:start -->`` markers of
docs/tune.md (one row per seed, which search did best and by how much) are rebuilt from them
only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from docsort.data.dataset import Dataset
from docsort.io import write_json
from run import (
    DOCS,
    _busy_seconds,
    _own_seconds,
    machine,
    replace_docs_section,
    train_test,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "tune"
START, END = "<!-- tune:start -->", "<!-- tune:end -->"
PAGE = ROOT / "docs" / "tune.md"  # the command's page: one row per seed
SUMMARY_START, SUMMARY_END = "<!-- tune-summary:start -->", "<!-- tune-summary:end -->"
FIXED = {"lora": True, "max_length": 32, "batch_size": 16, "epochs": 4, "patience": 4}
SPACE = """\
lr: {type: float, low: 1.0e-5, high: 3.0e-3, log: true}
weight_decay: {type: float, low: 0.0, high: 0.1}
warmup_ratio: {type: float, low: 0.0, high: 0.3}
lora_r: {type: int, low: 2, high: 32, log: true}
"""
METHODS = {
    "default": {},
    "optuna-tpe": {"backend": "optuna"},
    "ray-asha": {"backend": "ray", "scheduler": "asha"},
    "ray-pbt": {"backend": "ray", "scheduler": "pbt"},
}


def subset(labels: int, per_train: int, per_valid: int, seed: int) -> tuple[Dataset, ...]:
    train, test = train_test("banking77")
    names = sorted(train.label_set.names)[:labels]
    rng = np.random.default_rng(seed)
    keep_train, keep_valid = [], []
    for name in names:
        rows = rng.permutation([i for i, label in enumerate(train.labels) if label == name])
        keep_train += rows[:per_train].tolist()
        keep_valid += rows[per_train : per_train + per_valid].tolist()
    test_rows = [i for i, label in enumerate(test.labels) if label in names]

    def part(data: Dataset, rows: list[int], name: str) -> Dataset:
        return Dataset([data.texts[i] for i in rows], [data.labels[i] for i in rows], name=name)

    return (
        part(train, sorted(keep_train), "banking77-train"),
        part(train, sorted(keep_valid), "banking77-valid"),
        part(test, test_rows, "banking77-test"),
    )


def subset_name(labels: int, per_train: int, per_valid: int) -> str:
    return f"banking77-{labels}i-{per_train}t-{per_valid}v"


def _macro_f1(model: Any, data: Dataset) -> float:
    from docsort.api import evaluate

    return float(evaluate(model, data)["macro_f1"])


def run_method(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import docsort
    from docsort.api import Columns, train
    from docsort.api.tuning import TuneRequest, prepare_tune, run_tune

    train_rows, valid_rows, test_rows = subset(args.labels, args.train, args.valid, args.seed)
    load_before = round(os.getloadavg()[0], 2)
    busy, own, wall = _busy_seconds(), _own_seconds(), time.perf_counter()
    result: dict[str, Any] = {"method": name, "budget_seconds": args.budget}
    with tempfile.TemporaryDirectory() as tmp:
        if name == "default":
            model = train(train_rows, kind="encoder", params=FIXED, valid_data=valid_rows)
            result["best_valid_macro_f1"] = _macro_f1(model, valid_rows)
            result["test_macro_f1"] = _macro_f1(model, test_rows)
            tuned_names = ("lr", "weight_decay", "warmup_ratio", "lora_r")
            result["params"] = {k: model.get_params()[k] for k in tuned_names}
            result["trials"] = {"complete": 1}
            result["curve"] = [
                [round(time.perf_counter() - wall, 1), result["best_valid_macro_f1"]]
            ]
        else:
            space = Path(tmp) / "space.yaml"
            space.write_text(SPACE)
            request = TuneRequest(
                data=train_rows,
                valid=valid_rows,
                space=space,
                out=Path(tmp) / "out",
                kind="encoder",
                params=dict(FIXED),
                # PBT's trials are its population, time-multiplexed on the free CPUs: a
                # population as large as the other searches' trial cap never gets past epoch 1
                trials=args.population if name == "ray-pbt" else args.max_trials,
                time_budget=args.budget,
                seed=args.seed,
                columns=Columns(),
                cpus_per_trial=_cpus_per_trial(name, args),
                **METHODS[name],
            )
            tuned = run_tune(prepare_tune(request))
            result["cpus_per_trial"] = request.cpus_per_trial
            best = tuned.best
            result["best_valid_macro_f1"] = best.value if best else None
            result["params"] = best.params if best else None
            result["test_macro_f1"] = None
            if best is not None:
                model = docsort.load(Path(tmp) / "out" / "model")
                result["test_macro_f1"] = _macro_f1(model, test_rows)
            result["trials"] = tuned.summary["states"]
            result["exploit_steps"] = tuned.summary.get("exploit_steps", 0)
            result["curve"] = _curve(tuned.records)
            if args.keep_plots:
                folder = RESULTS / subset_name(args.labels, args.train, args.valid)
                folder.mkdir(parents=True, exist_ok=True)
                plot = folder / f"{name}-seed{args.seed}.png"
                shutil.copy(Path(tmp) / "out" / "search.png", plot)
    elapsed = time.perf_counter() - wall
    others = None
    if busy is not None:
        others = round(max(_busy_seconds() - busy - (_own_seconds() - own), 0.0) / elapsed, 2)
    result.update(
        {
            "wall_seconds": round(elapsed, 1),
            "rows": {"train": len(train_rows), "valid": len(valid_rows), "test": len(test_rows)},
            "labels": args.labels,
            "seed": args.seed,
            "fixed": FIXED,
            "space": SPACE,
            "load_before": load_before,
            "other_cores_busy": others,  # excludes Ray's own workers only when they are children
            "machine": machine(),
        }
    )
    return result


def _cpus_per_trial(name: str, args: argparse.Namespace) -> float:
    """1 for ASHA and Optuna (Optuna ignores it); PBT: ``--pbt-cpus-per-trial``, by default
    the share of the cores that runs the whole population at once."""
    if name != "ray-pbt":
        return 1.0
    return args.pbt_cpus_per_trial or (os.cpu_count() or 1) / args.population


def _curve(records: list[Any]) -> list[list[float]]:
    """Best validation macro-F1 so far against the seconds since the search started."""
    done = sorted(
        ((r.started or 0) + (r.seconds or 0), r.value)
        for r in records
        if r.state == "complete" and r.value is not None
    )
    curve, best = [], -1.0
    for at, value in done:
        if value > best:
            best = value
            curve.append([round(at, 1), round(value, 4)])
    return curve


def _f(value: float | None) -> str:
    return "none complete" if value is None else f"{value:.4f}"


def _results(folder: Path) -> dict[int, dict[str, dict[str, Any]]]:
    """A subset's result files, by seed and method (``SUBSET/METHOD-seedN.json``)."""
    found: dict[int, dict[str, dict[str, Any]]] = {}
    for path in sorted(folder.glob("*-seed*.json")):
        result = json.loads(path.read_text())
        found.setdefault(int(result["seed"]), {})[result["method"]] = result
    return found


def _folders() -> list[Path]:
    folders = sorted(
        (f for f in RESULTS.glob("banking77-*") if f.is_dir()),
        key=lambda f: [int(part.rstrip("itv")) for part in f.name.split("-")[1:]],
    )
    return [f for f in folders if _results(f)]


def table() -> str:
    parts = [_subset_table(f) for f in _folders()]
    return "\n\n".join(parts) or "_No results yet: run `benchmarks/tune.py run`._"


SHORT = {"default": "default", "optuna-tpe": "TPE", "ray-asha": "ASHA", "ray-pbt": "PBT"}


def summary() -> str:
    """docs/tune.md's section: per subset, one row per seed with each method's best
    validation macro-F1, the best search (ties named) and its margin over the default."""
    parts = []
    for folder in _folders():
        by_seed = _results(folder)
        first = _example(by_seed)
        lines = [
            f"**{first['labels']} intents, {first['rows']['train'] // first['labels']} training "
            f"/ {first['rows']['valid'] // first['labels']} validation rows each, "
            f"{first['budget_seconds']:.0f} s a search** (`{folder.name}`):",
            "",
            "| seed | " + " | ".join(SHORT[m] for m in METHODS) + " | best search | "
            "best search − default |",
            "| --- |" + " --- |" * (len(METHODS) + 2),
        ]
        for seed, rows in sorted(by_seed.items()):
            cells = [_summary_cell(rows[m]) if m in rows else "not run" for m in METHODS]
            searches = [r for m, r in rows.items() if m != "default"]
            values = [r["best_valid_macro_f1"] for r in searches]
            best_value = max((v for v in values if v is not None), default=None)
            default = rows.get("default")
            if not searches:
                best, margin = "no search run", "–"
            elif best_value is None:
                best, margin = "none complete", "–"
            else:
                best = " = ".join(SHORT[r["method"]] for r in searches
                                  if r["best_valid_macro_f1"] == best_value)  # fmt: skip
                margin = "no default run"
                if default is not None:
                    gap = 100 * (best_value - default["best_valid_macro_f1"])
                    side = "above" if gap > 0 else "a tie" if gap == 0 else "below"
                    margin = f"{gap:+.2f} points ({side})"
            lines.append(f"| {seed} | {' | '.join(cells)} | {best} | {margin} |")
        loads = [r["load_before"] for rows in by_seed.values() for r in rows.values()]
        lines += [
            "",
            "Best validation macro-F1 (complete trials only; in brackets the trials by state, "
            "PBT's exploit steps and CPUs a trial); 1-minute load when each method started: "
            f"{min(loads)}-{max(loads)}. Every column: "
            "[benchmarks.md](benchmarks.md#hyperparameter-search).",
        ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) or "_No results yet: run `benchmarks/tune.py run`._"


def _example(by_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One result of a subset (its default run where there is one), for what every run of the
    subset shares: label and row counts, the budget."""
    first = next(iter(by_seed.values()))
    return first.get("default") or next(iter(first.values()))


def _summary_cell(r: dict[str, Any]) -> str:
    value = _f(r["best_valid_macro_f1"])
    if r["method"] == "default":
        return value
    detail = [", ".join(f"{n} {s}" for s, n in sorted(r["trials"].items()))]
    if r["method"] == "ray-pbt":
        steps = r.get("exploit_steps", 0)
        detail.append(f"{steps} exploit step{'' if steps == 1 else 's'}")
        detail.append(f"{r.get('cpus_per_trial', 1.0):g} CPU a trial")
    return f"{value} ({'; '.join(detail)})"


def _subset_table(folder: Path) -> str:
    by_seed = _results(folder)
    first = _example(by_seed)
    lines = [
        f"**{folder.name}**: {first['labels']} intents, {first['rows']['train']} training / "
        f"{first['rows']['valid']} validation / {first['rows']['test']} test rows; each search "
        f"{first['budget_seconds']:.0f} s (`benchmarks/results/tune/{folder.name}/`)",
        "",
        "| seed | method | best valid macro-F1 | test macro-F1 (its model) | trials "
        "| CPUs a trial | exploit steps | wall s | load | other cores busy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    wins: list[str] = []
    for seed, rows in sorted(by_seed.items()):
        searches = [r for r in rows.values() if r["method"] != "default"]
        top = max(searches, key=lambda r: r["best_valid_macro_f1"] or 0, default=None)
        best_value = top["best_valid_macro_f1"] if top is not None else None
        tied = [r["method"] for r in searches if best_value is not None
                and r["best_valid_macro_f1"] == best_value]  # fmt: skip
        if len(tied) > 1:
            top = None  # a tie: no search was best
            default = rows.get("default")
            versus = ""
            if default is not None and best_value is not None:
                above = best_value > default["best_valid_macro_f1"]
                versus = f", {'above' if above else 'not above'} the default"
            wins.append(f"seed {seed}: a tie of {' and '.join(tied)}{versus}")
        for name in METHODS:
            r = rows.get(name)
            if r is None:
                continue
            trials = ", ".join(f"{n} {s}" for s, n in sorted(r["trials"].items()))
            mark = " **(best search)**" if r is top else ""
            # Ray: what each trial reserved (files from before it was recorded: the default,
            # 1); Optuna runs one trial at a time on every core
            cpus = f"{r.get('cpus_per_trial', 1.0):g}" if name.startswith("ray") else "–"
            lines.append(
                f"| {seed} | {r['method']}{mark} | {_f(r['best_valid_macro_f1'])} "
                f"| {_f(r['test_macro_f1'])} | {trials} | {cpus} | {r.get('exploit_steps', '')} "
                f"| {r['wall_seconds']:.0f} | {r['load_before']} | {r['other_cores_busy']} |"
            )
        default = rows.get("default")
        if top is not None and default is not None:
            beat = (top["best_valid_macro_f1"] or 0) > default["best_valid_macro_f1"]
            wins.append(f"seed {seed}: {top['method']}, {'above' if beat else 'not above'} "
                        "the default")  # fmt: skip
    means = []
    for name in METHODS:
        values = [rows[name]["best_valid_macro_f1"] for rows in by_seed.values() if name in rows]
        done = [v for v in values if v is not None]
        if values:
            shown = f"{np.mean(done):.4f} ± {np.std(done):.4f}" if done else "none complete"
            means.append(f"{name} {shown} ({len(done)} of {len(values)} seeds complete)")
    lines += [
        "",
        "Best validation macro-F1, mean ± sd over seeds: " + "; ".join(means) + ". "
        "Best search per seed: " + "; ".join(wins) + ".",
        "",
        f"encoder + LoRA on minilm, banking77: {first['labels']} intents, "
        f"{first['rows']['train']} training / {first['rows']['valid']} validation / "
        f"{first['rows']['test']} test rows (drawn with the seed), fixed "
        f"{json.dumps(first['fixed'])}; each search {first['budget_seconds']:.0f} s of wall time "
        "(Optuna starts no trial after it and lets the running one finish; Ray Tune stops every "
        "running trial at it, listed *stopped*); the seed draws the rows and seeds the search. "
        "*load* = 1-minute load average when the method started; *other cores busy* = cores "
        "other processes kept busy during it (Ray's workers count as other processes).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("run", "table"))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--budget", type=float, default=300.0, help="Seconds per search.")
    parser.add_argument("--max-trials", type=int, default=64, help="Trials at most per search.")
    parser.add_argument("--population", type=int, default=4, help="PBT's trials (population).")
    parser.add_argument(
        "--pbt-cpus-per-trial",
        type=float,
        help="PBT's CPUs a trial (default: cores / population, the population at once).",
    )
    parser.add_argument("--labels", type=int, default=20, help="Intents of the subset.")
    parser.add_argument("--train", type=int, default=15, help="Training rows per intent.")
    parser.add_argument("--valid", type=int, default=5, help="Validation rows per intent.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-plots", action="store_true", help="Copy each search.png.")
    parser.add_argument(
        "--docs",
        type=Path,
        help="Only this page (a copy, e.g. in the tests): the sections whose markers it holds "
        "(default: docs/benchmarks.md and docs/tune.md).",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.what == "run":
        for name in args.methods:
            result = run_method(name, args)
            folder = RESULTS / subset_name(args.labels, args.train, args.valid)
            write_json(folder / f"{name}-seed{args.seed}.json", result)
            shown = ("method", "best_valid_macro_f1", "test_macro_f1", "wall_seconds")
            print(json.dumps({k: result[k] for k in shown}), flush=True)
    for page in [args.docs] if args.docs else [DOCS, PAGE]:
        write_sections(page)


def write_sections(page: Path) -> None:
    """Rebuild each of this script's sections that ``page`` holds (at least one)."""
    text = page.read_text(encoding="utf-8")
    sections = [(START, END, table), (SUMMARY_START, SUMMARY_END, summary)]
    found = [(start, end, build) for start, end, build in sections if start in text]
    if not found:
        raise SystemExit(f"{page} holds none of the {START} / {SUMMARY_START} markers")
    for start, end, build in found:
        replace_docs_section(start, end, build(), page)


if __name__ == "__main__":
    main()
