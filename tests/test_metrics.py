"""Ranking and calibration metrics on hand-computed cases, and AUC against scikit-learn."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, precision_recall_curve, roc_auc_score

from recsys.data.contract import CLICKED, GROUP
from recsys.evaluation.metrics import (
    CALIBRATION_METRICS,
    METRIC_KEYS,
    RANKING_METRICS,
    Difference,
    Metrics,
    auc,
    bootstrap_interval,
    choose_threshold,
    ece,
    evaluate_scores,
    group_metrics,
    list_outcome,
    logloss,
    mrr,
    ndcg,
    paired_difference,
    threshold_summary,
)


def clicks(groups: dict[str, list[int]]) -> pd.DataFrame:
    return pd.DataFrame([{GROUP: group, CLICKED: label} for group, labels in groups.items() for label in labels])


# AUC


def test_auc_counts_correctly_ordered_pairs() -> None:
    # Pairs (click, non-click): (.9, .8) right, (.9, .1) right, (.3, .8) wrong, (.3, .1) right: 3 of 4.
    assert auc([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1]) == pytest.approx(3 / 4)


def test_auc_extremes() -> None:
    assert auc([1, 1, 0], [3, 2, 1]) == 1.0
    assert auc([1, 1, 0], [1, 2, 3]) == 0.0


def test_auc_tie_counts_one_half() -> None:
    assert auc([1, 0], [0.5, 0.5]) == 0.5
    # Click at .7 beats .2 and ties .7: (1 + 0.5) / 2.
    assert auc([1, 0, 0], [0.7, 0.7, 0.2]) == pytest.approx(0.75)


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 200)
    scores = rng.integers(0, 6, 200) / 5  # six distinct values: many ties
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


def test_auc_matches_sklearn_without_ties() -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 300)
    scores = rng.normal(size=300) + labels
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


@pytest.mark.parametrize("labels", [[1, 1], [0, 0, 0]])
def test_auc_needs_both_classes(labels: list[int]) -> None:
    with pytest.raises(ValueError, match="at least one click and one non-click"):
        auc(labels, np.arange(len(labels)))


# MRR and nDCG


def test_mrr_averages_reciprocal_ranks_of_clicks() -> None:
    # Clicks at ranks 2 and 4: (1/2 + 1/4) / 2.
    assert mrr([0, 1, 0, 1], [4, 3, 2, 1]) == pytest.approx(0.375)
    assert mrr([1, 0, 0], [9, 1, 0]) == 1.0


def test_mrr_ties_keep_input_order() -> None:
    assert mrr([0, 1], [1.0, 1.0]) == 0.5
    assert mrr([1, 0], [1.0, 1.0]) == 1.0


def test_ndcg_perfect_and_hand_computed() -> None:
    assert ndcg([0, 1, 1], [1, 2, 3], k=10) == pytest.approx(1.0)
    # One click at rank 2 of 2: DCG = 1 / log2(3), ideal DCG = 1.
    assert ndcg([0, 1], [2, 1], k=10) == pytest.approx(1 / math.log2(3))
    # Clicks at ranks 1 and 3: (1 + 1/2) / (1 + 1/log2(3)).
    assert ndcg([1, 0, 1], [3, 2, 1], k=10) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))


def test_ndcg_cuts_at_k() -> None:
    labels, scores = [0, 0, 1], [3, 2, 1]
    assert ndcg(labels, scores, k=2) == 0.0
    assert ndcg(labels, scores, k=3) == pytest.approx(0.5)  # 1/log2(4) over an ideal of 1


def test_better_ranking_scores_higher_on_every_ranking_metric() -> None:
    labels = [1, 0, 0, 1, 0, 0]
    good, bad = [6, 5, 4, 3, 2, 1], [1, 2, 3, 4, 5, 6]
    assert auc(labels, good) > auc(labels, bad)
    assert mrr(labels, good) > mrr(labels, bad)
    assert ndcg(labels, good, 5) > ndcg(labels, bad, 5)


# Log-loss and calibration error


def test_logloss_hand_computed_and_matches_sklearn() -> None:
    assert logloss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    rng = np.random.default_rng(0)
    labels, probabilities = rng.integers(0, 2, 100), rng.uniform(0.01, 0.99, 100)
    assert logloss(labels, probabilities) == pytest.approx(log_loss(labels, probabilities))


def test_logloss_is_finite_at_certainty() -> None:
    assert math.isfinite(logloss([1, 0], [0.0, 1.0]))
    assert logloss([1, 0], [1.0, 0.0]) < 1e-5


def test_ece_is_zero_when_calibrated() -> None:
    # Bin 0.2: one click in five; bin 0.8: four clicks in five.
    labels = [1, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    assert ece(labels, [0.2] * 5 + [0.8] * 5) == pytest.approx(0.0)


def test_ece_hand_computed() -> None:
    # Always 0.9 but never clicked: one bin, error 0.9.
    assert ece([0, 0, 0], [0.9, 0.9, 0.9]) == pytest.approx(0.9)
    # Half the rows at 0.3 with clicks 1/2 (error .2), half at 1.0 with clicks 1/2 (error .5): mean .35.
    assert ece([1, 0, 1, 0], [0.3, 0.3, 1.0, 1.0]) == pytest.approx(0.35)


# Per-group metrics, intervals, the full report


def test_group_metrics_keeps_only_groups_with_a_click_and_a_non_click() -> None:
    frame = clicks({"mixed": [1, 0, 0], "all-clicks": [1, 1], "no-clicks": [0, 0], "other": [0, 1]})
    per_group = group_metrics(frame, np.arange(len(frame), dtype=float))
    assert sorted(per_group[GROUP]) == ["mixed", "other"]
    assert list(per_group.columns) == [GROUP, *RANKING_METRICS]


def test_evaluate_scores_averages_groups_not_rows() -> None:
    # A perfect group and a reversed one: mean group AUC 0.5, though pooling all rows would not give 0.5.
    frame = clicks({"a": [1, 0, 0, 0], "b": [0, 1]})
    scores = np.array([4.0, 3.0, 2.0, 1.0, 10.0, 0.0])
    result = evaluate_scores(frame, scores, np.full(len(frame), 0.5))
    assert result.values["auc"] == pytest.approx(0.5)
    assert roc_auc_score(frame[CLICKED], scores) != pytest.approx(0.5)
    assert result.groups == 2
    assert result.rows == len(frame)


def test_group_metrics_ignores_row_order_for_distinct_scores() -> None:
    frame = clicks({"a": [1, 0, 0, 1], "b": [0, 1, 0]})
    scores = np.array([0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.5])
    shuffled = np.random.default_rng(1).permutation(len(frame))
    forward = group_metrics(frame, scores).set_index(GROUP).sort_index()
    backward = group_metrics(frame.iloc[shuffled], scores[shuffled]).set_index(GROUP).sort_index()
    pd.testing.assert_frame_equal(forward, backward)


def test_bootstrap_interval_contains_the_mean() -> None:
    values = np.random.default_rng(0).uniform(size=50)
    low, high = bootstrap_interval(values)
    assert low < values.mean() < high
    assert high - low < values.max() - values.min()


def test_bootstrap_interval_is_seeded_and_degenerate_for_constants() -> None:
    values = np.random.default_rng(0).uniform(size=20)
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)
    assert bootstrap_interval(np.full(10, 0.25)) == pytest.approx((0.25, 0.25))


def test_evaluate_scores_keys() -> None:
    frame = clicks({"a": [1, 0, 0], "b": [0, 1, 1, 0]})
    scores = np.linspace(0, 1, len(frame))
    result = evaluate_scores(frame, scores, scores)
    assert set(result.values) == {*RANKING_METRICS, *CALIBRATION_METRICS}
    assert set(result.to_dict()) == {*METRIC_KEYS, "ci"}
    assert set(result.intervals) == set(RANKING_METRICS)
    for name in RANKING_METRICS:
        low, high = result.intervals[name]
        assert low <= result.values[name] <= high
        assert result.to_dict()["ci"][name] == [low, high]
    without = evaluate_scores(frame, scores, scores, intervals=False)
    assert without.intervals == {}
    assert set(without.to_dict()) == set(METRIC_KEYS)
    assert without.values == result.values


def test_metrics_dict_round_trip() -> None:
    frame = clicks({"a": [1, 0, 0], "b": [0, 1, 1, 0]})
    scores = np.linspace(0, 1, len(frame))
    for intervals in (True, False):
        metrics = evaluate_scores(frame, scores, scores, intervals=intervals)
        data = metrics.to_dict()
        assert data["groups"] == metrics.groups == 2 and data["rows"] == metrics.rows == len(frame)
        assert all(data[name] == metrics.values[name] for name in metrics.values)
        assert Metrics.from_dict(data) == metrics
        assert Metrics.from_dict(json.loads(json.dumps(data))) == metrics  # as written to and read from a file


def test_metrics_from_dict_ignores_other_keys() -> None:
    values = {name: 0.5 for name in (*RANKING_METRICS, *CALIBRATION_METRICS)}
    metrics = Metrics.from_dict({**values, "groups": 3, "rows": 9, "step": 40})
    assert metrics == Metrics(values, groups=3, rows=9)


def test_evaluate_scores_without_a_rankable_group() -> None:
    frame = clicks({"a": [1, 1], "b": [0, 0]})
    with pytest.raises(ValueError, match="no group holds both a click and a non-click"):
        evaluate_scores(frame, np.zeros(4), np.full(4, 0.5))


def test_paired_difference_is_the_mean_per_group_advantage() -> None:
    # Group a: both scorers rank the click first. Group b: the other scorer ranks it last.
    frame = pd.DataFrame({"group": ["a", "a", "b", "b"], "clicked": [1, 0, 1, 0]})
    mine = np.array([0.9, 0.1, 0.9, 0.1])
    other = np.array([0.9, 0.1, 0.1, 0.9])
    paired = paired_difference(frame, mine, other)
    assert set(paired) == set(RANKING_METRICS)
    assert all(isinstance(d, Difference) for d in paired.values())
    difference, low, high = paired["auc"]
    assert (paired["auc"].value, paired["auc"].low, paired["auc"].high) == (difference, low, high)
    assert difference == pytest.approx(0.5)  # (1 - 1 + 1 - 0) / 2
    assert 0.0 <= low <= difference <= high <= 1.0
    assert paired["mrr"].value == pytest.approx((0 + (1 - 0.5)) / 2)
    assert paired_difference(frame, mine, mine)["ndcg@10"] == Difference(0.0, 0.0, 0.0)


# Decision threshold


def weak_signal_log(rows: int = 2000, base_rate: float = 0.6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels at ``base_rate`` and probabilities that a click nudges up a little under much noise."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < base_rate).astype(int)
    probabilities = 1 / (1 + np.exp(-(0.4 + 0.5 * (labels - 0.5) + rng.normal(0, 1, rows))))
    return labels, probabilities


def test_youden_threshold_does_not_collapse_to_always_clicked() -> None:
    labels, probabilities = weak_signal_log()
    precision, recall, thresholds = precision_recall_curve(labels, probabilities)
    best_f1 = thresholds[np.argmax((2 * precision * recall / (precision + recall))[:-1])]
    # Best F1 says "clicked" for nearly every row: its recall of 1 beats any real separation.
    assert threshold_summary(labels, probabilities, best_f1)["predicted_positive_rate"] > 0.95

    threshold = choose_threshold(labels, probabilities)
    summary = threshold_summary(labels, probabilities, threshold)
    assert math.isfinite(threshold) and probabilities.min() < threshold <= probabilities.max()
    assert summary["predicted_positive_rate"] < 0.8
    assert summary["base_rate"] == pytest.approx(labels.mean())
    assert summary["balanced_accuracy"] > threshold_summary(labels, probabilities, best_f1)["balanced_accuracy"]


def test_youden_threshold_and_summary_hand_computed() -> None:
    labels, probabilities = [0, 0, 1, 1, 1], [0.1, 0.6, 0.4, 0.7, 0.9]
    # TPR − FPR at >= .9: 1/3 − 0; at .7: 2/3 − 0; at .6: 2/3 − 1/2; at .4: 1 − 1/2; at .1: 1 − 1.
    threshold = choose_threshold(labels, probabilities)
    assert threshold == pytest.approx(0.7)
    assert threshold_summary(labels, probabilities, threshold) == pytest.approx(
        {
            "criterion": "youden_j",
            "threshold": 0.7,
            "precision": 2 / 2,  # .7 and .9 are both clicks
            "recall": 2 / 3,  # the click at .4 is missed
            "balanced_accuracy": (2 / 3 + 2 / 2) / 2,
            "predicted_positive_rate": 2 / 5,
            "base_rate": 3 / 5,
            "rows": 5,
        }
    )


def test_youden_threshold_is_one_half_without_both_classes() -> None:
    assert choose_threshold([1, 1, 1], [0.2, 0.7, 0.9]) == 0.5
    assert choose_threshold([0, 0], [0.2, 0.7]) == 0.5


def test_youden_threshold_is_one_half_when_no_threshold_separates_the_classes() -> None:
    # Scores that rank every non-click above every click: each threshold has J <= 0.
    assert choose_threshold([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.5


def test_threshold_summary_with_nothing_predicted_clicked() -> None:
    summary = threshold_summary([1, 0, 0], [0.2, 0.3, 0.1], 0.5)
    assert summary["precision"] == 0.0 and summary["recall"] == 0.0 and summary["predicted_positive_rate"] == 0.0
    assert summary["balanced_accuracy"] == pytest.approx(0.5)  # every non-click right, every click missed


# One list's real clicks


def test_list_outcome_counts_the_clicks_in_the_top_with_ties_in_input_order() -> None:
    # Ranked by score, ties in input order: rows 1, 2, 3 (all 0.9), 0 (0.5), 4, 5 (0.1).
    scores = np.array([0.5, 0.9, 0.9, 0.9, 0.1, 0.1])
    clicked = np.array([1, 0, 0, 1, 1, 1])
    assert list_outcome(scores, clicked, top=2).in_top == 0  # rows 1 and 2: the tied click at row 3 is third
    assert list_outcome(scores, clicked, top=3).in_top == 1
    assert list_outcome(scores, clicked, top=5).in_top == 3  # rows 3, 0 and 4
    assert list_outcome(scores, clicked[[0, 3, 1, 2, 4, 5]], top=2).in_top == 1  # the click moved first among the ties
    outcome = list_outcome(scores, clicked)
    assert (outcome.clicks, outcome.top) == (4, 5)
    # A longer list of two tied scores, where an unstable sort (numpy's quicksort) reorders the ties.
    scores, clicked = np.repeat([0.0, 1.0], 20), np.zeros(40, dtype=int)
    clicked[20:25] = 1
    assert list_outcome(scores, clicked).in_top == 5


def test_list_outcome_of_a_list_shorter_than_the_top_counts_every_click() -> None:
    outcome = list_outcome(np.array([0.2, 0.8, 0.5]), np.array([1, 0, 1]))
    assert (outcome.clicks, outcome.in_top) == (2, 2)
    assert outcome.describe() == f"2 of 2 real clicks in the top 5 · AUC {outcome.auc:.2f}"


@pytest.mark.parametrize("seed", range(3))
def test_list_outcome_auc_is_sklearns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    clicked = rng.permutation(np.repeat([0, 1], [9, 6]))
    scores = rng.integers(0, 4, 15).astype(float)  # ties
    assert list_outcome(scores, clicked).auc == pytest.approx(roc_auc_score(clicked, scores))


@pytest.mark.parametrize(
    ("clicked", "text"), [([1, 1, 1], "2 of 3 real clicks in the top 2"), ([0, 0, 0], "no real clicks in the list")]
)
def test_list_outcome_of_one_class_has_no_auc(clicked: list[int], text: str) -> None:
    outcome = list_outcome(np.array([0.3, 0.2, 0.1]), np.array(clicked), top=2)
    assert outcome.auc is None
    assert outcome.describe() == text


def test_list_outcome_describes_itself_in_one_line() -> None:
    outcome = list_outcome(np.array([4.0, 3.0, 2.0, 1.0, 0.0]), np.array([1, 0, 0, 1, 0]), top=2)
    assert outcome.describe() == "1 of 2 real clicks in the top 2 · AUC 0.67"
    assert (
        list_outcome(np.array([1.0, 0.0]), np.array([0, 1]), top=1).describe()
        == "0 of 1 real click in the top 1 · AUC 0.00"
    )


def test_list_outcome_of_an_empty_list_has_no_clicks() -> None:
    outcome = list_outcome(np.zeros(0), np.zeros(0, dtype=int))
    assert (outcome.clicks, outcome.in_top, outcome.auc) == (0, 0, None)


@pytest.mark.parametrize(
    ("clicked", "top", "message"), [([1, 0, 1], 5, "one score per label"), ([1, 0], 0, "top must be at least 1")]
)
def test_list_outcome_refuses_a_label_count_other_than_the_scores_and_an_empty_top(
    clicked: list[int], top: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        list_outcome(np.array([0.1, 0.2]), np.array(clicked), top=top)
