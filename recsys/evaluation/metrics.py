"""Ranking and calibration metrics, MIND protocol, and the choice of the decision threshold.

AUC, MRR and nDCG@k are computed per group and averaged over the groups that have both a
click and a non-click; log-loss and expected calibration error are computed over all rows.
:func:`list_outcome` says how one ranked list treats its real clicks, for a reader rather than a table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from recsys.data.contract import CLICKED, GROUP, require_ranked_groups

RANKING_METRICS = ("auc", "mrr", "ndcg@5", "ndcg@10")
CALIBRATION_METRICS = ("logloss", "ece")
METRIC_KEYS = (*RANKING_METRICS, *CALIBRATION_METRICS, "groups", "rows")


@dataclass(frozen=True)
class Metrics:
    """One scorer's metrics on one click log.

    ``values`` holds every name of :data:`RANKING_METRICS` and :data:`CALIBRATION_METRICS`;
    ``intervals`` the bootstrap 95% interval over groups of each ranking metric, where computed.
    """

    values: dict[str, float]
    groups: int  # groups with both a click and a non-click: those the ranking metrics average over
    rows: int
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: each metric by name, ``groups``, ``rows``, and ``ci`` where there are intervals."""
        data: dict[str, Any] = {**self.values, "groups": self.groups, "rows": self.rows}
        return {**data, "ci": {k: list(v) for k, v in self.intervals.items()}} if self.intervals else data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metrics:
        """Read :meth:`to_dict`'s form back; other keys (a training run's ``step``) are ignored."""
        names = (*RANKING_METRICS, *CALIBRATION_METRICS)
        intervals = {k: (float(low), float(high)) for k, (low, high) in data.get("ci", {}).items()}
        return cls({k: float(data[k]) for k in names}, int(data["groups"]), int(data["rows"]), intervals)


class Difference(NamedTuple):
    """A per-group mean difference between two scorers and its paired bootstrap 95% interval."""

    value: float
    low: float
    high: float


THRESHOLD_CRITERION = "youden_j"  # how choose_threshold picks the threshold; recorded with its summary


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U; tied scores count one half)."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs at least one click and one non-click")
    from scipy.stats import rankdata  # imported here: --help loads no scipy.stats (a second)

    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _ranked_labels(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Labels ordered by score, high to low; ties keep input order."""
    return np.asarray(labels, dtype=np.float64)[np.argsort(-np.asarray(scores), kind="stable")]


def mrr(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean reciprocal rank of the clicked items (as in MIND's evaluation script)."""
    ranked = _ranked_labels(labels, scores)
    return float((ranked / np.arange(1, len(ranked) + 1)).sum() / ranked.sum())


def _dcg(ranked: np.ndarray, k: int) -> float:
    ranked = ranked[:k]
    return float(((2**ranked - 1) / np.log2(np.arange(2, len(ranked) + 2))).sum())


def ndcg(labels: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Normalised discounted cumulative gain of the top ``k``."""
    ideal = _dcg(np.sort(np.asarray(labels, dtype=np.float64))[::-1], k)
    return _dcg(_ranked_labels(labels, scores), k) / ideal


@dataclass(frozen=True)
class ListOutcome:
    """How a ranking treats one list's real clicks: how many of them it puts in its top ``top``, and its AUC."""

    clicks: int  # real clicks in the list
    in_top: int  # of them, among the ``top`` best scores
    top: int
    auc: float | None  # None where the list lacks a click or a non-click

    def describe(self) -> str:
        """One line, e.g. "2 of 4 real clicks in the top 5 · AUC 0.71"."""
        if not self.clicks:
            return "no real clicks in the list"
        noun = "click" if self.clicks == 1 else "clicks"
        text = f"{self.in_top} of {self.clicks} real {noun} in the top {self.top}"
        return text if self.auc is None else f"{text} · AUC {self.auc:.2f}"


def list_outcome(scores: np.ndarray, clicked: np.ndarray, top: int = 5) -> ListOutcome:
    """The real clicks (``clicked``, 0/1) among a list's ``top`` best ``scores``, ties in input order as in
    ranking (a stable sort), and the list's AUC."""
    scores, clicked = np.asarray(scores, dtype=np.float64), np.asarray(clicked).astype(bool)
    if scores.shape != clicked.shape or scores.ndim != 1:
        raise ValueError(f"one score per label: {scores.shape} scores for {clicked.shape} labels")
    if top < 1:
        raise ValueError(f"top must be at least 1, not {top}")
    clicks = int(clicked.sum())
    return ListOutcome(
        clicks=clicks,
        in_top=int(_ranked_labels(clicked, scores)[:top].sum()),
        top=top,
        auc=auc(clicked, scores) if 0 < clicks < len(clicked) else None,
    )


def logloss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(labels, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def ece(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over ``bins`` equal-width probability bins."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(p[in_bin].mean() - y[in_bin].mean())
    return float(error)


def choose_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The click probability at or above which to say "clicked": the one with the highest Youden's J.

    J = true-positive rate − false-positive rate (= 2 × balanced accuracy − 1). The best F1 for
    "clicked" is not used: on a log where most rows are clicks, "always clicked" has recall 1 and
    precision equal to the click rate, which weak scores rarely beat, so F1 picks the lowest
    threshold and the label says nothing. "Always clicked" has J = 0 (every non-click is a false
    positive), so J only rewards a threshold that separates clicks from non-clicks. Ties go to the
    highest threshold. With a single class in ``labels``, or scores that no threshold separates
    (best J at most 0), 0.5 is returned.
    """
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return 0.5
    from sklearn.metrics import roc_curve  # imported here: a command's --help loads no sklearn

    false_positive_rate, true_positive_rate, thresholds = roc_curve(
        labels, np.asarray(probabilities, dtype=np.float64), drop_intermediate=False
    )
    # roc_curve's first threshold is +inf (nothing predicted clicked); the rest are the observed probabilities.
    youden = true_positive_rate[1:] - false_positive_rate[1:]
    if youden.max() <= 0:  # no threshold separates clicks from non-clicks: keep the neutral 0.5
        return 0.5
    return float(thresholds[1 + int(np.argmax(youden))])


def threshold_summary(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict:
    """How the rule "clicked when probability >= threshold" does on a labelled log.

    Precision and recall are those of "clicked" (0 where undefined); balanced accuracy is the mean
    recall over the classes present; ``base_rate`` is the click rate, the precision of "always clicked".
    """
    labels = np.asarray(labels).astype(bool)
    if len(labels) == 0:
        raise ValueError("a threshold summary needs at least one labelled row")
    predicted = np.asarray(probabilities, dtype=np.float64) >= threshold
    true_positives = int((predicted & labels).sum())
    present = [cls for cls in (True, False) if (labels == cls).any()]
    class_recalls = [((predicted == cls) & (labels == cls)).sum() / (labels == cls).sum() for cls in present]
    return {
        "criterion": THRESHOLD_CRITERION,
        "threshold": float(threshold),
        "precision": float(true_positives / predicted.sum()) if predicted.any() else 0.0,
        "recall": float(true_positives / labels.sum()) if labels.any() else 0.0,
        "balanced_accuracy": float(np.mean(class_recalls)),
        "predicted_positive_rate": float(predicted.mean()),
        "base_rate": float(labels.mean()),
        "rows": len(labels),
    }


def group_metrics(frame: pd.DataFrame, scores: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Per-group AUC, MRR, nDCG@5 and nDCG@10 for the groups with both a click and a non-click.

    Rows are put in a seeded random order first: logs often list the non-clicks of a group
    before its clicks, and ranking ties (popularity, keyword match) must not inherit that order.
    """
    rows = []
    scored = frame[[GROUP, CLICKED]].assign(_score=np.asarray(scores, dtype=np.float64))
    scored = scored.iloc[np.random.default_rng(seed).permutation(len(scored))]
    for group, part in scored.groupby(GROUP, sort=False):
        labels, s = part[CLICKED].to_numpy(), part["_score"].to_numpy()
        if 0 < labels.sum() < len(labels):
            rows.append(
                {
                    GROUP: group,
                    "auc": auc(labels, s),
                    "mrr": mrr(labels, s),
                    "ndcg@5": ndcg(labels, s, 5),
                    "ndcg@10": ndcg(labels, s, 10),
                }
            )
    return pd.DataFrame(rows, columns=[GROUP, *RANKING_METRICS])


def bootstrap_interval(
    values: np.ndarray, samples: int = 1000, seed: int = 0, statistic: Callable = np.mean
) -> tuple[float, float]:
    """95% percentile interval of ``statistic`` over groups resampled with replacement."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(samples, len(values)))
    stats = statistic(values[draws], axis=1)
    low, high = np.percentile(stats, [2.5, 97.5])
    return float(low), float(high)


def paired_difference(frame: pd.DataFrame, scores: np.ndarray, other: np.ndarray) -> dict[str, Difference]:
    """Per-group mean of (metric with ``scores``) − (metric with ``other``), with a paired bootstrap 95%
    interval: each draw resamples the same groups for both, so group-to-group spread cancels out."""
    mine = group_metrics(frame, scores).set_index(GROUP)
    theirs = group_metrics(frame, other).set_index(GROUP).loc[mine.index]
    difference = mine[list(RANKING_METRICS)] - theirs[list(RANKING_METRICS)]
    return {
        name: Difference(float(difference[name].mean()), *bootstrap_interval(difference[name].to_numpy()))
        for name in RANKING_METRICS
    }


def evaluate_scores(
    frame: pd.DataFrame, scores: np.ndarray, probabilities: np.ndarray, intervals: bool = True
) -> Metrics:
    """All metrics for one scorer on one validated click log, with bootstrap intervals unless ``intervals`` is False."""
    require_ranked_groups(frame, "the click log")
    per_group = group_metrics(frame, scores)
    labels = frame[CLICKED].to_numpy()
    values = {name: float(per_group[name].mean()) for name in RANKING_METRICS}
    values |= {"logloss": logloss(labels, probabilities), "ece": ece(labels, probabilities)}
    ci = {name: bootstrap_interval(per_group[name].to_numpy()) for name in RANKING_METRICS} if intervals else {}
    return Metrics(values, groups=len(per_group), rows=len(frame), intervals=ci)
