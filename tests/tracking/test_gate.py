"""promote --holdout: a challenger worse than the champion on the holdout by more than the
tolerance is refused (saying by how much), --force promotes it anyway, a better one passes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from docsort.api.registry import PromoteRequest, RegisterRequest, run_promote, run_register
from docsort.errors import DocsortError
from tests.tracking.conftest import train_words

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")


def test_the_gate_refuses_a_worse_challenger(
    registry: str,
    model_dir: Path,
    arxiv_frame: pd.DataFrame,
    holdout_csv: Path,
    unique_name: str,
    tmp_path: Path,
) -> None:
    # deliberately worse: the same rows with their labels shuffled
    labels = arxiv_frame.category.sample(frac=1, random_state=0).to_numpy()
    worse = train_words(arxiv_frame.assign(category=labels), tmp_path / "worse")
    name = unique_name
    run_register(RegisterRequest(model_dir, name, alias="champion"))
    run_register(RegisterRequest(worse, name, alias="challenger"))

    gate = PromoteRequest(name, "challenger", holdout=holdout_csv, tolerance=0.01)
    with pytest.raises(DocsortError) as refused:
        run_promote(gate)
    message = str(refused.value)
    assert message.startswith(f"refused: version 2 of {name} has macro_f1 ")
    assert "worse than the champion (version 1" in message and "--force" in message
    assert "\n" not in message

    forced = run_promote(PromoteRequest(name, "challenger", holdout=holdout_csv, force=True))
    assert (forced.version, forced.previous) == ("2", "1")
    assert forced.gate is not None and not forced.gate["passed"]
    assert forced.gate["worse_by"] > 0.3  # chance on 8 labels against ~0.87
    assert forced.notes and forced.notes[0].startswith(
        f"promoted with --force, though version 2 of {name}"
    )

    # the better model back over the worse champion passes the gate
    back = run_promote(PromoteRequest(name, "1", holdout=holdout_csv, metric="accuracy"))
    assert back.gate is not None and back.gate["passed"] and back.gate["worse_by"] < 0
