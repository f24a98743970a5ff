"""Item priors from a click log, the blend that adds them to the text score, and a model that serves both."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finetune.train import main as train
from recsys.data.contract import CLICK_PROBABILITY, SCORE, item_ids
from recsys.evaluation.baselines import popularity_baseline
from recsys.model.artifact import METADATA_FILE, PRIORS_FILE
from recsys.model.priors import Blend, ItemPriors
from recsys.scoring.loading import load_scorer
from recsys.scoring.ranking import (
    MATCH,
    POPULARITY,
    PRIOR,
    TEXT_SCORE,
    VIEWS,
    percentiles,
    rank_candidates,
)


def log(rows: list[tuple[str, str, int]], with_ids: bool = True) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["group", "item", "clicked"]).assign(query="q")
    return frame.assign(item_id=frame["item"].str.upper()) if with_ids else frame


def test_priors_count_clicks_and_views_and_shrink_toward_the_base_rate() -> None:
    train = log([("u1", "a", 1), ("u2", "a", 1), ("u3", "a", 0), ("u1", "b", 0)])
    priors = ItemPriors.fit(train, smoothing=2.0)
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


def test_items_without_ids_are_keyed_by_the_hash_of_their_text_as_uploads_are() -> None:
    train = log([("u1", "a", 1), ("u2", "a", 1), ("u1", "b", 0)], with_ids=False)
    priors = ItemPriors.fit(train)
    assert set(priors.table.index) == set(item_ids(pd.Series(["a", "b"])))
    # A candidate list with ids for some rows and gaps for others finds the same items by their text.
    upload = pd.DataFrame({"item": ["a", "b"], "item_id": [None, ""]})
    np.testing.assert_allclose(priors.click_rate(upload), priors.click_rate(train.iloc[[0, 2]]))
    # A blank id is never one pooled "item": a new item with a blank id is unknown.
    assert priors.features(pd.DataFrame({"item": ["new"], "item_id": [""]})).iloc[0].tolist() == [0.0, 0.0]


def test_priors_round_trip_with_awkward_ids(tmp_path: Path) -> None:
    ids = ["a,comma", 'a "quote"', "cr\r\nlf", "lone\rcr", "#hash", "nan", "NA", "007", "line\nbreak"]
    train = pd.DataFrame(
        {"group": "g", "query": "q", "item": [f"t{i}" for i in range(len(ids))], "item_id": ids, "clicked": 1}
    )
    train.loc[0, "clicked"] = 0
    priors = ItemPriors.fit(train)
    priors.save(tmp_path)
    loaded = ItemPriors.load(tmp_path)
    assert loaded is not None and loaded.base_rate == priors.base_rate
    assert sorted(loaded.table.index) == sorted(ids)
    pd.testing.assert_frame_equal(loaded.features(train), priors.features(train))
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


def test_blend_with_its_text_weight_held_fits_the_features_alone() -> None:
    frame, text, features = synthetic(0, prior_matters=True)
    held = Blend.fit(frame, text, features, text_weight=1.0)
    assert held.weights["text"] == 1.0
    assert held.weights["prior"] == pytest.approx(1.5, abs=0.35)
    # Over-confident text logits (three times too large): a free fit shrinks the text, a held one cannot.
    assert Blend.fit(frame, 3 * text, features).weights["text"] < 0.6
    doubled = Blend.fit(frame, 2 * text, features, text_weight=0.5)  # the same scores as ``held``
    assert doubled.weights["text"] == 0.5
    assert doubled.weights["prior"] == pytest.approx(held.weights["prior"], abs=1e-4)
    with pytest.raises(ValueError, match="text_weight must be a positive number"):
        Blend.fit(frame, text, features, text_weight=0.0)


def test_blend_of_groups_without_a_click_and_a_non_click_is_the_text_alone() -> None:
    frame = pd.DataFrame({"group": [1, 1, 2], "clicked": [1, 1, 0]})
    features = pd.DataFrame({"prior": [1.0, 2.0, 3.0]})
    blend = Blend.fit(frame, np.zeros(3), features)
    assert blend.final(np.array([0.5, 1.0, 2.0]), features).tolist() == [0.5, 1.0, 2.0]


def train_tiny(model_dir: Path, clicks_path: Path, out: Path, steps: int) -> Path:
    """A few steps of the default recipe (item priors on) on the tiny BERT; the model folder."""
    train(
        [
            "--model-name-or-path", str(model_dir), "--train-file", str(clicks_path),
            "--eval-file", str(clicks_path), "--output-dir", str(out), "--report-to", "none",
            "--max-length", "32", "--batch-size", "8", "--max-steps", str(steps), "--negatives", "2",
        ]
    )  # fmt: skip
    return out


@pytest.mark.slow
def test_training_with_priors_serves_text_plus_priors_everywhere(
    reset_accelerate, tiny_model_dir: Path, clicks_path: Path, tmp_path: Path
) -> None:
    out = train_tiny(tiny_model_dir, clicks_path, tmp_path / "model", steps=2)
    assert (out / PRIORS_FILE).is_file()
    metadata = json.loads((out / METADATA_FILE).read_text())
    assert set(metadata["blend"]) == {"text", "prior", "log_views"}
    assert metadata["metrics"]["threshold"]["criterion"] == "youden_j"

    scorer = load_scorer(str(out))
    frame = pd.read_csv(clicks_path)
    scores, probabilities = scorer.score_frame(frame)
    text = scorer.score_pairs(list(zip(frame["query"], frame["item"], strict=True)))
    np.testing.assert_allclose(scores, Blend(metadata["blend"]).final(text, scorer.priors.features(frame)))
    np.testing.assert_allclose(probabilities, scorer.probabilities(scores))

    candidates = frame[frame["group"] == frame["group"].iloc[0]][["item"]].reset_index(drop=True)
    ranked = rank_candidates(scorer, frame["query"].iloc[0], candidates)
    assert {TEXT_SCORE, PRIOR, VIEWS} <= set(ranked.columns)
    assert ranked[SCORE].is_monotonic_decreasing
    # An upload without ids is matched by the item's hash, as the log's item_id was made.
    assert (ranked[VIEWS] > 0).any()
    # Match and popularity: each part's percentile within the list; the switch ranks by the match alone.
    added = ranked[SCORE] - scorer.blend.text_weight * ranked[TEXT_SCORE].astype("float64")
    assert ranked[POPULARITY].tolist() == percentiles(added.to_numpy()).tolist()
    assert ranked[MATCH].tolist() == percentiles(ranked[TEXT_SCORE].to_numpy()).tolist()
    by_match = rank_candidates(scorer, frame["query"].iloc[0], candidates, match_only=True)
    assert by_match[TEXT_SCORE].is_monotonic_decreasing and by_match[SCORE].tolist() == by_match[TEXT_SCORE].tolist()
    assert by_match.sort_index()[CLICK_PROBABILITY].tolist() == ranked.sort_index()[CLICK_PROBABILITY].tolist()


@pytest.mark.slow
def test_classify_and_rank_use_the_final_score_and_a_folder_without_its_priors_is_refused(
    reset_accelerate, tiny_model_dir: Path, clicks_path: Path, tmp_path: Path
) -> None:
    out = train_tiny(tiny_model_dir, clicks_path, tmp_path / "model", steps=1)
    scorer = load_scorer(str(out))
    scorer.blend = Blend({"text": 0.3, "prior": 2.0, "log_views": 0.0})
    frame = pd.read_csv(clicks_path)
    query, items = frame["query"].iloc[0], frame["item"].head(4).tolist()
    text = scorer.score_pairs([(query, item) for item in items])
    final = 0.3 * text + 2.0 * scorer.priors.features(pd.DataFrame({"item": items}))["prior"].to_numpy()
    np.testing.assert_allclose(scorer.score(query, items), final, rtol=1e-5)
    np.testing.assert_allclose(
        scorer.predict_proba([(query, item) for item in items]), scorer.probabilities(final), rtol=1e-5
    )
    ranked = rank_candidates(scorer, query, pd.DataFrame({"item": items}))
    np.testing.assert_allclose(ranked[SCORE], sorted(final, reverse=True), rtol=1e-5)

    (out / PRIORS_FILE).unlink()
    with pytest.raises(ValueError, match=r"item_priors\.csv is missing"):
        load_scorer(str(out))
