"""The plots of an evaluation (``recsys.evaluation.evaluator``): score distributions and reliability.

The app's Model tab shows them. Plots are built on ``matplotlib.figure.Figure`` rather than pyplot,
so that they hold no global state and can be drawn from the app's worker threads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def score_distribution(scores: np.ndarray, labels: np.ndarray, bins: int = 30) -> Figure:
    """Histograms of the model's scores for clicked and not-clicked rows, on shared bins."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    figure = Figure(figsize=(6, 3.6), layout="constrained")
    axes = figure.subplots()
    edges = np.histogram_bin_edges(scores, bins=bins)
    for mask, name, color in ((~labels, "not clicked", "#9aa5b1"), (labels, "clicked", "#e8590c")):
        axes.hist(scores[mask], bins=edges, density=True, alpha=0.6, color=color, label=f"{name} ({mask.sum()})")
    axes.set_xlabel("model score (relevance logit)")
    axes.set_ylabel("density")
    axes.set_title("Scores of clicked and not-clicked rows")
    axes.legend()
    return figure


def reliability_bins(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Rows, mean predicted probability and observed click rate per equal-width bin (empty bins left out)."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    table = pd.DataFrame({"bin": which, "predicted": p, "observed": y}).groupby("bin")
    return table.agg(rows=("predicted", "size"), predicted=("predicted", "mean"), observed=("observed", "mean"))


def reliability_curve(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> Figure:
    """Observed click rate against predicted probability; a calibrated model follows the diagonal."""
    table = reliability_bins(labels, probabilities, bins)
    figure = Figure(figsize=(6, 3.6), layout="constrained")
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle="--", color="#9aa5b1", label="perfectly calibrated")
    axes.plot(table["predicted"], table["observed"], marker="o", color="#e8590c", label="model")
    for _, row in table.iterrows():
        axes.annotate(f"{int(row['rows'])}", (row["predicted"], row["observed"]), fontsize=7, xytext=(4, -10),
                      textcoords="offset points")  # fmt: skip
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("predicted click probability")
    axes.set_ylabel("observed click rate")
    axes.set_title("Reliability (rows per bin annotated)")
    axes.legend(loc="upper left")
    return figure
