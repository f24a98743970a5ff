"""A model's report on held-out clicks: metrics against the baselines, and the plots behind them.

The app's Model tab shows it. Plots are built on ``matplotlib.figure.Figure`` rather than pyplot,
so that they hold no global state and can be drawn from the app's worker threads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from recsys.contract import CLICKED
from recsys.evaluate import evaluate_scored, score_frame
from recsys.models import Scorer

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


@dataclass
class EvaluationReport:
    """Metrics (``evaluate_scores`` output, with ``baselines``) and the per-row scores they came from."""

    eval_file: str
    metrics: dict
    labels: np.ndarray
    scores: np.ndarray
    probabilities: np.ndarray

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "eval_file": self.eval_file,
            "metrics": self.metrics,
            "labels": self.labels.tolist(),
            "scores": self.scores.tolist(),
            "probabilities": self.probabilities.tolist(),
        }
        path.write_text(json.dumps(data) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> EvaluationReport | None:
        path = Path(path)
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            eval_file=data["eval_file"],
            metrics=data["metrics"],
            labels=np.asarray(data["labels"], dtype=np.int64),
            scores=np.asarray(data["scores"], dtype=np.float64),
            probabilities=np.asarray(data["probabilities"], dtype=np.float64),
        )


def evaluate_model(
    scorer: Scorer,
    frame: pd.DataFrame,
    train: pd.DataFrame | None = None,
    base_scorer: Scorer | None = None,
    eval_file: str = "",
    progress: Progress | None = None,
) -> EvaluationReport:
    """Score a validated click log with the model and the baselines (zero-shot: ``base_scorer``)."""
    report = progress or (lambda fraction, desc: None)
    report(0.05, "scoring the model")
    scores, probabilities = score_frame(scorer, frame)
    report(0.5, "scoring the baselines")
    zero_shot = base_scorer if scorer.metadata.fine_tuned else scorer
    metrics = evaluate_scored(frame, scores, probabilities, train, zero_shot)
    report(1.0, "done")
    return EvaluationReport(
        eval_file=eval_file,
        metrics=metrics,
        labels=frame[CLICKED].to_numpy(dtype=np.int64),
        scores=np.asarray(scores, dtype=np.float64),
        probabilities=np.asarray(probabilities, dtype=np.float64),
    )


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
