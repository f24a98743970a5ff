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

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.contract import (
    ITEM,
    ITEM_ID,
    ContractError,
    fill_item_ids,
    read_candidates,
    read_table,
    validate_candidates,
)
from recsys.models import Scorer, rank_scores

logger = logging.getLogger(__name__)

RANK = "rank"
SCORE = "score"
PROBABILITY = "click_probability"
MODEL_SCORE = "model_score"
# The parts of a model's score that has learned item priors (recsys.priors): score = text + weights x priors.
TEXT_SCORE, PRIOR, VIEWS = "text_score", "prior_click_rate", "views_in_log"
RANKED_COLUMNS = (RANK, ITEM_ID, ITEM, SCORE, PROBABILITY)
CANDIDATE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".txt")
# A column of the candidate list that clashes with a column the ranking adds keeps its values under this prefix.
CLASH_PREFIX = "input_"
SCORE_BATCH = 64  # candidates scored per step; progress is reported after each

Progress = Callable[[int, int], None]


def read_candidate_file(path: str | Path) -> pd.DataFrame:
    """The table in a candidate file before its item column is checked; a .txt file gives an ``item`` column."""
    path = Path(path)
    if path.suffix.lower() not in CANDIDATE_SUFFIXES:
        raise ContractError(
            f"{path.name}: unknown file type {path.suffix or '(none)'!r}; upload one of {', '.join(CANDIDATE_SUFFIXES)}"
        )
    with path.open("rb") as handle:
        if b"\x00" in handle.read(8192):
            raise ContractError(f"{path.name}: this looks like a binary file; upload UTF-8 text (CSV, TSV, JSONL, TXT)")
    return read_candidates(path) if path.suffix.lower() == ".txt" else read_table(path)


def load_candidates(path: str | Path, item_column: str = ITEM, max_items: int | None = None) -> pd.DataFrame:
    """Read and check a candidate file (.csv, .tsv, .jsonl, or .txt with one item per line).

    Raises :class:`ContractError` for an unknown extension, a binary file, a missing or blank
    item column, or more than ``max_items`` rows.
    """
    path = Path(path)
    table = read_candidate_file(path)
    candidates = validate_candidates(table, source=path.name, item_column=item_column)
    check_size(candidates, max_items, path.name)
    return candidates


def check_size(candidates: pd.DataFrame, max_items: int | None, source: str) -> None:
    if len(candidates) == 0:
        raise ContractError(f"{source}: no items; give at least one")
    if max_items is not None and len(candidates) > max_items:
        raise ContractError(
            f"{source}: {len(candidates)} items, more than the limit of {max_items}; rank a shorter list"
        )


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
            f"no column {column!r} to blend; the candidate list has {', '.join(map(str, candidates.columns))}"
        )
    values = pd.to_numeric(candidates[column], errors="coerce")
    bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad)[:5])
        raise ContractError(f"column {column!r} is not a number at row(s) {rows}; fill in numbers or give it weight 0")
    return values.to_numpy(dtype=np.float64)


def blend_scores(model_scores: np.ndarray, candidates: pd.DataFrame, weights: Mapping[str, float]) -> np.ndarray:
    """final = z(model score) + Σ weight · z(feature); features with weight 0 are left out."""
    final = zscore(model_scores)
    for column, weight in weights.items():
        if weight:
            final = final + float(weight) * zscore(feature_values(candidates, column))
    return final


def score_items(scorer: Scorer, context: str, items: list[str], progress: Progress | None = None) -> np.ndarray:
    """Text logits of ``items`` for ``context``, in steps of :data:`SCORE_BATCH` so that progress shows."""
    scores = np.zeros(len(items), dtype=np.float64)
    for start in range(0, len(items), SCORE_BATCH):
        batch = items[start : start + SCORE_BATCH]
        scores[start : start + SCORE_BATCH] = scorer.score_pairs([(context, item) for item in batch])
        if progress is not None:
            progress(min(start + SCORE_BATCH, len(items)), len(items))
    return scores


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
    text_scores = score_items(scorer, context, items, progress)
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
