"""The biased click log of the position-bias experiment: a labelled log ranked by a logging model, shown with
optional swaps, and clicked by a position-based click model from its labels (``bench.position_bias`` trains on it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.contract import CLICKED, GROUP, POSITION
from recsys.feedback.interleave import PositionBasedClicks
from recsys.feedback.swaps import assign_swaps


def logged_positions(frame: pd.DataFrame, scores: np.ndarray) -> np.ndarray:
    """Each row's place in its group ranked by ``scores``, high to low, from 1; ties keep the rows' order."""
    order = pd.DataFrame({GROUP: frame[GROUP].to_numpy(), "score": -np.asarray(scores, dtype=np.float64)})
    order["row"] = np.arange(len(order))
    ranked = order.sort_values([GROUP, "score", "row"], kind="stable")
    positions = np.empty(len(order), dtype=np.int64)
    positions[ranked["row"].to_numpy()] = ranked.groupby(GROUP, sort=False).cumcount().to_numpy() + 1
    return positions


def simulate_clicks(
    frame: pd.DataFrame, relevance: np.ndarray, model: PositionBasedClicks, rng: np.random.Generator
) -> np.ndarray:
    """Clicks (0/1) on each row, by ``model`` reading each group in the order of its ``position``."""
    clicks = np.zeros(len(frame), dtype=np.int64)
    relevance = np.asarray(relevance).astype(bool)
    for rows in frame.groupby(GROUP, sort=False).indices.values():
        shown = rows[np.argsort(frame[POSITION].to_numpy()[rows], kind="stable")]
        clicks[shown] = model.simulate(relevance[shown], rng)
    return clicks


def biased_log(
    labelled: pd.DataFrame,
    scores: np.ndarray,
    model: PositionBasedClicks,
    rng: np.random.Generator,
    swap_share: float = 0.0,
    swap_design: str = "adjacent",
    swap_depth: int | None = 10,
) -> pd.DataFrame:
    """``labelled`` as a ranker would have logged it: ranked by ``scores``, shown with swaps on ``swap_share`` of
    its groups, and clicked by ``model`` from its labels. ``clicked`` is the simulated click; ``relevance`` keeps the
    label and :data:`~recsys.feedback.swaps.SWAP` the swap, neither of which goes into a training log."""
    log = labelled.assign(**{POSITION: logged_positions(labelled, scores)})
    log = assign_swaps(log, swap_share, rng, swap_design, depth=swap_depth)
    relevance = labelled[CLICKED].to_numpy()
    return log.assign(relevance=relevance, **{CLICKED: simulate_clicks(log, relevance, model, rng)})


def click_rates(log: pd.DataFrame, model: PositionBasedClicks, positions: int = 10) -> pd.DataFrame:
    """Per position of the top ``positions``: rows, clicks, the click rate, and the rate the click model predicts
    for those rows (the examination times each row's chance of a click when seen, averaged)."""
    top = log[log[POSITION] <= positions]
    seen = model.examination(positions)[top[POSITION].to_numpy() - 1]
    chance = np.where(top["relevance"].astype(bool), model.p_click_relevant, model.p_click_irrelevant)
    table = pd.DataFrame({POSITION: top[POSITION], CLICKED: top[CLICKED], "expected": seen * chance})
    rates = table.groupby(POSITION).agg(rows=(CLICKED, "size"), clicks=(CLICKED, "sum"), expected=("expected", "mean"))
    return rates.assign(rate=rates["clicks"] / rates["rows"]).reset_index()
