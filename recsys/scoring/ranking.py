"""Rank a candidate list for a context: model scores, optionally blended with numeric feature columns.

Without feature weights a list is ordered by the model's relevance score. With them, each
candidate's final score is

    final = z(model score) + Σ_f weight_f · z(f)

where ``z(x) = (x − mean(x)) / std(x)`` is taken within the list (0 for a column that does not
vary), so that a weight of 1 gives a feature as much say as the model. A negative weight ranks
low values first (a price, an age). The model's score is itself its text logit plus what it learned
about the items from its click log (``recsys.model.priors``), where the model has item priors. The ranked
table has the columns :data:`RANKED_COLUMNS`, then ``model_score`` when features were blended, then
``match_to_context`` (the text logit's percentile within the list), then, where the model has priors,
``popularity_in_log`` (the percentile of what the priors add to the score) and the model score's parts (text
score, the item's click rate and views in the training log), then every other column of the
candidate list.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from recsys.data.contract import CLICK_PROBABILITY, ITEM, ITEM_ID, RANK, SCORE, fill_item_ids
from recsys.data.limits import bad_rows, describe_rows
from recsys.errors import ContractError
from recsys.model.relevance_model import Progress
from recsys.scoring.scorer import Scorer

MODEL_SCORE = "model_score"
# The parts of a model's score that has learned item priors (recsys.model.priors): score = text + weights x priors.
TEXT_SCORE, PRIOR, VIEWS = "text_score", "prior_click_rate", "views_in_log"
# The same two parts as percentiles within the list (0–100, higher: more): how well an item matches the context,
# and how much the model's score gains from the item's popularity in its training log.
MATCH, POPULARITY = "match_to_context", "popularity_in_log"
RANKED_COLUMNS = (RANK, ITEM_ID, ITEM, SCORE, CLICK_PROBABILITY)
# A column of the candidate list that clashes with a column the ranking adds keeps its values under this prefix.
CLASH_PREFIX = "input_"
# A weight of 1 gives a feature as much say as the model; far beyond this, sums of z-scores overflow to inf.
MAX_WEIGHT = 1e6


def zscore(values: np.ndarray) -> np.ndarray:
    """(x − mean) / std within the list; all zeros where the values do not vary.

    The values are first divided by the largest of them (z-scores do not change with scale), so that values
    near the float limit (±1e308) give their z-scores rather than an overflowing std.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    scale = np.abs(values).max()
    if scale == 0 or not np.isfinite(scale):
        return np.zeros_like(values)
    values = values / scale
    std = values.std()
    return np.zeros_like(values) if std == 0 else (values - values.mean()) / std


def _check_feature(candidates: pd.DataFrame, column: str) -> None:
    """Refuse a column to blend that the list lacks, or whose rows are not all finite numbers (naming them)."""
    if column not in candidates.columns:
        raise ContractError(
            "the candidate list",
            f"no column {column!r} to blend; it has {', '.join(map(str, candidates.columns))}",
            column=column,
        )
    values = pd.to_numeric(candidates[column], errors="coerce")
    bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        rows = bad_rows(bad)
        raise ContractError(
            "the candidate list", f"column {column!r} is not a number at row(s) {describe_rows(rows)}",
            "fill in numbers or give it weight 0", column=column, rows=rows,
        )  # fmt: skip


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """The non-zero weights as floats; a weight that is not finite or beyond ±MAX_WEIGHT is refused."""
    checked = {}
    for column, weight in weights.items():
        weight = float(weight)
        if not (np.isfinite(weight) and abs(weight) <= MAX_WEIGHT):
            raise ContractError(
                "the feature weights", f"the weight of {column!r} is {weight:g}",
                f"give a number from {-MAX_WEIGHT:g} to {MAX_WEIGHT:g} (1 gives the feature as much say as the model)",
                column=column,
            )  # fmt: skip
        if weight:
            checked[column] = weight
    return checked


def blend_scores(model_scores: np.ndarray, candidates: pd.DataFrame, weights: Mapping[str, float]) -> np.ndarray:
    """final = z(model score) + Σ weight · z(feature), for weights and columns that :func:`check_candidates` passed."""
    final = zscore(model_scores)
    for column, weight in weights.items():
        final = final + weight * zscore(pd.to_numeric(candidates[column]).to_numpy(dtype=np.float64))
    return final


def _added_columns(scorer: Scorer, weights: Mapping[str, float]) -> list[str]:
    """The columns a ranking adds before the candidate list's own: the ranked columns, the blend's, the priors'."""
    parts = [POPULARITY, TEXT_SCORE, PRIOR, VIEWS] if scorer.priors is not None else []
    return [*RANKED_COLUMNS, *([MODEL_SCORE] if weights else []), MATCH, *parts]


def _kept_columns(candidates: pd.DataFrame, added: list[str]) -> dict[str, str]:
    """The candidate list's other columns and their names in the ranked table: a clash gets CLASH_PREFIX."""
    return {c: CLASH_PREFIX + c if c in added else c for c in candidates.columns if c not in (ITEM, ITEM_ID)}


def _refuse_clashes(candidates: pd.DataFrame, added: list[str]) -> None:
    """Refuse a list whose prefixed name of a clashing column is taken too (a ``rank`` and an ``input_rank``
    column), since the ranked table would then hold two columns of one name."""
    for column in (c for c in candidates.columns if c in added):
        name = CLASH_PREFIX + column
        if name in candidates.columns:
            raise ContractError(
                "the candidate list",
                f"its columns {column!r} and {name!r} would both be called {name!r} in the ranked table "
                f"(the ranking adds its own {column!r}, so the list's is kept as {name!r})",
                f"rename or drop one of {column!r} and {name!r}",
                column=name,
            )


def check_candidates(
    scorer: Scorer, candidates: pd.DataFrame, weights: Mapping[str, float] | None = None
) -> dict[str, float]:
    """The one check of a candidate list and its weights, before any model runs: the checked non-zero weights.

    A weight out of range, a list whose columns would clash in the ranked table, or a blended column that is
    not numbers, is refused. What passes is what :func:`ranked_table` and :func:`blend_scores` take as it is.
    """
    weights = check_weights(weights or {})
    _refuse_clashes(candidates, _added_columns(scorer, weights))
    for column in weights:
        _check_feature(candidates, column)
    return weights


def rank_candidates(
    scorer: Scorer,
    context: str,
    candidates: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    top_k: int | None = None,
    progress: Progress | None = None,
    *,
    match_only: bool = False,
) -> pd.DataFrame:
    """The ranked table of a validated candidate list: rank from 1, highest final score first, ties in input order.

    ``match_only`` ranks by the match to the context alone (the text logit), leaving out what the model learned
    of the items' popularity; the click probabilities stay the model's own.
    """
    weights = check_candidates(scorer, candidates, weights)
    items = candidates[ITEM].astype(str).tolist()
    text_scores = scorer.score_pairs([(context, item) for item in items], progress=progress)
    return ranked_table(scorer, candidates, text_scores, weights, top_k, match_only=match_only)


def ranked_order(scores: np.ndarray, top_k: int | None = None) -> np.ndarray:
    """The positions of ``scores`` from the highest down, cut to ``top_k``, as sentence-transformers'
    ``CrossEncoder.rank`` orders them: a stable sort, so equal scores keep input order."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return order if top_k is None else order[: max(int(top_k), 0)]


def percentiles(values: np.ndarray) -> np.ndarray:
    """Each value's percentile within the list, 0 (the lowest) to 100 (the highest); ties share their mean rank."""
    if len(values) < 2:
        return np.full(len(values), 100, dtype=np.int64)
    ranks = pd.Series(np.asarray(values, dtype=np.float64)).rank(method="average").to_numpy()
    return np.rint(100 * (ranks - 1) / (len(values) - 1)).astype(np.int64)


def ranked_table(
    scorer: Scorer,
    candidates: pd.DataFrame,
    text_scores: np.ndarray,
    weights: Mapping[str, float] | None = None,
    top_k: int | None = None,
    *,
    match_only: bool = False,
) -> pd.DataFrame:
    """The ranked table of candidates from their text logits (one per row), as :func:`rank_candidates` returns it.

    ``candidates`` and ``weights`` are as :func:`check_candidates` passed them (a catalog's items were checked when
    it was built or loaded): nothing is checked again here. Indexed by each item's row label in ``candidates``
    (``input_row``), so that two rankings of one list, or a ranking and its catalog (``recsys.scoring.catalog``),
    can be matched.
    """
    weights = weights or {}
    kept = _kept_columns(candidates, _added_columns(scorer, weights))
    items = candidates[ITEM].astype(str).tolist()
    ids = fill_item_ids(candidates)
    # The model's own score: its text logits plus what it learned about these items from its click log.
    keyed = pd.DataFrame({ITEM: items, ITEM_ID: ids.to_numpy()})
    model_scores = scorer.final_scores(text_scores, keyed)
    ranked_by = np.asarray(text_scores, dtype=np.float64) if match_only else model_scores
    final = blend_scores(ranked_by, candidates, weights) if weights else ranked_by
    order = ranked_order(final, top_k)

    parts = {MATCH: percentiles(text_scores)[order]}
    if scorer.priors is not None:
        clicks, views = scorer.priors.stats(keyed)
        popularity = model_scores - scorer.blend.text_weight * np.asarray(text_scores, dtype=np.float64)
        parts |= {POPULARITY: percentiles(popularity)[order], TEXT_SCORE: text_scores[order]}
        parts |= {PRIOR: scorer.priors.rate(clicks, views)[order], VIEWS: views[order]}
    extra = candidates[list(kept)].rename(columns=kept)
    ranked = pd.DataFrame(
        {
            RANK: np.arange(1, len(order) + 1),
            ITEM_ID: ids.to_numpy()[order],
            ITEM: np.asarray(items, dtype=object)[order],
            SCORE: final[order],
            CLICK_PROBABILITY: scorer.probabilities(model_scores)[order],
            **({MODEL_SCORE: ranked_by[order]} if weights else {}),
            **parts,
        },
        index=pd.Index(candidates.index[order], name="input_row"),
    )
    return pd.concat([ranked, extra.iloc[order]], axis=1)


def compare_rankings(base: pd.DataFrame, tuned: pd.DataFrame) -> pd.DataFrame:
    """The tuned ranking with each item's base rank and its change (positive: moved up with fine-tuning).

    Both are rankings of one candidate list by :func:`rank_candidates`, matched on their index (each
    item's row in the list), so duplicate texts stay distinct. An item the base ranking cut off with
    ``top_k`` has no base rank.
    """
    base_rank = base[RANK].reindex(tuned.index).astype("Int64")
    compared = tuned.copy()
    compared.insert(1, "base_rank", base_rank)
    compared.insert(2, "rank_change", base_rank - tuned[RANK])
    return compared
