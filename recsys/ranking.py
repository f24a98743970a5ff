"""Rank a candidate list for a context: model scores, optionally blended with numeric feature columns.

Without feature weights a list is ordered by the model's relevance score. With them, each
candidate's final score is

    final = z(model score) + Σ_f weight_f · z(f)

where ``z(x) = (x − mean(x)) / std(x)`` is taken within the list (0 for a column that does not
vary), so that a weight of 1 gives a feature as much say as the model. A negative weight ranks
low values first (a price, an age). The model's score is itself its text logit plus what it learned
about the items from its click log (``recsys.priors``), where the model has item priors. The ranked
table has the columns :data:`RANKED_COLUMNS`, then ``model_score`` when features were blended, then
the model score's parts (text score, the item's click rate and views in the training log) where it
has priors, then every other column of the candidate list.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from recsys.contract import ITEM, ITEM_ID, RANK, ContractError, bad_rows, describe_rows, fill_item_ids
from recsys.models import Progress
from recsys.scoring import Scorer, rank_scores

SCORE = "score"
PROBABILITY = "click_probability"
MODEL_SCORE = "model_score"
# The parts of a model's score that has learned item priors (recsys.priors): score = text + weights x priors.
TEXT_SCORE, PRIOR, VIEWS = "text_score", "prior_click_rate", "views_in_log"
RANKED_COLUMNS = (RANK, ITEM_ID, ITEM, SCORE, PROBABILITY)
# A column of the candidate list that clashes with a column the ranking adds keeps its values under this prefix.
CLASH_PREFIX = "input_"


def zscore(values: np.ndarray) -> np.ndarray:
    """(x − mean) / std within the list; all zeros where the values do not vary."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    std = values.std()
    return np.zeros_like(values) if std == 0 or not np.isfinite(std) else (values - values.mean()) / std


def feature_values(candidates: pd.DataFrame, column: str) -> np.ndarray:
    """A feature column as floats, or a ContractError naming the rows that are not numbers."""
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
    return values.to_numpy(dtype=np.float64)


def blend_scores(model_scores: np.ndarray, candidates: pd.DataFrame, weights: Mapping[str, float]) -> np.ndarray:
    """final = z(model score) + Σ weight · z(feature); features with weight 0 are left out."""
    final = zscore(model_scores)
    for column, weight in weights.items():
        if weight:
            final = final + float(weight) * zscore(feature_values(candidates, column))
    return final


def rank_candidates(
    scorer: Scorer,
    context: str,
    candidates: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    top_k: int | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """The ranked table of a validated candidate list: rank from 1, highest final score first, ties in input order."""
    weights = {column: float(w) for column, w in (weights or {}).items() if w}
    items = candidates[ITEM].astype(str).tolist()
    ids = fill_item_ids(candidates)
    text_scores = scorer.score_pairs([(context, item) for item in items], progress=progress)
    # The model's own score: its text logits plus what it learned about these items from its click log.
    keyed = pd.DataFrame({ITEM: items, ITEM_ID: ids.to_numpy()})
    model_scores = scorer.final_scores(text_scores, keyed)
    final = blend_scores(model_scores, candidates, weights) if weights else model_scores
    order = [record["corpus_id"] for record in rank_scores(items, final, top_k)]

    parts = {}
    if scorer.priors is not None:
        _, views = scorer.priors.stats(keyed)
        parts = {TEXT_SCORE: text_scores[order], PRIOR: scorer.priors.click_rate(keyed)[order], VIEWS: views[order]}
    added = [*RANKED_COLUMNS, *([MODEL_SCORE] if weights else []), *parts]
    extra = candidates.drop(columns=[c for c in (ITEM, ITEM_ID) if c in candidates.columns])
    extra = extra.rename(columns={c: CLASH_PREFIX + c for c in extra.columns if c in added})
    # The index is each item's row in the candidate list, so that two rankings of one list can be matched.
    ranked = pd.DataFrame(
        {
            RANK: np.arange(1, len(order) + 1),
            ITEM_ID: ids.to_numpy()[order],
            ITEM: np.asarray(items, dtype=object)[order],
            SCORE: final[order],
            PROBABILITY: scorer.probabilities(model_scores)[order],
            **({MODEL_SCORE: model_scores[order]} if weights else {}),
            **parts,
        },
        index=pd.Index(order, name="input_row"),
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
