"""Platt scaling: click probabilities from scores, fitted on labelled rows."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.model.calibration import Calibration, sigmoid


def test_sigmoid_does_not_overflow_at_extremes() -> None:
    with np.errstate(over="raise"):
        p = sigmoid(np.array([-1e4, -2.0, 0.0, 2.0, 1e4]))
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    assert (np.diff(p) > 0).all()
    assert p[2] == 0.5
    np.testing.assert_allclose(p + p[::-1], 1.0)


def test_identity_calibration_is_the_sigmoid_of_the_score() -> None:
    scores = np.array([-3.0, 0.0, 1.5])
    np.testing.assert_allclose(Calibration().probabilities(scores), sigmoid(scores))
    np.testing.assert_allclose(Calibration(2.0, -1.0).probabilities(scores), sigmoid(2.0 * scores - 1.0))


def test_calibration_fits_and_keeps_a_positive() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    scores = 3.0 * labels + rng.normal(size=400)
    calibration = Calibration.fit(scores, labels)
    assert calibration.a > 0
    # Calibrated probabilities track the click rate overall.
    assert calibration.probabilities(scores).mean() == pytest.approx(labels.mean(), abs=0.02)


def test_calibrated_probabilities_are_monotone_in_the_score() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    calibration = Calibration.fit(2.0 * labels + rng.normal(size=300), labels)
    probabilities = calibration.probabilities(np.linspace(-5, 5, 50))
    assert (np.diff(probabilities) > 0).all()
    assert ((probabilities > 0) & (probabilities < 1)).all()


def test_calibration_never_reverses_the_ranking() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    scores = -3.0 * labels + rng.normal(size=400)  # a model that ranks clicks last
    assert Calibration.fit(scores, labels).a > 0


@pytest.mark.parametrize("label", [0, 1])
def test_calibration_with_one_class_is_identity(label: int) -> None:
    assert Calibration.fit(np.array([0.1, 2.0, -1.0]), np.full(3, label)) == Calibration(1.0, 0.0)


def test_calibration_of_no_rows_is_identity() -> None:
    assert Calibration.fit(np.array([]), np.array([])) == Calibration()
