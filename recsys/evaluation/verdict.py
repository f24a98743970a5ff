"""An evaluation in plain words: how often the model puts a clicked item above an unclicked one, beside
the best alternative, whether fine-tuning helped, and where the gain comes from.

The verdict rests on the paired bootstrap 95% interval of the model's group AUC minus the base
model's (the ``zero_shot`` baseline), or minus the best alternative's where no base model was
evaluated: an interval above zero says the model does better, one below zero that it does worse,
and one that holds zero that no difference is shown. Every figure is rounded as
``recsys.evaluation.evaluator.format_table`` rounds it (three decimals of a fraction: one of a percentage
point), and the verdict is read from the rounded interval, so the words never contradict the
numbers beside them.
"""

from __future__ import annotations

from typing import Literal

from recsys.evaluation.metrics import Difference
from recsys.evaluation.results import Evaluation

AUC_EXPLAINED = (
    "AUC: the chance that the model ranks a clicked item above an unclicked one from the same list, "
    "averaged over lists (0.5 is a coin toss, 1 is every time)."
)
NDCG_EXPLAINED = (
    "nDCG@10: how near the top of the first ten places the clicked items are, averaged over lists "
    "(1 when the clicked items fill the top places)."
)

BASE_MODEL = "zero_shot"  # the baseline that is the model before fine-tuning
NOT_ALTERNATIVES = ("random",)  # nobody would rank in random order instead
BASELINE_NAMES = {
    "random": "random order",
    "popularity": "popularity",
    "tfidf": "TF-IDF keyword match",
    "bm25": "BM25 keyword match",
    BASE_MODEL: "the base model before fine-tuning",
}

PRIORS = "the items' popularity in the training log"  # what a model's item priors are, in plain words

Outcome = Literal["better", "worse", "no difference"]


def points(fraction: float) -> float:
    """A fraction in percentage points, rounded as the evaluation table rounds the fraction (three decimals)."""
    return float(f"{fraction:.3f}") * 100 + 0.0  # + 0.0 turns a rounded -0.0 into 0.0


def signed(fraction: float) -> str:
    """A difference in percentage points with its sign: ``+4.6``, ``−2.0``, ``+0.0``."""
    return f"{points(fraction):+.1f}".replace("-", "−")


def percent(fraction: float) -> str:
    return f"{points(fraction):.1f}%"


def interval(difference: Difference) -> str:
    return f"{signed(difference.low)} to {signed(difference.high)}"


def outcome(difference: Difference) -> Outcome:
    """``better`` where the rounded 95% interval lies above zero, ``worse`` below it, else ``no difference``."""
    if points(difference.low) > 0:
        return "better"
    if points(difference.high) < 0:
        return "worse"
    return "no difference"


def best_alternative(evaluation: Evaluation, exclude: tuple[str, ...] = NOT_ALTERNATIVES) -> str | None:
    """The baseline with the highest group AUC, leaving out ``exclude``; None where there is none."""
    names = [name for name in evaluation.baselines if name not in exclude]
    return max(names, key=lambda name: evaluation.baselines[name].metrics.values["auc"], default=None)


def judge(
    evaluation: Evaluation,
    *,
    log_name: str = "",
    lists: str = "lists",
    pair: str = "a clicked item above an unclicked one",
    model_name: str = "ClickTune",
    fine_tuned: bool = True,
) -> str:
    """The evaluation in a few plain Markdown sentences (the module docstring says how the verdict is read).

    ``log_name`` names the click log ("MovieLens"), ``lists`` what its groups are (plural), ``pair``
    what a correctly ordered pair is ("a liked movie above a disliked one"). A model that is not
    ``fine_tuned`` is its own base model, so it is judged against the best alternative instead.
    """
    exclude = NOT_ALTERNATIVES if fine_tuned else (*NOT_ALTERNATIVES, BASE_MODEL)
    alternative = best_alternative(evaluation, exclude)
    reference = BASE_MODEL if fine_tuned and BASE_MODEL in evaluation.baselines else alternative
    sentences = [_headline(evaluation, alternative, log_name, lists, pair, model_name)]
    if reference is None:
        sentences.append("No alternative was evaluated beside it, so nothing here says whether it does better.")
    elif _auc_difference(evaluation, reference) is None:
        sentences.append("This evaluation was saved without its paired intervals, so no verdict is given.")
    else:
        sentences.append(_judgement(evaluation, reference, alternative, fine_tuned))
    if evaluation.text_alone is not None and "auc" in evaluation.text_alone.model_minus_text_alone:
        sentences.append(_gain_source(evaluation, reference))
    return " ".join(sentences)


def label(evaluation: Evaluation, fine_tuned: bool = True) -> str:
    """The verdict in a few words, to lead with: "Fine-tuning helps", "No demonstrated difference from the base
    model", "Worse than the base model", or against the best alternative where no base model was evaluated; "Better
    than the base model, through item popularity" where only the model's item priors lift it above the base."""
    exclude = NOT_ALTERNATIVES if fine_tuned else (*NOT_ALTERNATIVES, BASE_MODEL)
    alternative = best_alternative(evaluation, exclude)
    reference = BASE_MODEL if fine_tuned and BASE_MODEL in evaluation.baselines else alternative
    difference = _auc_difference(evaluation, reference) if reference else None
    if difference is None:
        return "No verdict"
    verdict = outcome(difference)
    if reference != BASE_MODEL:
        return {"better": "Better than", "worse": "Worse than", "no difference": "No demonstrated difference from"}[
            verdict
        ] + f" {_name(reference)}"
    if verdict == "better" and not _text_alone_helps(evaluation):
        return "Better than the base model, through item popularity"
    return {
        "better": "Fine-tuning helps",
        "worse": "Worse than the base model",
        "no difference": "No demonstrated difference from the base model",
    }[verdict]


def _text_alone_helps(evaluation: Evaluation) -> bool:
    """Whether the text alone beats the base model, where the evaluation says; True where it does not say."""
    if evaluation.text_alone is None:
        return True
    text = evaluation.text_alone.text_minus_baseline.get(BASE_MODEL, {}).get("auc")
    return text is None or outcome(text) == "better"


def _name(baseline: str) -> str:
    return BASELINE_NAMES.get(baseline, baseline)


def _auc_difference(evaluation: Evaluation, baseline: str) -> Difference | None:
    """The model's group AUC minus ``baseline``'s, with its interval; None in a JSON saved without it."""
    return evaluation.baselines[baseline].model_minus_baseline.get("auc")


def _headline(
    evaluation: Evaluation, alternative: str | None, log_name: str, lists: str, pair: str, model_name: str
) -> str:
    split = "validation" if evaluation.data_split == "validation" else "held-out"
    where = " ".join(word for word in (str(evaluation.model.groups), split, log_name, lists) if word)
    text = f"On {where}, {model_name} puts {pair} {percent(evaluation.model.values['auc'])} of the time"
    if alternative is None:
        return text + "."
    alternative_auc = evaluation.baselines[alternative].metrics.values["auc"]
    text += f"; the best alternative ({_name(alternative)}) {percent(alternative_auc)}"
    difference = _auc_difference(evaluation, alternative)
    if difference is None:
        return text + "."
    return f"{text}: {signed(difference.value)} points, 95% interval {interval(difference)}."


def _judgement(evaluation: Evaluation, reference: str, alternative: str | None, fine_tuned: bool) -> str:
    difference = _auc_difference(evaluation, reference)
    verdict = outcome(difference)
    if reference == BASE_MODEL:
        helps = (
            "Fine-tuning helps here."
            if _text_alone_helps(evaluation)
            else (f"It beats the base model here through {PRIORS}: the text match alone shows no demonstrated gain.")
        )
        words = {
            "better": helps,
            "worse": "Fine-tuning made it worse than the base model here.",
            "no difference": "No difference from the base model is demonstrated here: the interval holds zero.",
        }[verdict]
        if reference == alternative:  # its figures are in the headline already
            return words
        figures = f"{signed(difference.value)} points ({interval(difference)})"
        return f"Against the base model before fine-tuning: {figures}. {words}"
    why = "No base model was evaluated" if fine_tuned else "This is the base model, not fine-tuned"
    name = _name(reference)
    words = {
        "better": f"it does better than {name} here.",
        "worse": f"it does worse than {name} here.",
        "no difference": f"no difference from {name} is demonstrated here: the interval holds zero.",
    }[verdict]
    return f"{why}, so it is judged against the best alternative: {words}"


def _gain_source(evaluation: Evaluation, reference: str | None) -> str:
    """Where the gain comes from: the text match alone against ``reference``, and what the item priors add."""
    text_alone = evaluation.text_alone
    priors = text_alone.model_minus_text_alone["auc"]
    added = f"{signed(priors.value)} points ({interval(priors)})"
    text = text_alone.text_minus_baseline.get(reference, {}).get("auc") if reference else None
    if text is None:
        return f"{PRIORS.capitalize()} adds {added} to the text match alone."
    against = "the base model" if reference == BASE_MODEL else _name(reference)
    return (
        f"The text match alone: {signed(text.value)} points against {against} ({interval(text)}); "
        f"{PRIORS} adds {added}."
    )


def curve_sentence(points: list[dict], log_name: str) -> str:
    """What a learning curve (``bench.curve``) says in one sentence: from how many training clicks the fine-tuned
    model beats the base model and popularity on held-out users in every seed, at that size and every larger one.

    ``points`` are one log's: each with ``seed``, ``clicks``, ``users`` and ``auc`` (``fine_tuned``, ``zero_shot``,
    ``popularity``).
    """
    sizes: dict[float, list[dict]] = {}
    for point in points:
        sizes.setdefault(point["fraction"], []).append(point)
    ordered = [sizes[fraction] for fraction in sorted(sizes)]
    if not ordered:
        return f"No learning curve of {log_name} was measured."
    largest = ordered[-1]
    most = f"{round(sum(p['clicks'] for p in largest) / len(largest)):,}"
    seeds = len({point["seed"] for point in points})
    verdicts = []
    for baseline in (BASE_MODEL, "popularity"):
        ahead = [all(p["auc"]["fine_tuned"] > p["auc"][baseline] for p in size) for size in ordered]
        start = len(ahead)
        while start > 0 and ahead[start - 1]:
            start -= 1
        name = _name(baseline)
        if start == len(ahead):
            verdicts.append(f"does not beat {name} in every seed at any size tried (up to {most} training clicks)")
        else:
            size = ordered[start]
            clicks = f"{round(sum(p['clicks'] for p in size) / len(size)):,}"
            users = round(sum(p["users"] for p in size) / len(size))
            verdicts.append(f"beats {name} in every seed from {clicks} training clicks ({users} users) on")
    owner = f"{log_name}'" if log_name.endswith("s") else f"{log_name}'s"
    return (
        f"On {owner} held-out users ({seeds} seed{'s' * (seeds > 1)}), the fine-tuned model {verdicts[0]}, and "
        f"{verdicts[1]}."
    )
