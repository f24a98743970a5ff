"""The decision to promote a challenger, on a clear win only (recsys.loop.promotion)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation.metrics import Difference
from recsys.loop.promotion import Challenge, HeadToHead, decide, head_to_head

WIN = Challenge(HeadToHead("held.csv", 40, 0.60, 0.70, Difference(0.10, 0.05, 0.15)))
LOSS = Challenge(HeadToHead("held.csv", 40, 0.70, 0.69, Difference(-0.01, -0.04, 0.02)))


def feedback(value: float, low: float, high: float, groups: int = 50) -> HeadToHead:
    return HeadToHead("the 50 most recent feedback lists", groups, 0.6, 0.6 + value, Difference(value, low, high))


@pytest.mark.parametrize(
    ("challenge", "promoted", "words"),
    [
        pytest.param(WIN, True, ["Promoted the challenger", "+0.100 (95% interval +0.050 to +0.150)", "clear of zero"]),
        pytest.param(LOSS, False, ["Kept the champion", "-0.010 (95% interval -0.040 to +0.020)", "not clear zero"]),
        pytest.param(
            Challenge(HeadToHead("held.csv", 40, 0.60, 0.62, Difference(0.02, -0.01, 0.05))),
            False,
            ["Kept the champion", "+0.020 (95% interval -0.010 to +0.050)"],
            id="ahead but not clear of zero",
        ),
        pytest.param(
            Challenge(HeadToHead("held.csv", 40, 0.6, 0.6, Difference(0.0, 0.0, 0.0))),
            False,
            ["Kept the champion", "+0.000"],
            id="a tie",
        ),
        pytest.param(
            Challenge(HeadToHead("held.csv", 40, 0.6, 0.6, Difference(*[float("nan")] * 3))),
            False,
            ["Kept the champion"],
            id="no interval",
        ),
        pytest.param(
            Challenge(WIN.held_out, feedback(-0.05, -0.08, -0.02)),
            False,
            ["Kept the champion", "but on the 50 most recent feedback lists", "-0.050", "wholly below zero"],
            id="worse on recent feedback",
        ),
        pytest.param(
            Challenge(WIN.held_out, feedback(-0.05, -0.08, -0.02, groups=5)),
            True,
            ["Promoted the challenger", "too few ranked lists (under 20)"],
            id="worse on too few feedback lists",
        ),
        pytest.param(
            Challenge(WIN.held_out, feedback(-0.01, -0.03, 0.01)),
            True,
            ["Promoted the challenger", "-0.010 (95% interval -0.030 to +0.010), not below zero"],
            id="even on recent feedback",
        ),
    ],
)
def test_a_challenger_is_promoted_only_on_a_clear_win(challenge: Challenge, promoted: bool, words: list[str]) -> None:
    decision = decide(challenge)
    assert decision.promote is promoted
    assert decision.reason.count(". ") == 0 and decision.reason.endswith(".")  # one sentence
    for word in words:
        assert word in decision.reason


def ranked_log(groups: int = 60, items: int = 8) -> pd.DataFrame:
    rows = [
        {"group": f"g{g}", "query": f"user {g}", "item": f"item {g}-{i}", "clicked": int(i % 4 == 0)}
        for g in range(groups)
        for i in range(items)
    ]
    return pd.DataFrame(rows)


def test_the_evaluation_tells_a_better_challenger_from_a_worse_one() -> None:
    frame = ranked_log()
    labels = frame["clicked"].to_numpy(dtype=float)
    noise = np.random.default_rng(0).random(len(frame))
    right, wrong = (labels + 0.5 * noise, 0.5 * noise), (-labels + 0.5 * noise, 0.5 * noise)
    middling = (labels + 3 * noise, 0.5 * noise)

    better = head_to_head(frame, middling, right, "log.csv")
    assert better.groups == 60 and better.challenger_auc == 1.0 and better.champion_auc < 1.0
    assert better.difference.low > 0 and decide(Challenge(better)).promote
    worse = head_to_head(frame, middling, wrong, "log.csv")
    assert worse.challenger_auc == 0.0 and worse.difference.high < 0 and not decide(Challenge(worse)).promote
    same = head_to_head(frame, middling, middling, "log.csv")
    assert tuple(same.difference) == (0.0, 0.0, 0.0) and not decide(Challenge(same)).promote
    assert Challenge.from_json(json.loads(json.dumps(Challenge(better, worse).to_json()))) == Challenge(better, worse)
