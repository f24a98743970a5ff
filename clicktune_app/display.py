"""How the page shows a ranking: its columns, scores rounded, match and popularity as small bars, real clicks ticked,
and how each model ranks a list's real clicks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsys.data.contract import CLICK_PROBABILITY, CLICKED, ITEM, ITEM_ID, MARK, RANK, SCORE, ground_truth
from recsys.evaluation.metrics import list_outcome
from recsys.scoring.ranking import CLASH_PREFIX, MATCH, MODEL_SCORE, POPULARITY, PRIOR, TEXT_SCORE

# How the page shows a ranking's match and popularity percentiles (as small bars), and a list's real clicks.
MATCH_SHOWN, POPULARITY_SHOWN, REAL_CLICK = "match", "log popularity", "real click"
# The same columns whatever the list (blank where a list has no real clicks, or the model no item priors), so that
# scripts read one table; a candidate file's own columns follow.
RANK_HEADERS = [MARK, RANK, ITEM, REAL_CLICK, MATCH_SHOWN, POPULARITY_SHOWN, SCORE, CLICK_PROBABILITY, ITEM_ID]
DISPLAY_DECIMALS = 4
TOP = 5  # a list's outcome counts the real clicks among the top TOP


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """Scores rounded for reading (as float64: a rounded float32 prints with its binary tail); the download keeps
    every digit."""
    scores = [c for c in (SCORE, CLICK_PROBABILITY, MODEL_SCORE, TEXT_SCORE, PRIOR) if c in table.columns]
    return table.astype(dict.fromkeys(scores, "float64")).round(dict.fromkeys(scores, DISPLAY_DECIMALS))


def bar(percentile: Any) -> str:
    """A percentile (0–100) as five small blocks and its number, e.g. ``▰▰▰▰▱ 83``; blank where there is none."""
    if pd.isna(percentile):
        return ""
    filled = round(int(percentile) / 20)
    return "▰" * filled + "▱" * (5 - filled) + f" {int(percentile)}"


def arrow(change: Any) -> str:
    """A rank change as the page shows it: ``▲ 2``, ``▼ 1`` or ``=``; blank where there is none."""
    if pd.isna(change):
        return ""
    change = int(change)
    return f"▲ {change}" if change > 0 else f"▼ {-change}" if change < 0 else "="


def shown(ranked: pd.DataFrame, mark: bool = True) -> pd.DataFrame:
    """A ranking as the page shows it: (an unticked mark column,) rank and the item first, a list's real clicks
    ticked beside the item, match and popularity as small bars, the scores rounded, then the list's own columns."""
    table = _display(ranked).reset_index(drop=True)
    # A list's own column named as one the page adds keeps its values under the ranking's clash prefix.
    taken = [c for c in (MATCH_SHOWN, POPULARITY_SHOWN, REAL_CLICK) if c in table.columns]
    table = table.rename(columns={c: CLASH_PREFIX + c for c in taken})
    for name, column in ((MATCH_SHOWN, MATCH), (POPULARITY_SHOWN, POPULARITY)):
        table[name] = table[column].map(bar) if column in table.columns else ""
    table = table.drop(columns=[MATCH, POPULARITY], errors="ignore")
    clicked = ground_truth(table, "the ranked list") if CLICKED in table.columns else np.zeros(len(table), int)
    table = table.drop(columns=CLICKED, errors="ignore").assign(**{REAL_CLICK: ["✓" if c else "" for c in clicked]})
    order = [RANK, ITEM, REAL_CLICK, "change", MATCH_SHOWN, POPULARITY_SHOWN, SCORE, CLICK_PROBABILITY, ITEM_ID]
    front = [c for c in order if c in table.columns]
    table = table[front + [c for c in table.columns if c not in front]]
    if mark:
        table.insert(0, MARK, False)
    return table


def outcomes(ranked: dict[str, pd.DataFrame], candidates: pd.DataFrame) -> str:
    """For a list that carries its real clicks, per model: how many of them it ranks in the top 5, and the list's
    AUC; "" for a list without them. ``ranked``: each model's full ranking of ``candidates``."""
    clicked = ground_truth(candidates, "the candidate list")
    if clicked is None:
        return ""
    lines = []
    for name, ranking in ranked.items():
        scores = ranking[SCORE].reindex(candidates.index)  # what the list was ranked by, in the list's order
        lines.append(f"**{name}**: {list_outcome(scores.to_numpy(), clicked, TOP).describe()}")
    return "Real clicks of this list: " + " · ".join(lines) + "."


def count(n: int, noun: str) -> str:
    """``1 click``, ``2 clicks``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def short(context: str) -> str:
    """A context cut to 60 characters, for a table's cell."""
    return context if len(context) <= 60 else context[:60] + "…"
