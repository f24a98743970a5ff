"""Baselines: random, popularity, keyword match (TF-IDF, BM25) and zero-shot, each on a validated click log."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import CLICKED, ITEM, ITEM_ID, QUERY, read_clicks, validate_clicks
from recsys.evaluation.baselines import (
    bm25_baseline,
    popularity_baseline,
    random_baseline,
    tfidf_baseline,
    zero_shot_baseline,
)
from recsys.scoring.loading import load_scorer


def click_log(rows: list[tuple[str, str, int]], **extra: list) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[QUERY, ITEM, CLICKED]).assign(**extra)
    return validate_clicks(frame)


TRAIN = click_log(
    [
        ("q1", "always clicked", 1),
        ("q2", "always clicked", 1),
        ("q3", "always clicked", 1),
        ("q1", "never clicked", 0),
        ("q2", "never clicked", 0),
        ("q3", "never clicked", 0),
        ("q1", "half clicked", 1),
        ("q2", "half clicked", 0),
    ]
)


def test_popularity_ranks_by_train_click_rate() -> None:
    frame = click_log([("new", "never clicked", 1), ("new", "half clicked", 0), ("new", "always clicked", 0)])
    scores, probabilities = popularity_baseline(frame, TRAIN)
    never, half, always = scores
    assert always > half > never
    assert ((probabilities > 0) & (probabilities < 1)).all()


def test_popularity_never_sees_evaluation_labels() -> None:
    frame = click_log([("new", "never clicked", 1), ("new", "always clicked", 0)])
    flipped = frame.assign(**{CLICKED: 1 - frame[CLICKED]})
    np.testing.assert_array_equal(popularity_baseline(frame, TRAIN)[0], popularity_baseline(flipped, TRAIN)[0])


def test_popularity_gives_unseen_items_the_prior() -> None:
    frame = click_log([("new", "never shown before", 0), ("new", "always clicked", 1)])
    scores, _ = popularity_baseline(frame, TRAIN)
    assert scores[0] == pytest.approx(TRAIN[CLICKED].mean())
    assert scores[1] > scores[0]


def test_popularity_keys_on_item_id_when_both_logs_have_it() -> None:
    train = TRAIN.assign(**{ITEM_ID: ["a", "a", "a", "b", "b", "b", "c", "c"]})
    # The same ids under new titles: popularity follows the id, not the text.
    frame = click_log([("new", "renamed", 0), ("new", "retitled", 1)], **{ITEM_ID: ["b", "a"]})
    never, always = popularity_baseline(frame, train)[0]
    assert always > never


def test_random_is_seeded(clicks_path: Path) -> None:
    frame = read_clicks(clicks_path)
    first, probabilities = random_baseline(frame, TRAIN, seed=3)
    np.testing.assert_array_equal(first, random_baseline(frame, TRAIN, seed=3)[0])
    assert not np.array_equal(first, random_baseline(frame, TRAIN, seed=4)[0])
    assert first.shape == (len(frame),)
    # Without features, the best probability is the training click rate.
    np.testing.assert_allclose(probabilities, TRAIN[CLICKED].mean())


def test_tfidf_scores_a_keyword_match_above_a_non_match() -> None:
    frame = click_log(
        [
            ("lakers trade rumours", "lakers agree trade with celtics", 1),
            ("lakers trade rumours", "stock markets fall on rate fears", 0),
        ]
    )
    (match, miss), probabilities = tfidf_baseline(frame)
    assert match > miss
    assert miss == pytest.approx(0.0)
    assert probabilities[0] > probabilities[1]


def test_tfidf_calibration_on_train_keeps_the_order(clicks_path: Path) -> None:
    clicks = read_clicks(clicks_path)
    train, test = clicks.iloc[: len(clicks) // 2], clicks.iloc[len(clicks) // 2 :].reset_index(drop=True)
    scores, probabilities = tfidf_baseline(test, train)
    assert scores.shape == probabilities.shape == (len(test),)
    assert ((probabilities > 0) & (probabilities < 1)).all()
    order = np.argsort(scores, kind="stable")
    assert (np.diff(probabilities[order]) >= 0).all()


def bm25_scores(query: str, items: list[str], train: pd.DataFrame | None = None) -> np.ndarray:
    return bm25_baseline(click_log([(query, item, 0) for item in items]), train)[0]


def test_bm25_hand_computed_on_three_items() -> None:
    scores = bm25_scores("Apple tart", ["apple pie", "apple tart apple", "banana split sundae"])
    # N = 3 items, lengths 2, 3, 3 (average 8/3); df(apple) = 2, df(tart) = 1; k1 = 1.5, b = 0.75.
    idf_apple, idf_tart = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5)), math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    norm_2, norm_3 = 1.5 * (1 - 0.75 + 0.75 * 2 / (8 / 3)), 1.5 * (1 - 0.75 + 0.75 * 3 / (8 / 3))
    expected = [
        idf_apple * 1 * 2.5 / (1 + norm_2),
        idf_apple * 2 * 2.5 / (2 + norm_3) + idf_tart * 1 * 2.5 / (1 + norm_3),
        0.0,
    ]
    np.testing.assert_allclose(scores, expected, rtol=1e-12)


def test_bm25_document_statistics_include_train_items() -> None:
    train = click_log([("q", "apple crumble", 1), ("q", "apple juice", 0), ("q", "apple cider", 1)])
    alone, with_train = (
        bm25_scores("apple", ["apple pie", "cherry pie"]),
        bm25_scores("apple", ["apple pie", "cherry pie"], train),
    )
    # apple is in 1 of 2 items alone, in 4 of 5 with the training items: a commoner word weighs less.
    assert with_train[0] < alone[0]


def test_bm25_rare_query_term_outranks_a_common_one() -> None:
    common = [f"market report {word}" for word in ("today", "tonight", "weekly", "daily")]
    rare, frequent, *_ = bm25_scores("zeppelin market", ["zeppelin zeppelin flight", "market market flight", *common])
    assert rare > frequent > 0


def test_bm25_term_frequency_saturates() -> None:
    # Same length, one to three occurrences of the query term.
    once, twice, thrice = bm25_scores("goal", ["goal alpha beta gamma", "goal goal beta gamma", "goal goal goal gamma"])
    assert once < twice < thrice
    assert thrice - twice < 0.75 * (twice - once)  # each repeat adds less: 0.24 after 0.43 here
    assert thrice < 2 * once


def test_bm25_penalises_longer_items() -> None:
    short, long = bm25_scores("goal", ["goal news", "goal news with many more words about other things"])
    assert short > long > 0


def test_bm25_never_sees_labels(clicks_path: Path) -> None:
    clicks = read_clicks(clicks_path)
    train, test = clicks.iloc[: len(clicks) // 2], clicks.iloc[len(clicks) // 2 :].reset_index(drop=True)
    rng = np.random.default_rng(0)
    shuffled_test = test.assign(**{CLICKED: rng.permutation(test[CLICKED].to_numpy())})
    shuffled_train = train.assign(**{CLICKED: rng.permutation(train[CLICKED].to_numpy())})
    scores, probabilities = bm25_baseline(test, train)
    np.testing.assert_array_equal(scores, bm25_baseline(shuffled_test, train)[0])
    np.testing.assert_array_equal(probabilities, bm25_baseline(shuffled_test, train)[1])
    # Training labels fit the calibration only: the scores stay the same.
    np.testing.assert_array_equal(scores, bm25_baseline(test, shuffled_train)[0])
    assert scores.shape == probabilities.shape == (len(test),)
    assert ((probabilities > 0) & (probabilities < 1)).all()


@pytest.mark.slow
def test_zero_shot_scores_are_the_scorer_scores(tiny_model_dir: Path, clicks_path: Path) -> None:
    scorer = load_scorer(str(tiny_model_dir))
    frame = read_clicks(clicks_path).head(20)
    scores, probabilities = zero_shot_baseline(frame, scorer)
    expected = scorer.score_pairs(list(zip(frame[QUERY], frame[ITEM], strict=True)))
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert ((probabilities > 0) & (probabilities < 1)).all()
