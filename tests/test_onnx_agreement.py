"""The agreement of an export's scores with the model's, group by group (recsys.scoring.onnx_agreement)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.scoring.onnx_agreement import agreement

pytestmark = pytest.mark.slow  # as in test_onnx_runtime.py, where this test was


def test_agreement_compares_each_groups_top_10_in_order() -> None:
    scores = np.arange(24, dtype=np.float64)
    groups = ["a"] * 12 + ["b"] * 12
    same = agreement(scores, scores.copy(), groups)
    assert same.spearman == pytest.approx(1.0) and (same.top10_unchanged, same.groups, same.rows) == (1.0, 2, 24)
    assert same.passed
    swapped = scores.copy()
    swapped[[22, 23]] = swapped[[23, 22]]  # b's first two change places
    assert agreement(scores, swapped, groups).top10_unchanged == 0.5
    below = scores.copy()
    below[[0, 1]] = below[[1, 0]]  # a's two lowest: outside its top 10
    assert agreement(scores, below, groups).top10_unchanged == 1.0
    reversed_ = agreement(scores, -scores, groups)
    assert reversed_.spearman == pytest.approx(-1.0) and not reversed_.passed
    short = agreement(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]), ["c"] * 3)  # shorter than 10: all of it
    assert short.top10_unchanged == 0.0
    with pytest.raises(ValueError, match="3 reference, 2 candidate"):
        agreement(np.zeros(3), np.zeros(2), ["a"] * 3)
