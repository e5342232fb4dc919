"""Run-time settings belong to the machine, not the model: never saved, given at load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import docsort
from docsort.api import Runtime
from docsort.data.dataset import from_frame
from docsort.errors import DocsortError


@pytest.fixture(scope="module")
def embed_dir(arxiv_frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frozen-minilm probe on 60 real arXiv rows, trained with run-time settings given."""
    three = arxiv_frame[arxiv_frame.category.isin(["cs.CV", "quant-ph", "astro-ph"])].head(60)
    data = from_frame(three, text=["title", "abstract"], label="category")
    out = tmp_path_factory.mktemp("runtime") / "embed"
    docsort.train(
        data,
        kind="embed",
        params={"max_length": 64, "cache": False, "device": "cpu", "batch_size": 16},
        out=out,
    )
    return out


def manifest_params(directory: Path) -> dict:
    return yaml.safe_load((directory / "docsort.yaml").read_text())["params"]


def test_run_time_settings_are_not_saved(embed_dir: Path) -> None:
    params = manifest_params(embed_dir)
    assert "device" not in params and "batch_size" not in params
    assert params["max_length"] == 64  # model parameters are


def test_a_model_saved_with_device_cuda_loads_and_predicts_on_a_cpu(
    embed_dir: Path, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the test is about one without")
    texts = ["dark matter in a dwarf galaxy", "qubits entangled in a trap"]
    expected = docsort.load(embed_dir).predict_proba(texts)
    manifest = yaml.safe_load((embed_dir / "docsort.yaml").read_text())
    manifest["params"].update(device="cuda", batch_size=512)  # as an older docsort saved it
    cuda_saved = tmp_path / "cuda-saved"
    cuda_saved.mkdir()
    for item in embed_dir.iterdir():
        (cuda_saved / item.name).write_bytes(item.read_bytes())
    (cuda_saved / "docsort.yaml").write_text(yaml.safe_dump(manifest))
    model = docsort.load(cuda_saved)
    assert model.device == "auto"
    np.testing.assert_allclose(model.predict_proba(texts), expected, atol=1e-6)


def test_run_time_settings_given_at_load_apply(embed_dir: Path) -> None:
    texts = ["a galaxy cluster", "a convolutional network for images", "a quantum gate"]
    model = docsort.load(embed_dir, runtime=Runtime(device="cpu", eval_batch_size=2))
    assert model.device == "cpu" and model.batch_size == 2
    as_saved = docsort.load(embed_dir)
    assert as_saved.batch_size == 64  # the kind's default: the training run's 16 was not saved
    np.testing.assert_allclose(model.predict_proba(texts), as_saved.predict_proba(texts), atol=1e-5)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"device": "gpu"}, "device must be"),
        ({"threads": 0}, "threads must be"),
        ({"eval_batch_size": "8"}, "eval_batch_size must be"),
    ],
)
def test_bad_run_time_settings_are_one_line_errors(settings: dict, message: str) -> None:
    with pytest.raises(DocsortError, match=message):
        Runtime(**settings)
