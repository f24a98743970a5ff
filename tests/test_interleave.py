"""recsys.feedback.interleave: team-draft lists, click credit, the sign test and the click models."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from recsys.errors import UserError
from recsys.feedback.interleave import (
    CHALLENGER,
    CHAMPION,
    NONE,
    SHARED,
    TIE,
    CascadeClicks,
    Comparison,
    PositionBasedClicks,
    Shown,
    credit,
    critical_counts,
    sessions_to_decision,
    sign_test,
    team_draft,
    winner_of,
)

DRAWS = 4000


# -- team draft ------------------------------------------------------------------------------------------


def test_each_team_picks_its_best_unshown_item_and_nothing_repeats() -> None:
    rng = np.random.default_rng(0)
    champion = list("abcdefgh")
    challenger = list("hgfedcba")
    for _ in range(200):
        shown = team_draft(champion, challenger, rng)
        items = [entry.item for entry in shown]
        assert sorted(items) == sorted(champion)  # every item once
        assert [entry.position for entry in shown] == list(range(1, len(champion) + 1))
        for entry in shown:
            ranking = champion if entry.team == CHAMPION else challenger
            before = set(items[: entry.position - 1])
            assert entry.item == next(item for item in ranking if item not in before)
        picks = [entry.team for entry in shown]
        assert abs(picks.count(CHAMPION) - picks.count(CHALLENGER)) <= 1
        for start in range(0, len(shown), 2):  # each round of two picks is one pick per team
            assert {entry.team for entry in shown[start : start + 2]} == {CHAMPION, CHALLENGER}


def test_each_team_contributes_equally_in_expectation_and_at_the_top() -> None:
    rng = np.random.default_rng(1)
    champion = list(range(9))  # odd: the last pick goes to the team that won the last coin flip
    challenger = [8, 3, 5, 0, 7, 1, 2, 6, 4]
    top, total = 0, 0
    for _ in range(DRAWS):
        shown = team_draft(champion, challenger, rng)
        top += shown[0].team == CHAMPION
        total += sum(entry.team == CHAMPION for entry in shown)
    tolerance = 4 * np.sqrt(0.25 / DRAWS)  # four standard errors of a fair coin's share
    assert top / DRAWS == pytest.approx(0.5, abs=tolerance)
    assert total / (DRAWS * len(champion)) == pytest.approx(0.5, abs=tolerance)


def test_the_union_of_different_item_sets_is_shown_once_each() -> None:
    rng = np.random.default_rng(2)
    champion, challenger = ["a", "b", "c"], ["d", "b", "e", "f", "g"]
    for _ in range(50):
        shown = team_draft(champion, challenger, rng)
        assert sorted(entry.item for entry in shown) == list("abcdefg")
    assert [entry.position for entry in team_draft(champion, challenger, rng, k=3)] == [1, 2, 3]
    assert team_draft(champion, challenger, rng, k=0) == []
    assert team_draft([], [], rng) == []


def test_a_common_prefix_is_shown_first_and_credited_to_neither_team() -> None:
    shown = team_draft(["a", "b", "c", "d"], ["a", "b", "d", "c"], np.random.default_rng(3))
    assert [(entry.item, entry.team) for entry in shown[:2]] == [("a", SHARED), ("b", SHARED)]
    assert {entry.team for entry in shown[2:]} == {CHAMPION, CHALLENGER}


def test_identical_rankings_always_tie_under_any_clicks() -> None:
    ranking = list("abcdef")
    clicks = [c for n in range(len(ranking) + 1) for c in itertools.combinations(range(1, len(ranking) + 1), n)]
    for seed in range(20):
        shown = team_draft(ranking, ranking, np.random.default_rng(seed))
        assert {credit(shown, clicked) for clicked in clicks} == {TIE}
    # The 2008 algorithm as published splits the same items between the teams: a click on one decides the list.
    published = team_draft(ranking, ranking, np.random.default_rng(0), shared_prefix=False)
    assert {credit(published, clicked) for clicked in clicks} == {CHAMPION, CHALLENGER, TIE}


def test_a_ranking_that_lists_an_item_twice_is_refused() -> None:
    with pytest.raises(UserError, match="challenger's ranking lists an item twice"):
        team_draft(["a", "b"], ["a", "a"], np.random.default_rng(0))
    with pytest.raises(UserError, match="k must be at least 0"):
        team_draft(["a"], ["a"], np.random.default_rng(0), k=-1)


# -- credit ----------------------------------------------------------------------------------------------

LIST = [
    Shown("x", SHARED, 1),
    Shown("a", CHAMPION, 2),
    Shown("b", CHALLENGER, 3),
    Shown("c", CHALLENGER, 4),
    Shown("d", CHAMPION, 5),
]


@pytest.mark.parametrize(
    ("clicked", "outcome"),
    [
        ([3, 4], CHALLENGER),
        ([2], CHAMPION),
        ([2, 3], TIE),
        ([], TIE),
        ([1], TIE),  # the shared item is no team's
        ([1, 2, 4, 5], CHAMPION),
    ],
)
def test_credit_goes_to_the_team_with_more_clicked_items(clicked: list[int], outcome: str) -> None:
    assert credit(LIST, clicked) == outcome


def test_a_click_outside_the_list_is_refused() -> None:
    with pytest.raises(UserError, match="clicked position 6 is not in the list of 5 items"):
        credit(LIST, [6])
    with pytest.raises(UserError, match="clicked position 0"):
        credit(LIST, [0])


# -- the sign test ---------------------------------------------------------------------------------------


def test_the_sign_test_matches_known_values() -> None:
    assert sign_test(41, 19) == pytest.approx(0.0062176, abs=1e-7)  # scipy.stats.binomtest(41, 60).pvalue
    assert sign_test(19, 41) == sign_test(41, 19)
    assert sign_test(10, 0) == 2 / 2**10
    assert sign_test(5, 5) == 1.0
    assert sign_test(0, 0) == 1.0
    assert winner_of(0, 0) == NONE


def test_the_critical_counts_match_the_published_table_and_the_test() -> None:
    # Two-sided sign test at 0.05: the largest count of the rarer sign that rejects, for 6 to 25 pairs.
    table = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 7]
    counts = critical_counts(200)
    assert counts[:6] == [-1] * 6
    assert counts[6:26] == table
    for decided in range(201):
        rejected = [m for m in range(decided // 2 + 1) if sign_test(m, decided - m) <= 0.05]
        assert counts[decided] == max(rejected, default=-1)


def test_the_comparison_says_who_won_in_plain_words() -> None:
    comparison = Comparison(wins=41, losses=19, ties=5)
    assert comparison.winner == CHALLENGER
    assert comparison.sentence().startswith("the challenger won 41 of 60 decided lists (19 lost, 5 ties), p = 0.006")
    assert comparison.sentence().endswith("the challenger is better at alpha 0.05")
    assert Comparison(wins=19, losses=41, ties=0).winner == CHAMPION
    nothing = Comparison.of([TIE, TIE, TIE])
    assert (nothing.wins, nothing.losses, nothing.ties, nothing.p_value, nothing.winner) == (0, 0, 3, 1.0, NONE)
    assert nothing.sentence().endswith("p = 1.000: no winner at alpha 0.05")
    assert "p < 0.001" in Comparison(wins=30, losses=0, ties=0).sentence()


def test_sessions_to_decision_is_where_the_final_winner_was_reached_for_good() -> None:
    assert sessions_to_decision([CHALLENGER] * 6) == 6  # 6 of 6: p = 0.031; 5 of 5 is p = 0.0625
    assert sessions_to_decision([CHALLENGER] * 5 + [TIE] * 3) is None
    # Decided at 6, lost at 7, decided again from 9 on.
    assert sessions_to_decision([CHALLENGER] * 6 + [CHAMPION] + [CHALLENGER] * 3) == 9
    generator = random.Random(0)
    for _ in range(100):
        outcomes = generator.choices([CHALLENGER, CHAMPION, TIE], weights=[5, 2, 3], k=40)
        final = Comparison.of(outcomes).winner
        held = [Comparison.of(outcomes[:n]).winner == final for n in range(1, 41)]
        expected = None if final == NONE else next(n for n in range(1, 41) if all(held[n - 1 :]))
        assert sessions_to_decision(outcomes) == expected


# -- click models ----------------------------------------------------------------------------------------


def click_rates(model, relevance: np.ndarray, draws: int = DRAWS, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.mean([model.simulate(relevance, rng) for _ in range(draws)], axis=0)


def test_cascade_never_clicks_below_where_it_stopped() -> None:
    rng = np.random.default_rng(0)
    relevance = rng.random(10) < 0.5
    sure_stop = CascadeClicks(p_click_relevant=0.9, p_click_irrelevant=0.3, p_stop=1.0)
    for _ in range(500):
        assert sure_stop.simulate(relevance, rng).sum() <= 1
    every_relevant = np.ones(10, dtype=bool)
    first_only = CascadeClicks(p_click_relevant=1.0, p_stop=1.0).simulate(every_relevant, rng)
    assert first_only.tolist() == [True] + [False] * 9
    # Clicking every item, leaving after each click with probability 0.5: the clicks are the first n, n geometric.
    half = CascadeClicks(p_click_relevant=1.0, p_stop=0.5)
    clicks = np.array([half.simulate(every_relevant, rng) for _ in range(DRAWS)])
    counts = clicks.sum(axis=1)
    assert all(row[:n].all() and not row[n:].any() for row, n in zip(clicks, counts, strict=True))
    assert np.mean(counts == 1) == pytest.approx(0.5, abs=0.04)
    assert np.mean(counts == 2) == pytest.approx(0.25, abs=0.04)


def test_the_click_probabilities_of_relevant_and_irrelevant_items() -> None:
    relevance = np.array([True, False] * 4)
    for model in (CascadeClicks(p_stop=0.0), PositionBasedClicks(eta=0.0)):  # every item is looked at
        rates = click_rates(model, relevance)
        assert rates[relevance] == pytest.approx([0.9] * 4, abs=0.03)
        assert rates[~relevance] == pytest.approx([0.05] * 4, abs=0.02)


@pytest.mark.parametrize("eta", [0.5, 1.0, 2.0])
def test_position_based_clicks_fall_as_one_over_rank_to_the_eta(eta: float) -> None:
    model = PositionBasedClicks(p_click_relevant=1.0, eta=eta)
    rates = click_rates(model, np.ones(8, dtype=bool))
    expected = 1 / np.arange(1, 9) ** eta
    assert rates == pytest.approx(expected, abs=4 * np.sqrt(0.25 / DRAWS))


def test_the_click_models_are_seeded_state_their_parameters_and_refuse_bad_ones() -> None:
    relevance = np.array([True, False, True, False, True])
    for model in (CascadeClicks(), PositionBasedClicks()):
        first = [model.simulate(relevance, rng).tolist() for rng in [np.random.default_rng(7)] * 5]
        again = [model.simulate(relevance, rng).tolist() for rng in [np.random.default_rng(7)] * 5]
        assert first == again
        assert model.parameters()["name"] == model.name
        assert "0.9" in model.describe() and "0.05" in model.describe()
    assert "0.5" in CascadeClicks().describe()
    assert "1/r^1" in PositionBasedClicks().describe()
    assert PositionBasedClicks(eta=2).parameters() == {
        "name": "position",
        "p_click_relevant": 0.9,
        "p_click_irrelevant": 0.05,
        "eta": 2,
    }
    with pytest.raises(UserError, match="p_click_relevant must be a probability"):
        CascadeClicks(p_click_relevant=1.5)
    with pytest.raises(UserError, match="p_stop must be a probability"):
        CascadeClicks(p_stop=float("nan"))
    with pytest.raises(UserError, match="eta must be 0 or more"):
        PositionBasedClicks(eta=-1)
