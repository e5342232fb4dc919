"""Shared fixtures: real rows from ../shared/data and a CLI runner that sees exit codes."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests import cli_runner

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
ARXIV_8CAT = SHARED_DATA / "arxiv" / "arxiv_8cat.csv"
ARXIV_MULTI = SHARED_DATA / "arxiv" / "arxiv_multilabel.csv"
PATENT_SECTIONS = SHARED_DATA / "patents" / "patent_abstracts_sections.csv"
USPTO_P2P = SHARED_DATA / "uspto-p2p" / "train.csv"
USPTO_TITLES = SHARED_DATA / "uspto-p2p" / "cpc_titles.csv"

os.environ.setdefault("DOCSORT_NO_PROGRESS", "1")


@pytest.fixture
def killed_at_save(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], Any]:
    """``with killed_at_save(n): model.fit(...)``: the n-th checkpoint write completes, then the
    run stops as if killed; checkpoint writes are normal again after the block."""
    from docsort.models.nn import training

    real_save = training._save

    @contextlib.contextmanager
    def arm(n: int) -> Iterator[None]:
        saves: list[Path] = []

        def save_then_stop(path: Path, state: dict) -> None:
            real_save(path, state)
            saves.append(path)
            if len(saves) == n:
                raise KeyboardInterrupt

        monkeypatch.setattr(training, "_save", save_then_stop)
        try:
            with pytest.raises(KeyboardInterrupt):
                yield
        finally:
            monkeypatch.setattr(training, "_save", real_save)

    return arm


@pytest.fixture(scope="session")
def arxiv_frame() -> pd.DataFrame:
    """240 real arXiv rows, 30 per category: enough to train tfidf in about a second."""
    frame = pd.read_csv(ARXIV_8CAT)
    return frame.groupby("category", group_keys=False).head(30).reset_index(drop=True)


@pytest.fixture(scope="session")
def uspto_rows() -> Any:
    """42 real USPTO phrase pairs: one target of each score level for each of 10 anchors (where
    it has one), with their CPC contexts."""
    from docsort.data.dataset import from_frame

    frame = pd.read_csv(USPTO_P2P)
    anchors = frame.anchor.drop_duplicates().head(10)
    frame = frame[frame.anchor.isin(anchors)].groupby(["anchor", "score"]).head(1)
    return from_frame(frame, text="anchor", label="score", pair="target", context="context")


@pytest.fixture(scope="session")
def marian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised Marian translation model with minilm's tokenizer (no
    translation weights install offline): real seq2seq code, nonsense output."""
    from transformers import AutoTokenizer, MarianConfig, MarianMTModel

    from docsort.models.hub import resolve

    folder = tmp_path_factory.mktemp("marian")
    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm"))
    config = MarianConfig(
        vocab_size=tokenizer.vocab_size, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    MarianMTModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def arxiv_csv(arxiv_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "arxiv.csv"
    arxiv_frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def trained_model_dir(arxiv_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tfidf model trained through the CLI on real arXiv rows, shared by read-only tests."""
    out = tmp_path_factory.mktemp("models") / "tfidf"
    result = train_arxiv(arxiv_csv, out)
    assert result.returncode == 0, result.stderr
    return out


def train_arxiv(
    data: Path, out: Path, *options: str, text: str = "title,abstract"
) -> subprocess.CompletedProcess[str]:
    """``docsort train`` on arXiv rows (label: category), with any further options."""
    return run_cli("train", str(data), "--text", text, "--label", "category", *options,
                   "--out", str(out))  # fmt: skip


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``docsort`` in a child process, as a user would, to see its exit code and stderr
    (forked from a zygote that imported the CLI once: ``tests/cli_runner.py``)."""
    return cli_runner.run_cli(*args, stdin=stdin)
