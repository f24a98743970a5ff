"""Replaying a click log as interleaved sessions (recsys.loop.simulation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import read_clicks
from recsys.feedback.interleave import CHALLENGER, CHAMPION, TIE, CascadeClicks, PositionBasedClicks
from recsys.loop.simulation import ZERO_SHOT, draw_sessions, load_rankers, replay, simulate


def synthetic_log(groups: int = 60, items: int = 8, clicked: int = 2) -> pd.DataFrame:
    rows = [
        {"group": f"g{g}", "query": f"user {g}", "item": f"item {g}-{i}", "clicked": int(i < clicked)}
        for g in range(groups)
        for i in range(items)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("click_model", [CascadeClicks(), PositionBasedClicks()])
def test_a_ranker_that_puts_the_clicked_items_first_wins(click_model) -> None:
    log = synthetic_log()
    labels = log["clicked"].to_numpy()
    best, worst = labels + 0.0, -labels + 0.0
    sessions = draw_sessions(log, np.random.default_rng(0))
    assert sorted(len(rows) for rows in sessions) == [8] * 60
    outcomes = replay(sessions, worst, best, labels, click_model, np.random.default_rng(1))
    assert outcomes.count(CHALLENGER) > 3 * outcomes.count(CHAMPION)
    swapped = replay(sessions, best, worst, labels, click_model, np.random.default_rng(1))
    assert swapped.count(CHAMPION) > 3 * swapped.count(CHALLENGER)
    same = replay(sessions, best, best, labels, click_model, np.random.default_rng(1))
    assert set(same) == {TIE}


def test_a_shorter_run_replays_the_first_sessions_of_a_longer_one(bi_scorer, cross_scorer, clicks_path: Path) -> None:
    log = read_clicks(clicks_path)
    full = simulate(bi_scorer, cross_scorer, log, CascadeClicks(), seed=3)
    assert len(full) == log["group"].nunique()
    assert simulate(bi_scorer, cross_scorer, log, CascadeClicks(), seed=3, max_sessions=5) == full[:5]
    assert simulate(bi_scorer, cross_scorer, log, CascadeClicks(), seed=3) == full


def test_zero_shot_is_the_fine_tuned_models_base_reading_as_much(trained_model_dir: Path, clicks_path: Path) -> None:
    log = read_clicks(clicks_path)
    champion, challenger = load_rankers(ZERO_SHOT, str(trained_model_dir), log)
    assert challenger.metadata.fine_tuned and not champion.metadata.fine_tuned
    assert Path(champion.metadata.base_model) == Path(challenger.metadata.base_model)
    assert champion.metadata.max_length == challenger.metadata.max_length
    same, again = load_rankers(str(trained_model_dir), str(trained_model_dir), log)
    assert same is again  # loaded once
