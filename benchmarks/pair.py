"""USPTO phrase-to-phrase matching: the pair kind, Pearson r on anchors never seen in training.

    .venv/bin/python benchmarks/pair.py                          # every variant
    .venv/bin/python benchmarks/pair.py --runs cross-ctx bi-ctx  # some of them
    .venv/bin/python benchmarks/pair.py --train-rows 8000        # a training budget
    .venv/bin/python benchmarks/pair.py --table-only             # rebuild the table only
    .venv/bin/python benchmarks/pair.py --context-check          # is the title used at all?
    .venv/bin/python benchmarks/pair.py --runs mpnet-cross-ctx --epochs 3 --checkpoint
                                      # hours long: rerun the same line after a kill to resume

../shared/data/uspto-p2p/train.csv is split 80/20 by anchor (seed 0: no anchor is on both
sides); a run trains on the 80 % (or a seeded sample of ``--train-rows`` of it), keeps 10 % of
its anchors for early stopping, and is scored on the held-out 20 %. Each run writes
benchmarks/results/pair/<run>.json and its held-out scores (<run>.test-scores.npy); the table
between the pair markers of docs/benchmarks.md is built from the JSON files only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from docsort.api import train
from docsort.data.dataset import Dataset, grouped_split
from docsort.data.loaders import load_dataset
from docsort.evaluation import compute_score_metrics
from docsort.io import atomic_path, write_json
from run import DOCS, add_docs_option, machine, replace_docs_section

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pair"
# analyses of the saved runs, in a sub-folder: every JSON directly in RESULTS is one run
CONTEXT_CHECK = RESULTS / "checks" / "context-check.json"
START, END = "<!-- pair:start -->", "<!-- pair:end -->"
DATA = ROOT.parent / "shared" / "data" / "uspto-p2p"
TITLES = DATA / "cpc_titles.csv"
CHECKPOINTS = ROOT / "runs" / "pair-checkpoints"
MODELS = ROOT / "runs" / "pair-models"

# run name -> (model alias, params, reads the CPC title)
RUNS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "cross-ctx": ("minilm", {"variant": "cross", "loss": "mse"}, True),
    "cross-noctx": ("minilm", {"variant": "cross", "loss": "mse"}, False),
    "bi-ctx": ("minilm", {"variant": "bi", "loss": "mse"}, True),
    "bi-noctx": ("minilm", {"variant": "bi", "loss": "mse"}, False),
    "cross-ctx-pearson": ("minilm", {"variant": "cross", "loss": "pearson"}, True),
    "cross-ctx-ordinal-ntxent": (
        "minilm",
        {"variant": "cross", "loss": "ordinal", "contrastive_weight": 0.1},
        True,
    ),
    "cross-ctx-lora": ("minilm", {"variant": "cross", "loss": "mse", "lora": True}, True),
    "cross-noctx-pearson": ("minilm", {"variant": "cross", "loss": "pearson"}, False),
    # the CPC code as a learnt vector added to the token embeddings (no tokens spent on it)
    "cross-ctxemb": (
        "minilm",
        {"variant": "cross", "loss": "mse", "context_mode": "embedding"},
        True,
    ),
    "cross-ctxemb-pooled": (
        "minilm",
        {
            "variant": "cross",
            "loss": "mse",
            "context_mode": "embedding",
            "context_fusion": "pooled",
        },
        True,
    ),
    "mpnet-cross-ctx": ("mpnet", {"variant": "cross", "loss": "mse"}, True),
    "mpnet-cross-noctx": ("mpnet", {"variant": "cross", "loss": "mse"}, False),
}


def split(with_context: bool) -> tuple[Dataset, Dataset]:
    data = load_dataset(
        DATA / "train.csv",
        "anchor",
        "score",
        pair="target",
        context="context" if with_context else None,
    )
    return grouped_split(data, data.texts, 0.2, seed=0)


def run_one(
    name: str,
    epochs: int,
    train_rows: int | None,
    lr: float | None,
    tag: str = "",
    checkpoint: bool = False,
    save: bool = False,
    valid_share: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    base, params, with_context = RUNS[name]
    train_data, test_data = split(with_context)
    full_rows = len(train_data)
    if train_rows and train_rows < len(train_data):
        rng = np.random.default_rng(0)
        train_data = train_data.subset(np.sort(rng.choice(len(train_data), train_rows, False)))
    params = {"max_length": 64, **params, "base": base, "epochs": epochs, "batch_size": 32}
    if lr is not None:
        params["lr"] = lr
    if valid_share is not None:
        params["valid_share"] = valid_share
    if seed:
        params["seed"] = seed  # the model's: initialisation, batch order, validation anchors
    if with_context:
        params["context_map"] = str(TITLES)
    name = f"{name}-{tag}" if tag else name
    if checkpoint:
        params.update(checkpoint_dir=str(CHECKPOINTS / name), resume=True)
    load = round(os.getloadavg()[0], 2)
    print(f"{name}: training on {len(train_data):,} rows ({load} load)", flush=True)
    start = time.perf_counter()
    # the CSV's columns, saved with a kept model: `docsort eval`/`predict` then need no options
    columns = {"text": "anchor", "pair": "target", "label": "score"}
    if with_context:
        columns["context"] = "context"
    model = train(train_data, kind="pair", params=params, input_spec=columns)
    train_seconds = time.perf_counter() - start
    if model.resumed_from_step_:
        # this process saw only the last part; each epoch's seconds span its resumes
        train_seconds = sum(h["seconds"] for h in model.history_)
    if save:
        model.save(MODELS / name)
    start = time.perf_counter()
    predicted = model.predict_scores(test_data)
    metrics = compute_score_metrics(
        test_data.scores(), predicted, seconds=time.perf_counter() - start
    )
    # the held-out rows' scores, in split order: ensembles and error analysis need no retraining
    with atomic_path(RESULTS / f"{name}.test-scores.npy") as tmp, tmp.open("wb") as handle:
        np.save(handle, predicted.astype(np.float32))
    result = {
        "run": name,
        "model": base,
        "variant": params["variant"],
        "context": with_context,
        "context_mode": params.get("context_mode", "text") if with_context else "none",
        "context_fusion": params.get("context_fusion", "tokens"),
        "loss": params["loss"] + (" + NT-Xent" if params.get("contrastive_weight") else ""),
        "lora": bool(params.get("lora")),
        "params": model.get_params(),
        "train_rows": len(train_data),
        "train_rows_available": full_rows,
        "test_rows": len(test_data),
        "test_anchors": len(set(test_data.texts)),
        "epochs_run": len(model.history_),
        "encoder_lr": model.encoder_lr,
        "best_epoch": model.best_epoch_,
        "history": model.history_,
        "train_seconds": round(train_seconds, 1),
        "resumed_from_step": model.resumed_from_step_,
        "pearson": metrics["pearson"],
        "spearman": metrics["spearman"],
        "mse": metrics["mse"],
        "eval_seconds": round(metrics["seconds"], 1),
        "pairs_per_second": metrics["docs_per_second"],
        "load_average_1m_at_start": load,
        "machine": machine(),
    }
    write_json(RESULTS / f"{name}.json", result)
    print(
        f"{name}: Pearson {result['pearson']:.4f}, Spearman {result['spearman']:.4f}, "
        f"trained {train_seconds:.0f} s",
        flush=True,
    )
    return result


def table() -> str:
    rows = []
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        rows.append(
            f"| {r['run']} | {r['model']} | {r['variant']}{' LoRA' if r['lora'] else ''} | "
            f"{_context(r)} | {r['loss']} | {r['pearson']:.4f} | "
            f"{r['spearman']:.4f} | {r['train_seconds']:,.0f} | {r['train_rows']:,} | "
            f"{r['epochs_run']} | {_encoder_lr(r):g} | {r['load_average_1m_at_start']} |"
        )
    header = (
        "| run | model | variant | context | loss | Pearson | Spearman | training seconds | "
        "training rows | epochs | encoder lr | load |\n"
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    return header + "\n" + "\n".join(rows) + "\n\n" + seed_summary()


def _context(r: dict[str, Any]) -> str:
    """How a run read the CPC code: not at all, as its title, or as a learnt embedding."""
    mode = r.get("context_mode", "text" if r["context"] else "none")  # early runs: title or none
    if mode == "embedding":
        return f"embedding ({r.get('context_fusion', 'tokens')})"
    return {"text": "title", "none": "no"}[mode]


def seed_summary() -> str:
    """Runs repeated with other seeds (``<run>`` with ``<run>-seed1``, ``-seed2``...): Pearson
    mean ± sd per setting, so a difference is read against the seeds' spread."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        groups.setdefault(re.sub(r"-seed\d+$", "", r["run"]), []).append(r)
    lines = [
        "| setting | context | seeds | Pearson mean ± sd | training seconds (mean) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, runs in sorted(groups.items()):
        if len(runs) < 2:
            continue
        pearson = np.array([r["pearson"] for r in runs])
        seconds = np.mean([r["train_seconds"] for r in runs])
        lines.append(
            f"| {name} | {_context(runs[0])} | {len(runs)} | {pearson.mean():.4f} ± "
            f"{pearson.std(ddof=1):.4f} | {seconds:,.0f} |"
        )
    return "\n".join(lines)


def _encoder_lr(r: dict[str, Any]) -> float:
    """The learning rate a run used; early results kept only the parameter (None: the kind's
    default, 5e-4 with LoRA, else 5e-5)."""
    if r.get("encoder_lr"):
        return r["encoder_lr"]
    return r["params"]["lr"] or (5e-4 if r["lora"] else 5e-5)


def context_check() -> list[dict[str, Any]]:
    """Do models that read the title use it? Held-out rows with the same anchor and target
    under two classes, scored differently: the share of those row pairs each saved run puts in
    the right order (a run without the title scores both rows alike: none). Writes
    benchmarks/results/pair/checks/context-check.json."""
    _, test = split(True)
    truth = test.scores()
    rows: dict[tuple[str, str], list[int]] = {}
    assert test.text_pair is not None
    for i, key in enumerate(zip(test.texts, test.text_pair, strict=True)):
        rows.setdefault(key, []).append(i)
    pairs = [
        (i, j)
        for group in rows.values()
        for k, i in enumerate(group)
        for j in group[k + 1 :]
        if truth[i] != truth[j]
    ]
    first, second = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    results = []
    for path in sorted(RESULTS.glob("*.test-scores.npy")):
        run = json.loads(path.with_name(path.name.replace(".test-scores.npy", ".json")).read_text())
        predicted = np.load(path)
        right = np.sign(truth[first] - truth[second]) == np.sign(
            predicted[first] - predicted[second]
        )
        results.append(
            {
                "run": run["run"],
                "context": run["context"],
                "pearson": run["pearson"],
                "row_pairs": len(pairs),
                "ordered_right": int(right.sum()),
            }
        )
        print(f"{run['run']}: {right.sum()} of {len(pairs)} row pairs in the right order")
    write_json(CONTEXT_CHECK, results)
    return results


def update_docs(docs: Path = DOCS) -> None:
    replace_docs_section(START, END, table(), docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-rows", type=int, default=None, help="a seeded sample")
    parser.add_argument("--lr", type=float, default=None, help="encoder learning rate")
    parser.add_argument(
        "--valid-share",
        type=float,
        default=None,
        help="anchors held back for early stopping (default 0.1; 0: train on all, keep the last)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="the model's seed (the test split stays seed 0)"
    )
    parser.add_argument("--tag", default="", help="suffix of the result file names")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (busy machine: 1)")
    parser.add_argument(
        "--checkpoint",
        action="store_true",
        help="save state to runs/pair-checkpoints/<run> every 200 steps and resume from it",
    )
    parser.add_argument(
        "--save", action="store_true", help="keep each trained model in runs/pair-models/<run>"
    )
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the table.")
    add_docs_option(parser)
    parser.add_argument(
        "--context-check",
        action="store_true",
        help="how often saved runs order rows that differ only by their class (no training)",
    )
    args = parser.parse_args()
    if args.context_check:
        context_check()
        return
    if not args.table_only:
        import torch

        # on 2 shared cores a second torch thread spins on its barrier: 1 thread trained
        # about 4x faster per step than 2 while other jobs ran (measured, load ~14)
        torch.set_num_threads(args.threads)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        for name in args.runs:
            run_one(
                name,
                args.epochs,
                args.train_rows,
                args.lr,
                args.tag,
                args.checkpoint,
                args.save,
                args.valid_share,
                args.seed,
            )
            update_docs(args.docs)
    update_docs(args.docs)
    print(table())


if __name__ == "__main__":
    main()
