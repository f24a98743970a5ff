"""Item priors from a click log, the blend that adds them to the text score, and a model that serves both."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finetune.train import main as train
from recsys.baselines import popularity_baseline
from recsys.evaluate import score_frame
from recsys.models import load_scorer
from recsys.priors import PRIORS_FILE, Blend, ItemPriors
from recsys.ranking import PRIOR, SCORE, TEXT_SCORE, VIEWS, rank_candidates


def log(rows: list[tuple[str, str, int]], with_ids: bool = True) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["group", "item", "clicked"]).assign(query="q")
    return frame.assign(item_id=frame["item"].str.upper()) if with_ids else frame


def test_priors_count_clicks_and_views_and_shrink_toward_the_base_rate() -> None:
    train = log([("u1", "a", 1), ("u2", "a", 1), ("u3", "a", 0), ("u1", "b", 0)])
    priors = ItemPriors.fit(train, smoothing=2.0)
    assert priors.key == "item_id"
    assert priors.base_rate == 0.5
    assert priors.table.loc["A"].tolist() == [2, 3]
    rate = priors.click_rate(log([("v", "a", 0), ("v", "b", 0), ("v", "never seen", 0)]))
    np.testing.assert_allclose(rate, [(2 + 2 * 0.5) / (3 + 2), (0 + 2 * 0.5) / (1 + 2), 0.5])


def test_an_unknown_item_has_zero_features_so_its_text_alone_ranks_it() -> None:
    priors = ItemPriors.fit(log([("u1", "a", 1), ("u2", "a", 1), ("u1", "b", 0)]))
    features = priors.features(log([("v", "a", 0), ("v", "new", 0)]))
    assert list(features.columns) == priors.feature_names == ["prior", "log_views"]
    assert features.loc[0, "prior"] > 0 and features.loc[0, "log_views"] == pytest.approx(np.log(3))
    assert features.loc[1].tolist() == [0.0, 0.0]
    blend = Blend({"prior": 2.0, "log_views": 1.0})
    np.testing.assert_allclose(blend.final([0.3, 0.3], features)[1], 0.3)


def test_numeric_columns_of_the_log_become_item_means_and_a_rows_own_value_never_counts() -> None:
    train = log([("u1", "a", 1), ("u2", "a", 1), ("u1", "b", 0)]).assign(rating=["5", "4.5", "1"], position="1")
    priors = ItemPriors.fit(train, smoothing=1.0)
    assert priors.feature_names == ["prior", "log_views", "mean_rating"]  # position is the contract's, not averaged
    mean, sd = priors.means["rating"]
    assert mean == pytest.approx(3.5)
    held_out = log([("v", "a", 1), ("v", "b", 0), ("v", "new", 0)])
    features = priors.features(held_out)
    np.testing.assert_allclose(features["mean_rating"], [((9.5 + 3.5) / 3 - 3.5) / sd, ((1 + 3.5) / 2 - 3.5) / sd, 0])
    # The held-out rows' own ratings (their labels in disguise) change nothing.
    pd.testing.assert_frame_equal(priors.features(held_out.assign(rating=["1", "5", "5"])), features)


def test_priors_are_keyed_by_item_text_without_item_ids_and_round_trip(tmp_path: Path) -> None:
    priors = ItemPriors.fit(log([("u1", "a, with comma", 1), ("u2", "b", 0)], with_ids=False))
    assert priors.key == "item"
    priors.save(tmp_path)
    loaded = ItemPriors.load(tmp_path)
    assert loaded is not None and loaded.key == "item" and loaded.base_rate == priors.base_rate
    frame = log([("v", "a, with comma", 0), ("v", "b", 0)], with_ids=False)
    pd.testing.assert_frame_equal(loaded.features(frame), priors.features(frame))
    assert ItemPriors.load(tmp_path / "nowhere") is None


def test_popularity_baseline_is_the_priors_click_rate() -> None:
    train = log([("u1", "a", 1), ("u2", "a", 1), ("u1", "b", 0)])
    frame = log([("v", "a", 0), ("v", "b", 1)])
    scores, probabilities = popularity_baseline(frame, train)
    np.testing.assert_allclose(scores, ItemPriors.fit(train).click_rate(frame))
    np.testing.assert_allclose(probabilities, scores)


def synthetic(seed: int, prior_matters: bool) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Groups of 6 rows; clicks follow text + (a popular item's prior, when it matters)."""
    rng = np.random.default_rng(seed)
    n_groups, size = 300, 6
    text = rng.normal(size=n_groups * size)
    prior = rng.normal(size=n_groups * size)
    utility = text + (1.5 * prior if prior_matters else 0) + rng.gumbel(size=n_groups * size)
    clicked = np.zeros(n_groups * size, dtype=int)
    for g in range(n_groups):
        rows = slice(g * size, (g + 1) * size)
        clicked[rows][np.argsort(-utility[rows])[:2]] = 1
    frame = pd.DataFrame({"group": np.repeat(np.arange(n_groups), size), "clicked": clicked})
    return frame, text, pd.DataFrame({"prior": prior, "noise": rng.normal(size=n_groups * size)})


def test_blend_learns_the_weight_of_a_prior_that_explains_clicks() -> None:
    frame, text, features = synthetic(0, prior_matters=True)
    blend = Blend.fit(frame, text, features)
    assert blend.weights["prior"] == pytest.approx(1.5, abs=0.35)
    assert blend.weights["text"] == pytest.approx(1.0, abs=0.25)
    assert abs(blend.weights["noise"]) < 0.3


def test_blend_leaves_out_a_prior_that_says_nothing() -> None:
    frame, text, features = synthetic(1, prior_matters=False)
    blend = Blend.fit(frame, text, features)
    assert abs(blend.weights["prior"]) < 0.3 and abs(blend.weights["noise"]) < 0.3
    assert set(blend.weights) == {"text", "prior", "noise"}


def test_blend_leans_on_the_priors_where_the_text_says_nothing() -> None:
    frame, _, features = synthetic(2, prior_matters=True)
    noise = np.random.default_rng(3).normal(scale=3.0, size=len(frame))
    blend = Blend.fit(frame, noise, features)
    assert blend.weights["text"] < 0.2
    assert blend.weights["prior"] > 1.0


def test_blend_of_groups_without_a_click_and_a_non_click_is_the_text_alone() -> None:
    frame = pd.DataFrame({"group": [1, 1, 2], "clicked": [1, 1, 0]})
    features = pd.DataFrame({"prior": [1.0, 2.0, 3.0]})
    blend = Blend.fit(frame, np.zeros(3), features)
    assert blend.final(np.array([0.5, 1.0, 2.0]), features).tolist() == [0.5, 1.0, 2.0]


def test_training_with_priors_serves_text_plus_priors_everywhere(
    reset_accelerate, tiny_model_dir: Path, clicks_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    train(
        [
            "--model-name-or-path", str(tiny_model_dir), "--train-file", str(clicks_path),
            "--eval-file", str(clicks_path), "--output-dir", str(out), "--report-to", "none",
            "--max-length", "32", "--batch-size", "8", "--max-steps", "2", "--negatives", "2",
        ]
    )  # fmt: skip
    assert (out / PRIORS_FILE).is_file()
    metadata = json.loads((out / "clicktune.json").read_text())
    assert set(metadata["blend"]) == {"text", "prior", "log_views"}
    assert metadata["metrics"]["threshold"]["criterion"] == "youden_j"

    scorer = load_scorer(str(out))
    frame = pd.read_csv(clicks_path)
    scores, _ = score_frame(scorer, frame)
    text = scorer.score_pairs(list(zip(frame["query"], frame["item"], strict=True)))
    np.testing.assert_allclose(scores, Blend(metadata["blend"]).final(text, scorer.priors.features(frame)))

    candidates = frame[frame["group"] == frame["group"].iloc[0]][["item"]].reset_index(drop=True)
    ranked = rank_candidates(scorer, frame["query"].iloc[0], candidates)
    assert {TEXT_SCORE, PRIOR, VIEWS} <= set(ranked.columns)
    assert ranked[SCORE].is_monotonic_decreasing
    # An upload without ids is matched by the item's hash, as the log's item_id was made.
    assert (ranked[VIEWS] > 0).any()
