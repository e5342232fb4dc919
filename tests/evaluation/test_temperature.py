"""Temperature scaling: confidence moves toward accuracy, decisions stay the same."""

from __future__ import annotations

import numpy as np
import pytest

import docsort
from docsort.data.dataset import stratified_split
from docsort.data.loaders import load_dataset
from docsort.models.base import create
from docsort.models.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_temperature_of_softmax_probabilities_equals_scaling_the_logits() -> None:
    logits = np.random.default_rng(0).normal(size=(20, 5)) * 3
    np.testing.assert_allclose(
        apply_temperature(_softmax(logits), 2.5, False), _softmax(logits / 2.5), atol=1e-9
    )
    proba = _softmax(logits)
    np.testing.assert_array_equal(apply_temperature(proba, 1.0, False), proba)


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(20_000, 4)) * 4
    true_t = 2.0  # the model is over-confident by a factor of 2
    y = np.array([rng.choice(4, p=p) for p in _softmax(logits / true_t)])
    fitted = fit_temperature(_softmax(logits), y, multi_label=False)
    assert fitted == pytest.approx(true_t, rel=0.05)


def test_multi_label_temperature_moves_sigmoids() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(20_000, 3)) * 3
    y = (rng.random(z.shape) < 1 / (1 + np.exp(-z / 3.0))).astype(int)
    t = fit_temperature(1 / (1 + np.exp(-z)), y, multi_label=True)
    assert t == pytest.approx(3.0, rel=0.05)


def test_calibrate_lowers_held_out_ece_keeps_decisions_and_survives_save(tmp_path) -> None:
    data = load_dataset("builtin:banking77:train", "text", "label")
    rest, valid = stratified_split(data, 0.2, seed=0)
    train, test = stratified_split(rest, 0.5, seed=0)
    model = create("tfidf").fit(train)
    before = model.predict_proba(test.texts)
    model.calibrate(valid)
    after = model.predict_proba(test.texts)
    y = test.targets(model.labels_)

    def ece(p: np.ndarray) -> float:
        return expected_calibration_error(p.max(axis=1), p.argmax(axis=1) == y)

    assert model.temperature_ is not None and model.temperature_ != 1.0
    np.testing.assert_array_equal(after.argmax(axis=1), before.argmax(axis=1))
    assert ece(after) < 0.5 * ece(before)
    model.save(tmp_path / "m")
    np.testing.assert_allclose(docsort.load(tmp_path / "m").predict_proba(test.texts), after)
