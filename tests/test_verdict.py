"""The plain-words verdict: which wording the paired interval picks, the best alternative, and its figures."""

from __future__ import annotations

import re

import pytest

from recsys.evaluation.evaluator import format_table
from recsys.evaluation.metrics import CALIBRATION_METRICS, RANKING_METRICS, Difference, Metrics
from recsys.evaluation.results import BaselineResult, Evaluation, TextAloneResult
from recsys.evaluation.verdict import (
    AUC_EXPLAINED,
    NDCG_EXPLAINED,
    best_alternative,
    curve_sentence,
    judge,
    label,
    percent,
    signed,
)

HELPS = "Fine-tuning helps here."
WORSE = "worse than the base model"
NO_DIFFERENCE = "No difference from the base model is demonstrated"
WORDINGS = (HELPS, WORSE, NO_DIFFERENCE)


def metrics(auc: float) -> Metrics:
    values = dict.fromkeys((*RANKING_METRICS, *CALIBRATION_METRICS), 0.5) | {"auc": auc}
    return Metrics(values, groups=203, rows=2030)


def differences(value: float, low: float, high: float) -> dict[str, Difference]:
    return dict.fromkeys(RANKING_METRICS, Difference(value, low, high))


def evaluation(
    base: tuple[float, float, float] | None = (0.01, -0.02, 0.04),
    text_alone: TextAloneResult | None = None,
    data_split: str | None = None,
) -> Evaluation:
    """A model at AUC 0.636 beside baselines led by popularity (0.590); random scores higher, and must not count."""
    baselines = {
        "random": BaselineResult(metrics(0.9), differences(-0.264, -0.3, -0.2)),
        "popularity": BaselineResult(metrics(0.590), differences(0.046, 0.019, 0.077)),
        "tfidf": BaselineResult(metrics(0.55), differences(0.086, 0.05, 0.12)),
    }
    if base is not None:
        baselines["zero_shot"] = BaselineResult(metrics(0.58), differences(*base))
    return Evaluation(metrics(0.636), baselines, data_file="test.csv", data_split=data_split, text_alone=text_alone)


@pytest.mark.parametrize(
    ("base", "wording"),
    [
        ((0.021, 0.004, 0.039), HELPS),
        ((-0.03, -0.05, -0.011), WORSE),
        ((0.01, -0.02, 0.04), NO_DIFFERENCE),
        ((0.02, 0.0004, 0.04), NO_DIFFERENCE),  # the low end shows as +0.0: "helps" would contradict it
        ((-0.02, -0.04, -0.0004), NO_DIFFERENCE),  # the high end shows as +0.0
        ((0.02, 0.0005, 0.04), HELPS),  # shows as +0.1, as the table shows +0.001
    ],
)
def test_the_interval_against_the_base_model_picks_the_wording(base: tuple[float, float, float], wording: str) -> None:
    text = judge(evaluation(base))
    assert [w for w in WORDINGS if w in text] == [wording]
    figures = f"{signed(base[0])} points ({signed(base[1])} to {signed(base[2])})"
    assert f"Against the base model before fine-tuning: {figures}." in text


def test_the_headline_names_the_best_alternative_by_auc_and_the_log() -> None:
    text = judge(
        evaluation((0.021, 0.004, 0.039)),
        log_name="MovieLens",
        pair="a liked movie above a disliked one",
    )
    assert text == (
        "On 203 held-out MovieLens lists, ClickTune puts a liked movie above a disliked one 63.6% of the time; "
        "the best alternative (popularity) 59.0%: +4.6 points, 95% interval +1.9 to +7.7. "
        "Against the base model before fine-tuning: +2.1 points (+0.4 to +3.9). Fine-tuning helps here."
    )
    assert "random" not in text  # it scores highest here, but nobody would rank in random order instead


def test_best_alternative_is_the_highest_auc_except_random() -> None:
    result = evaluation()
    assert best_alternative(result) == "popularity"
    result.baselines["tfidf"] = BaselineResult(metrics(0.61), differences(0.026, 0.0, 0.05))
    assert best_alternative(result) == "tfidf"
    assert "the best alternative (TF-IDF keyword match) 61.0%: +2.6 points" in judge(result)
    assert best_alternative(Evaluation(metrics(0.6), {"random": result.baselines["random"]})) is None


def test_when_the_base_model_is_the_best_alternative_its_figures_are_not_repeated() -> None:
    result = evaluation((0.021, 0.004, 0.039))
    result.baselines["zero_shot"] = BaselineResult(metrics(0.615), differences(0.021, 0.004, 0.039))
    text = judge(result)
    assert "the best alternative (the base model before fine-tuning) 61.5%: +2.1 points" in text
    assert "Against the base model" not in text and text.endswith(HELPS)


def test_points_are_signed_with_a_minus_sign_and_rounded_as_the_table_rounds() -> None:
    assert signed(0.046) == "+4.6" and signed(-0.0204) == "−2.0" and percent(0.6364) == "63.6%"
    assert signed(-0.0004) == "+0.0"  # no "−0.0"
    # 0.0465 is stored a hair below itself: the table shows 0.046, so the words say 4.6, not 4.7.
    result = evaluation()
    result.baselines["popularity"] = BaselineResult(metrics(0.590), differences(0.0465, 0.0015, 0.0785))
    table, text = format_table(result), judge(result)
    table_cell = re.search(r"\| popularity \| ([^|]+) \|", table.split("minus each baseline")[1]).group(1)
    value, low, high = (float(n) * 100 for n in re.findall(r"[+-]\d\.\d{3}", table_cell))
    assert f"{value:+.1f} points, 95% interval {low:+.1f} to {high:+.1f}".replace("-", "−") in text
    assert "+4.6 points" in text


def test_without_a_base_model_it_is_judged_against_the_best_alternative() -> None:
    text = judge(evaluation(base=None))
    assert not [w for w in WORDINGS if w in text]
    assert "No base model was evaluated, so it is judged against the best alternative: " in text
    assert text.endswith("it does better than popularity here.")  # popularity's interval: +1.9 to +7.7


def test_a_base_model_is_not_its_own_alternative() -> None:
    result = evaluation(base=(0.0, 0.0, 0.0))
    result.baselines["zero_shot"] = BaselineResult(metrics(0.636), differences(0.0, 0.0, 0.0))
    text = judge(result, fine_tuned=False)
    assert "the best alternative (popularity)" in text and "This is the base model, not fine-tuned" in text
    assert not [w for w in WORDINGS if w in text]


def test_no_alternative_gives_no_verdict() -> None:
    text = judge(Evaluation(metrics(0.636), {"random": BaselineResult(metrics(0.5), differences(0.1, 0.05, 0.15))}))
    assert "No alternative was evaluated" in text and "best alternative" not in text
    assert not [w for w in WORDINGS if w in text]


def test_the_text_alone_and_the_priors_share_of_the_gain_only_where_there_is_a_text_alone_result() -> None:
    assert "text match alone" not in judge(evaluation())
    text_alone = TextAloneResult(
        metrics(0.627),
        {"zero_shot": differences(0.002, -0.02, 0.024), "popularity": differences(0.037, 0.01, 0.06)},
        differences(0.009, -0.003, 0.021),
    )
    text = judge(evaluation(text_alone=text_alone))
    assert text.endswith(
        "The text match alone: +0.2 points against the base model (−2.0 to +2.4); "
        "the items' popularity in the training log adds +0.9 points (−0.3 to +2.1)."
    )
    # Without a base model, the text alone is set against the same reference as the verdict.
    text = judge(evaluation(base=None, text_alone=text_alone))
    assert "The text match alone: +3.7 points against popularity (+1.0 to +6.0)" in text


def test_an_evaluation_on_the_selection_set_is_not_called_held_out() -> None:
    assert judge(evaluation(data_split="validation")).startswith("On 203 validation lists, ")
    assert judge(evaluation(), lists="users").startswith("On 203 held-out users, ")


def test_the_metric_explanations_are_one_plain_line_each() -> None:
    for explanation, name in ((AUC_EXPLAINED, "AUC"), (NDCG_EXPLAINED, "nDCG@10")):
        assert explanation.startswith(f"{name}: ") and "\n" not in explanation


@pytest.mark.parametrize(
    ("base", "text_against_base", "expected"),
    [
        ((0.021, 0.004, 0.039), None, "Fine-tuning helps"),
        ((0.021, 0.004, 0.039), (0.015, 0.002, 0.03), "Fine-tuning helps"),
        ((0.021, 0.004, 0.039), (0.002, -0.02, 0.024), "Better than the base model, through item popularity"),
        ((0.01, -0.02, 0.04), None, "No demonstrated difference from the base model"),
        ((-0.03, -0.05, -0.011), None, "Worse than the base model"),
        (None, None, "Better than popularity"),  # no base model: its interval against the best alternative
    ],
)
def test_the_label_leads_with_the_verdict_and_says_when_only_popularity_lifts_the_model(
    base: tuple[float, float, float] | None, text_against_base: tuple[float, float, float] | None, expected: str
) -> None:
    text_alone = None
    if text_against_base is not None:
        text_alone = TextAloneResult(
            metrics(0.62), {"zero_shot": differences(*text_against_base)}, differences(0, 0, 0)
        )
    result = evaluation(base=base, text_alone=text_alone)
    assert label(result) == expected
    if expected.endswith("through item popularity"):  # the sentences say so too, not "fine-tuning helps"
        assert HELPS not in judge(result) and "the text match alone shows no demonstrated gain" in judge(result)


def curve_point(seed: int, fraction: float, clicks: int, tuned: float, base: float, popularity: float) -> dict:
    auc = {"fine_tuned": tuned, "zero_shot": base, "popularity": popularity}
    return {"seed": seed, "fraction": fraction, "clicks": clicks, "users": clicks // 10, "auc": auc}


def test_the_curve_sentence_names_the_size_from_which_every_seed_is_ahead_and_stays_ahead() -> None:
    points = [
        curve_point(0, 0.1, 100, 0.58, 0.60, 0.50),  # behind the base model, ahead of popularity
        curve_point(1, 0.1, 120, 0.62, 0.60, 0.49),
        curve_point(0, 0.5, 500, 0.61, 0.60, 0.55),  # ahead of both in every seed
        curve_point(1, 0.5, 520, 0.63, 0.60, 0.56),
        curve_point(0, 1.0, 1000, 0.65, 0.60, 0.57),
        curve_point(1, 1.0, 1000, 0.66, 0.60, 0.58),
    ]
    assert curve_sentence(points, "News") == (
        "On News' held-out users (2 seeds), the fine-tuned model beats the base model before fine-tuning in every "
        "seed from 510 training clicks (51 users) on, and beats popularity in every seed from 110 training clicks "
        "(11 users) on."
    )
    assert curve_sentence(points, "MovieLens").startswith("On MovieLens' held-out users (2 seeds), ")
    assert curve_sentence(points, "Bing").startswith("On Bing's held-out users (2 seeds), ")
    points[-1]["auc"]["zero_shot"] = 0.7  # behind at the largest size: it does not stay ahead
    assert "does not beat the base model before fine-tuning in every seed at any size tried (up to 1,000 training" in (
        curve_sentence(points, "News")
    )
    assert curve_sentence([], "News") == "No learning curve of News was measured."
