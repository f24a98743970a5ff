"""The plots of an evaluation: score distributions and reliability, drawn without pyplot."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from recsys.evaluation.plots import reliability_bins, reliability_curve, score_distribution

LABELS = np.array([0, 1, 0, 1, 1])
PROBABILITIES = np.array([0.05, 0.15, 0.15, 0.95, 1.0])


def renders(figure: Figure) -> bool:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue().startswith(b"\x89PNG")


def test_reliability_bins_hand_computed_leave_out_empty_bins() -> None:
    table = reliability_bins(LABELS, PROBABILITIES)
    # 0.05 in bin 0; both 0.15 in bin 1; 0.95 and 1.0 (the top edge) in bin 9.
    assert table.index.tolist() == [0, 1, 9]
    assert table["rows"].tolist() == [1, 2, 2]
    np.testing.assert_allclose(table["predicted"], [0.05, 0.15, 0.975])
    np.testing.assert_allclose(table["observed"], [0.0, 0.5, 1.0])


def test_reliability_bins_count_every_row() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.uniform(size=500)
    labels = (rng.uniform(size=500) < probabilities).astype(int)
    for bins in (5, 10, 20):
        table = reliability_bins(labels, probabilities, bins)
        assert table["rows"].sum() == 500 and len(table) <= bins
        assert ((table["observed"] >= 0) & (table["observed"] <= 1)).all()
        assert (table["predicted"].diff().dropna() > 0).all()


def test_reliability_curve_plots_the_bins_against_the_diagonal() -> None:
    figure = reliability_curve(LABELS, PROBABILITIES)
    [axes] = figure.axes
    diagonal, model = axes.get_lines()
    assert diagonal.get_xdata().tolist() == [0, 1] and diagonal.get_ydata().tolist() == [0, 1]
    table = reliability_bins(LABELS, PROBABILITIES)
    np.testing.assert_allclose(model.get_xdata(), table["predicted"])
    np.testing.assert_allclose(model.get_ydata(), table["observed"])
    assert [text.get_text() for text in axes.texts] == ["1", "2", "2"]  # rows per bin
    assert axes.get_xlim() == (0, 1) and axes.get_ylim() == (0, 1)
    assert renders(figure)


def test_score_distribution_shows_clicked_and_not_clicked_on_shared_bins() -> None:
    scores = np.array([-2.0, 1.0, -1.0, 2.5, 3.0])
    figure = score_distribution(scores, LABELS, bins=4)
    [axes] = figure.axes
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["not clicked (2)", "clicked (3)"]
    not_clicked, clicked = axes.containers
    assert len(not_clicked) == len(clicked) == 4
    edges = [bar.get_x() for bar in not_clicked]
    assert edges == pytest.approx([bar.get_x() for bar in clicked])
    assert edges[0] == pytest.approx(scores.min())
    # Each histogram is a density: its bars' areas sum to one.
    for container in (not_clicked, clicked):
        assert sum(bar.get_height() * bar.get_width() for bar in container) == pytest.approx(1.0)
    assert renders(figure)


def test_plots_are_independent_figures() -> None:
    first, second = reliability_curve(LABELS, PROBABILITIES), reliability_curve(LABELS, PROBABILITIES)
    assert isinstance(first, Figure) and first is not second and first.axes[0] is not second.axes[0]
    assert isinstance(reliability_bins(LABELS, PROBABILITIES), pd.DataFrame)
