"""Propensities by position (recsys.feedback.propensity), their estimate from swaps (recsys.feedback.swaps), and
the pieces of the position-bias experiment (bench.position_bias)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.position_bias_log import biased_log, click_rates, logged_positions, simulate_clicks
from recsys.data.contract import CLICKED, GROUP, ITEM, ITEM_ID, POSITION, QUERY
from recsys.errors import ContractError, UserError
from recsys.feedback.interleave import CascadeClicks, PositionBasedClicks
from recsys.feedback.propensity import from_click_model, ips_weights, power_law, read_propensities, write_propensities
from recsys.feedback.swaps import SWAP, assign_swaps, estimate_from_swaps, fit_power_law

# -- propensities of a click model ---------------------------------------------------------------------------


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0, 2.0])
def test_a_position_based_click_models_propensities_are_its_examination(eta: float) -> None:
    model = PositionBasedClicks(eta=eta)
    positions = np.array([3, 1, 10, 2])
    assert from_click_model(model, positions) == pytest.approx(1 / positions**eta)
    assert from_click_model(model, np.arange(1, 11)) == pytest.approx(model.examination(10))
    assert from_click_model(model, [1])[0] == 1.0  # the top is always examined
    assert power_law(eta, positions) == pytest.approx(from_click_model(model, positions))


def test_a_cascade_has_no_propensity_per_position() -> None:
    with pytest.raises(UserError, match="depends on the clicks above it"):
        from_click_model(CascadeClicks(), [1, 2, 3])


@pytest.mark.parametrize("positions", [[0, 1], [1.5], [-2]])
def test_positions_are_whole_numbers_from_1(positions: list) -> None:
    with pytest.raises(UserError, match="whole numbers from 1"):
        power_law(1.0, positions)


# -- inverse propensity weights ------------------------------------------------------------------------------


def test_a_clicks_weight_is_one_over_its_propensity_clipped() -> None:
    curve = power_law(1.0, range(1, 21))  # p(k) = 1/k
    positions = np.array([1, 2, 4, 10, 15, 20])
    assert ips_weights(positions, curve) == pytest.approx([1, 2, 4, 10, 10, 10])  # clip 10 by default
    assert ips_weights(positions, curve, clip=3.0) == pytest.approx([1, 2, 3, 3, 3, 3])
    assert ips_weights(positions, curve, clip=np.inf) == pytest.approx(positions)


def test_non_clicks_weigh_1_wherever_they_were_shown() -> None:
    curve = power_law(1.0, range(1, 6))
    weights = ips_weights([1, 2, 3, 4, 5], curve, clicked=[1, 0, 1, 0, 1])
    assert weights == pytest.approx([1, 1, 3, 1, 5])


def test_a_position_deeper_than_the_propensities_is_refused() -> None:
    with pytest.raises(UserError, match="position 7 is deeper than the propensities, which stop at position 5"):
        ips_weights([1, 7], power_law(1.0, range(1, 6)))


def test_the_clip_must_be_above_0() -> None:
    with pytest.raises(UserError, match="clip must be above 0"):
        ips_weights([1], [1.0], clip=0.0)


# -- swap interventions --------------------------------------------------------------------------------------


def ranked_log(lists: int, length: int, rng: np.random.Generator, items_per_rank: int = 30) -> pd.DataFrame:
    """Lists as a ranker shows them: positions 1..length, items of a rank drawn from that rank's own pool (so a key
    recurs), relevant less often the lower the ranker put them (so position and relevance go together)."""
    rank = np.tile(np.arange(1, length + 1), lists)
    return pd.DataFrame(
        {
            GROUP: np.repeat(np.arange(lists), length).astype(str),
            POSITION: rank,
            ITEM_ID: (rng.integers(0, items_per_rank, len(rank)) + 1000 * rank).astype(str),
            "relevance": rng.random(len(rank)) < 0.8 / np.sqrt(rank),
        }
    )


def clicked_as_shown(shown: pd.DataFrame, eta: float, rng: np.random.Generator) -> pd.DataFrame:
    """Clicks by the position-based model (p_click 0.9 relevant, 0.05 not), vectorised over every list at once."""
    model = PositionBasedClicks(eta=eta)
    seen = rng.random(len(shown)) < model.examination(int(shown[POSITION].max()))[shown[POSITION] - 1]
    chance = np.where(shown["relevance"], model.p_click_relevant, model.p_click_irrelevant)
    return shown.assign(**{CLICKED: (seen & (rng.random(len(shown)) < chance)).astype(int)})


@pytest.mark.parametrize("design", ["adjacent", "top"])
def test_swaps_exchange_one_pair_in_the_share_of_lists_asked(design: str) -> None:
    rng = np.random.default_rng(0)
    log = ranked_log(400, 8, rng)
    shown = assign_swaps(log, 0.25, rng, design, depth=5)
    markers = shown.groupby(GROUP)[SWAP].agg(["nunique", "first"])
    assert (markers["nunique"] == 1).all()  # one marker per list
    assert (markers["first"] > 0).sum() == 100
    moved = shown[POSITION] != log[POSITION]
    assert moved.groupby(shown[GROUP]).sum().isin([0, 2]).all()
    assert (moved.groupby(shown[GROUP]).sum() == 2).sum() == 100
    assert shown.groupby(GROUP)[POSITION].apply(lambda p: sorted(p) == list(range(1, 9))).all()
    swapped = shown[moved]
    k = swapped[SWAP]
    pair = {"adjacent": (k, k + 1), "top": (1, k)}[design]
    assert (swapped[POSITION].eq(pair[0]) | swapped[POSITION].eq(pair[1])).all()
    assert swapped[POSITION].max() <= 5  # within the depth
    assert set(k) == ({1, 2, 3, 4} if design == "adjacent" else {2, 3, 4, 5})  # every pair can be drawn


@pytest.mark.parametrize("design", ["adjacent", "top"])
@pytest.mark.parametrize("item", [None, ITEM_ID])
@pytest.mark.slow
def test_swaps_recover_a_known_propensity_curve(design: str, item: str | None) -> None:
    rng = np.random.default_rng(1)
    eta, depth = 1.0, 6
    log = ranked_log(24_000, depth, rng)
    shown = clicked_as_shown(assign_swaps(log, 0.3, rng, design), eta, rng)
    estimate = estimate_from_swaps(shown, item=item, design=design)

    truth = 1 / np.arange(1, depth + 1) ** eta
    assert estimate[POSITION].tolist() == list(range(1, depth + 1))
    assert estimate["propensity"].to_numpy() == pytest.approx(truth, abs=0.06)
    assert fit_power_law(estimate) == pytest.approx(eta, abs=0.1)
    # Relevance falls with the ranker's order: the click rates by position alone over-state the fall.
    naive = shown[shown[SWAP] == 0].groupby(POSITION)[CLICKED].mean()
    assert (naive / naive[1]).iloc[-1] < truth[-1] - 0.05
    counts = estimate.iloc[1:]
    assert (counts["swapped_lists"] > 0).all() and (counts["views_at_position"] > counts["clicks_at_position"]).all()
    assert (counts["strata"] > (30 if item else 1)).all()  # with a key, each item stands against itself


def test_the_curve_stops_where_no_list_was_swapped(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(2)
    log = ranked_log(3_000, 6, rng)
    shown = assign_swaps(log, 0.3, rng, "adjacent", depth=3)  # pairs (1, 2) and (2, 3)
    unswapped = shown[SWAP] == 1  # as if no list had swapped positions 1 and 2
    shown.loc[unswapped, SWAP], shown.loc[unswapped, POSITION] = 0, log.loc[unswapped, POSITION]
    estimate = estimate_from_swaps(clicked_as_shown(shown, 1.0, rng), item=None)
    assert estimate[POSITION].tolist() == [1]  # p(3) rests on p(2), which nothing measured
    assert "no clicks to compare positions 1 and 2 (0 swapped lists): the curve stops at position 1" in caplog.text


def test_without_swaps_there_is_nothing_to_fit() -> None:
    rng = np.random.default_rng(3)
    shown = clicked_as_shown(assign_swaps(ranked_log(100, 4, rng), 0.0, rng), 1.0, rng)
    estimate = estimate_from_swaps(shown, item=None)
    assert estimate[POSITION].tolist() == [1]
    with pytest.raises(UserError, match="swap more lists"):
        fit_power_law(estimate)


def test_a_swap_log_without_its_marker_is_refused_naming_the_column() -> None:
    rng = np.random.default_rng(4)
    shown = clicked_as_shown(assign_swaps(ranked_log(10, 4, rng), 0.5, rng), 1.0, rng)
    with pytest.raises(ContractError, match="missing column\\(s\\) swap") as error:
        estimate_from_swaps(shown.drop(columns=SWAP), item=None, source="swaps.csv")
    assert error.value.missing == (SWAP,) and error.value.source == "swaps.csv"


def test_a_list_whose_rows_disagree_on_its_swap_is_refused() -> None:
    rng = np.random.default_rng(5)
    shown = clicked_as_shown(assign_swaps(ranked_log(10, 4, rng), 0.0, rng), 1.0, rng)
    shown.loc[0, SWAP] = 1
    with pytest.raises(ContractError, match="disagree on its swap"):
        estimate_from_swaps(shown, item=None)


# -- propensity files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_a_written_curve_reads_back(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(6)
    shown = clicked_as_shown(assign_swaps(ranked_log(2_000, 4, rng), 0.5, rng, "top"), 1.0, rng)
    estimate = estimate_from_swaps(shown, item=None, design="top")
    path = tmp_path / f"propensities{suffix}"
    write_propensities(estimate, path)
    assert read_propensities(path) == pytest.approx(estimate["propensity"].to_numpy())


def test_a_json_object_of_position_to_propensity_reads(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"1": 1.0, "2": 0.6, "3": 0.4}))
    assert read_propensities(path) == pytest.approx([1.0, 0.6, 0.4])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("position,propensity\n1,0.8\n2,0.4\n", "p\\(1\\) must be 1, not 0.8; divide each by p\\(1\\)"),
        ("position,propensity\n1,1\n3,0.4\n", "positions must run 1, 2, 3"),
        ("position,propensity\n1,1\n2,0\n", "propensity at position\\(s\\) 2 is not a number above 0"),
        ("position,weight\n1,1\n", "missing column\\(s\\) propensity"),
    ],
)
def test_a_bad_propensity_file_is_refused_saying_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        read_propensities(path)


# -- the position-bias experiment's biased log ---------------------------------------------------------------


def labelled_log(groups: int, length: int, rng: np.random.Generator) -> pd.DataFrame:
    n = groups * length
    return pd.DataFrame(
        {
            GROUP: np.repeat([f"u{g}" for g in range(groups)], length),
            QUERY: "q",
            ITEM: [f"item {i}" for i in range(n)],
            CLICKED: (rng.random(n) < 0.5).astype(int),
        }
    )


def test_logged_positions_rank_each_group_by_score_with_ties_in_row_order() -> None:
    frame = pd.DataFrame({GROUP: ["a", "b", "a", "a", "b"]})
    assert logged_positions(frame, np.array([0.1, 5.0, 0.9, 0.1, 7.0])).tolist() == [2, 2, 1, 3, 1]


def test_the_simulated_log_follows_the_click_model() -> None:
    rng = np.random.default_rng(7)
    labelled = labelled_log(3_000, 8, rng)
    model = PositionBasedClicks(p_click_relevant=0.9, p_click_irrelevant=0.1, eta=1.0)
    scores = rng.random(len(labelled))
    log = biased_log(labelled, scores, model, rng)

    assert log.groupby(GROUP)[POSITION].apply(lambda p: sorted(p) == list(range(1, 9))).all()
    assert log[POSITION].tolist() == logged_positions(labelled, scores).tolist()
    assert log["relevance"].tolist() == labelled[CLICKED].tolist()  # the labels kept apart from the clicks
    rates = click_rates(log, model, positions=8)
    se = np.sqrt(rates["expected"] * (1 - rates["expected"]) / rates["rows"])
    assert (abs(rates["rate"] - rates["expected"]) < 4 * se).all()
    assert rates["expected"].is_monotonic_decreasing
    relevant_at_top = log[(log[POSITION] == 1) & (log["relevance"] == 1)][CLICKED].mean()
    assert relevant_at_top == pytest.approx(0.9, abs=0.03)
    irrelevant_at_4 = log[(log[POSITION] == 4) & (log["relevance"] == 0)][CLICKED].mean()
    assert irrelevant_at_4 == pytest.approx(0.1 / 4, abs=0.015)


def test_simulated_clicks_read_each_group_in_the_order_shown() -> None:
    # One group, shown in reverse row order; a user who looks at the top only (eta large) clicks its first row.
    frame = pd.DataFrame({GROUP: ["a"] * 4, POSITION: [4, 3, 2, 1]})
    model = PositionBasedClicks(p_click_relevant=1.0, p_click_irrelevant=1.0, eta=50.0)
    clicks = simulate_clicks(frame, np.ones(4), model, np.random.default_rng(0))
    assert clicks.tolist() == [0, 0, 0, 1]


def test_pooled_differences_average_each_groups_difference_over_the_seeds() -> None:
    from bench.position_bias import pooled_differences
    from bench.position_bias_report import PLAIN

    test = pd.DataFrame({GROUP: np.repeat(["a", "b", "c"], 4), CLICKED: np.tile([1, 0, 0, 1], 3)})
    labels = test[CLICKED].to_numpy().astype(float)
    ranks_all_right, ranks_all_wrong = labels, -labels
    scores = {
        42: {PLAIN: ranks_all_wrong, "ips": ranks_all_right},  # +1 AUC in every group
        43: {PLAIN: ranks_all_right, "ips": ranks_all_right},  # no difference
    }
    pooled = pooled_differences(test, scores)["ips"]
    assert pooled["seeds"] == [42, 43] and pooled["groups"] == 3
    assert pooled["auc"] == pytest.approx([0.5, 0.5, 0.5])  # mean, interval: every group's seed mean is 0.5
    assert PLAIN not in pooled_differences(test, scores)
