"""Ranking a candidate list: the blend formula, the ranked table, comparing two rankings.

Reading candidate files is the contract's (test_contract.py) and the upload's (test_inputs.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import CLICK_PROBABILITY, ITEM, ITEM_ID, RANK, SCORE, item_ids, numeric_columns
from recsys.errors import ContractError
from recsys.scoring.loading import load_scorer
from recsys.scoring.ranking import (
    MATCH,
    MAX_WEIGHT,
    MODEL_SCORE,
    RANKED_COLUMNS,
    blend_scores,
    compare_rankings,
    percentiles,
    rank_candidates,
    ranked_order,
    zscore,
)
from recsys.scoring.scorer import Scorer

CONTEXT = "microsoft surface studio | apple macbook pro deals"
ITEMS = [
    "microsoft surface studio first look",
    "apple macbook pro deals last chance",
    "donald trump lawyers ask delay trial",
    "philippine military offensive",
    "microsoft surface studio first look",  # a duplicate: ties must stay in input order
]


@pytest.fixture(scope="module")
def scorer(tiny_model_dir: Path) -> Scorer:
    return load_scorer(str(tiny_model_dir))


@pytest.fixture
def candidates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            ITEM_ID: [f"n{i}" for i in range(len(ITEMS))],
            ITEM: ITEMS,
            "popularity": ["5", "0", "12", "3", "5"],  # strings, as the CSV reader gives them
            "section": ["tech", "tech", "politics", "world", "tech"],
        }
    )


def test_zscore_centres_and_scales_and_leaves_constant_columns_at_zero() -> None:
    z = zscore(np.array([1.0, 2.0, 3.0, 4.0]))
    assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1)
    assert np.array_equal(zscore(np.array([7.0, 7.0, 7.0])), np.zeros(3))
    assert zscore(np.array([])).size == 0


def test_zscore_of_values_near_the_float_limit_is_their_zscore_not_zeros() -> None:
    """A feature of ±1e308 overflowed the std to inf and was silently left out of the blend."""
    huge = zscore(np.array([1e308, -1e308, 5e307, 0.0]))
    assert np.allclose(huge, zscore(np.array([1.0, -1.0, 0.5, 0.0])))
    assert np.array_equal(zscore(np.array([1e308, 1e308])), np.zeros(2))


def test_blend_is_zscored_model_score_plus_weighted_zscored_features(candidates: pd.DataFrame) -> None:
    model = np.array([0.5, 0.1, -0.2, 0.3, 0.5])
    popularity = candidates["popularity"].astype(float).to_numpy()
    blended = blend_scores(model, candidates, {"popularity": 0.7})
    assert np.allclose(blended, zscore(model) + 0.7 * zscore(popularity))
    assert np.allclose(blend_scores(model, candidates, {"popularity": 0.0}), zscore(model))


def test_ranked_order_is_a_stable_sort_high_to_low_cut_to_top_k() -> None:
    assert ranked_order(np.array([1.0, 2.0, 1.0, 2.0, 1.0])).tolist() == [1, 3, 0, 2, 4]
    scores = np.array([0.1, 0.3, 0.2])
    assert ranked_order(scores, top_k=2).tolist() == [1, 2]
    assert ranked_order(scores, top_k=10).tolist() == [1, 2, 0]
    assert ranked_order(scores, top_k=0).tolist() == ranked_order(scores, top_k=-1).tolist() == []
    assert ranked_order(np.array([])).tolist() == []


@pytest.mark.parametrize("architecture", ["bi", "cross"])
def test_both_architectures_rank_into_one_table(architecture: str, request: pytest.FixtureRequest) -> None:
    scorer = request.getfixturevalue(f"{architecture}_scorer")
    ranked = rank_candidates(scorer, CONTEXT, pd.DataFrame({ITEM: ITEMS}))
    assert list(ranked.columns) == [*RANKED_COLUMNS, MATCH]
    assert ranked[RANK].tolist() == list(range(1, len(ITEMS) + 1))
    assert ranked[SCORE].is_monotonic_decreasing
    np.testing.assert_allclose(ranked[SCORE], scorer.score(CONTEXT, ITEMS)[ranked.index], rtol=1e-6)
    np.testing.assert_allclose(ranked[CLICK_PROBABILITY], scorer.probabilities(ranked[SCORE].to_numpy()), rtol=1e-12)
    top = rank_candidates(scorer, CONTEXT, pd.DataFrame({ITEM: ITEMS}), top_k=2)
    assert top.index.tolist() == ranked.index[:2].tolist()  # top_k is a prefix of the whole ranking


def test_a_large_feature_weight_orders_the_list_by_that_feature(scorer: Scorer, candidates: pd.DataFrame) -> None:
    ranked = rank_candidates(scorer, CONTEXT, candidates, weights={"popularity": 1000})
    assert ranked["popularity"].astype(int).tolist() == [12, 5, 5, 3, 0]
    lowest_first = rank_candidates(scorer, CONTEXT, candidates, weights={"popularity": -1000})
    assert lowest_first["popularity"].astype(int).tolist()[0] == 0


def test_ranked_table_columns_ranks_and_order(scorer: Scorer, candidates: pd.DataFrame) -> None:
    ranked = rank_candidates(scorer, CONTEXT, candidates)
    assert list(ranked.columns) == [*RANKED_COLUMNS, MATCH, "popularity", "section"]
    assert ranked[RANK].tolist() == list(range(1, len(ITEMS) + 1))
    assert ranked[SCORE].is_monotonic_decreasing
    assert ranked[CLICK_PROBABILITY].between(0, 1).all()
    # The scores are the scorer's own, and each row keeps its item's id and extra columns.
    expected = scorer.score(CONTEXT, ITEMS)
    assert np.allclose(ranked[SCORE].to_numpy(), np.sort(expected)[::-1], atol=1e-5)
    for _, row in ranked.iterrows():
        source = candidates[candidates[ITEM_ID] == row[ITEM_ID]].iloc[0]
        assert (row[ITEM], row["popularity"], row["section"]) == (source[ITEM], source["popularity"], source["section"])


def test_equal_scores_keep_input_order(scorer: Scorer, candidates: pd.DataFrame) -> None:
    ranked = rank_candidates(scorer, CONTEXT, candidates)
    duplicates = ranked[ranked[ITEM] == ITEMS[0]]
    assert duplicates[ITEM_ID].tolist() == ["n0", "n4"]
    assert duplicates[RANK].diff().iloc[1] == 1


def test_top_k_cuts_the_table_and_blending_adds_the_model_score(scorer: Scorer, candidates: pd.DataFrame) -> None:
    ranked = rank_candidates(scorer, CONTEXT, candidates, weights={"popularity": 0.5}, top_k=2)
    assert len(ranked) == 2
    assert MODEL_SCORE in ranked.columns
    assert MODEL_SCORE not in rank_candidates(scorer, CONTEXT, candidates).columns


def test_missing_item_ids_are_hashes_of_the_text(scorer: Scorer) -> None:
    ranked = rank_candidates(scorer, CONTEXT, pd.DataFrame({ITEM: ITEMS[:3]}))
    assert set(ranked[ITEM_ID]) == set(item_ids(pd.Series(ITEMS[:3])))
    assert item_ids(pd.Series(["same"])).iloc[0] == item_ids(pd.Series(["same"])).iloc[0]


def test_gaps_in_a_given_item_id_column_get_the_hash_of_their_item(scorer: Scorer) -> None:
    candidates = pd.DataFrame({ITEM: ITEMS[:3], ITEM_ID: ["a1", None, " "]})
    ranked = rank_candidates(scorer, CONTEXT, candidates).set_index(ITEM)
    hashes = dict(zip(ITEMS[:3], item_ids(pd.Series(ITEMS[:3])), strict=True))
    assert ranked.loc[ITEMS[0], ITEM_ID] == "a1"
    assert [ranked.loc[i, ITEM_ID] for i in ITEMS[1:3]] == [hashes[i] for i in ITEMS[1:3]]  # never "nan"


def test_candidate_columns_that_clash_with_the_ranking_are_kept_under_a_prefix(scorer: Scorer) -> None:
    frame = pd.DataFrame({ITEM: ITEMS[:2], "score": ["a", "b"], "rank": ["x", "y"]})
    ranked = rank_candidates(scorer, CONTEXT, frame)
    assert {"input_score", "input_rank"} <= set(ranked.columns)
    assert ranked[RANK].tolist() == [1, 2]


def test_a_column_and_its_prefixed_twin_are_refused_before_the_model_runs(scorer: Scorer) -> None:
    # 'rank' would be kept as 'input_rank', beside the list's own 'input_rank': two columns of one name.
    frame = pd.DataFrame({ITEM: ITEMS[:2], "rank": [2, 1], "input_rank": [1, 2]})
    with pytest.raises(
        ContractError,
        match=r"columns 'rank' and 'input_rank' would both be called 'input_rank'.*"
        r"rename or drop one of 'rank' and 'input_rank'",
    ) as error:
        rank_candidates(scorer, CONTEXT, frame, progress=lambda *_: pytest.fail("the model ran"))
    assert error.value.column == "input_rank"
    ranked = rank_candidates(scorer, CONTEXT, frame.rename(columns={"input_rank": "old_rank"}))
    assert ranked.columns.is_unique and {"input_rank", "old_rank"} <= set(ranked.columns)


@pytest.mark.parametrize(("weight", "shown"), [(1e308, "1e+308"), (-1e7, "-1e+07"), (np.nan, "nan"), (np.inf, "inf")])
def test_a_weight_that_is_not_finite_or_too_large_is_refused_before_the_model_runs(
    scorer: Scorer, candidates: pd.DataFrame, weight: float, shown: str
) -> None:
    """The one rule of a weight's range (the app's weights table leaves it to this check)."""
    message = (
        f"the feature weights: the weight of 'popularity' is {shown}; give a number from -1e+06 to 1e+06 "
        "(1 gives the feature as much say as the model)"
    )
    with pytest.raises(ContractError, match=f"^{re.escape(message)}$"):
        rank_candidates(scorer, CONTEXT, candidates, {"popularity": weight}, progress=lambda *_: pytest.fail("ran"))
    ranked = rank_candidates(scorer, CONTEXT, candidates, weights={"popularity": -MAX_WEIGHT})
    assert np.isfinite(ranked[SCORE]).all()
    assert ranked["popularity"].astype(float).is_monotonic_increasing  # the feature decides, in finite scores


def test_blending_a_column_that_is_not_numeric_names_the_rows(scorer: Scorer, candidates: pd.DataFrame) -> None:
    unscored = {"progress": lambda *_: pytest.fail("the model ran")}
    with pytest.raises(ContractError, match=r"'section' is not a number at row\(s\) 1, 2, 3"):
        rank_candidates(scorer, CONTEXT, candidates, weights={"section": 1.0}, **unscored)
    with pytest.raises(ContractError, match="no column 'price' to blend"):
        rank_candidates(scorer, CONTEXT, candidates, weights={"price": 1.0}, **unscored)


def test_numeric_columns_are_the_blendable_features(candidates: pd.DataFrame) -> None:
    assert numeric_columns(candidates) == ["popularity"]
    assert numeric_columns(candidates.assign(price=["1.5", "", "2", "3", "4"])) == ["popularity"]


def test_empty_list_gives_an_empty_table(scorer: Scorer) -> None:
    ranked = rank_candidates(scorer, CONTEXT, pd.DataFrame({ITEM: pd.Series([], dtype=str)}))
    assert ranked.empty and list(ranked.columns) == [*RANKED_COLUMNS, MATCH]


def test_percentiles_run_from_the_lowest_to_the_highest_with_ties_shared() -> None:
    assert percentiles(np.array([0.3, -1.0, 2.0])).tolist() == [50, 0, 100]
    assert percentiles(np.array([1.0, 1.0, 0.0])).tolist() == [75, 75, 0]
    assert percentiles(np.array([5.0])).tolist() == [100] and percentiles(np.array([])).size == 0


def test_match_is_the_text_scores_percentile_within_the_whole_list(scorer: Scorer, candidates: pd.DataFrame) -> None:
    ranked = rank_candidates(scorer, CONTEXT, candidates, top_k=2)
    text = scorer.score_pairs([(CONTEXT, item) for item in candidates[ITEM]])
    assert ranked[MATCH].tolist() == percentiles(text)[ranked.index].tolist()  # of all 5 items, not the top 2
    assert ranked[MATCH].iloc[0] == percentiles(text).max()  # a zero-shot model ranks by its match


def test_compare_matches_items_by_their_row_in_the_list(scorer: Scorer, candidates: pd.DataFrame) -> None:
    base = rank_candidates(scorer, CONTEXT, candidates)
    reversed_ranks = rank_candidates(scorer, CONTEXT, candidates, weights={"popularity": 1000})
    compared = compare_rankings(base, reversed_ranks)
    for row, tuned in compared.iterrows():
        assert tuned["base_rank"] == base.loc[row, RANK]
        assert tuned["rank_change"] == base.loc[row, RANK] - tuned[RANK]
    assert compared["rank_change"].sum() == 0
