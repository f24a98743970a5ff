"""Promotion only on a clear win: the challenger compared with the champion, the decision, and its record.

A challenger is promoted (:func:`decide`) only when its paired bootstrap interval of group AUC against the champion
(``recsys.evaluation.metrics.paired_difference``) is clear of zero on a held-out click log, and not wholly below zero on
the most recent feedback lists where at least :data:`MIN_FEEDBACK_GROUPS` of them are ranked. :func:`settle` decides,
then promotes the challenger or keeps the champion, and logs the reason in the served folder's history
(``recsys.loop.versions``) either way.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.data.contract import CLICKED, GROUP, read_clicks, require_ranked_groups
from recsys.evaluation.baselines import Scored
from recsys.evaluation.evaluator import compare, score_model
from recsys.evaluation.metrics import Difference
from recsys.loop.versions import KEPT, PROMOTED, Event, History, Version, served_version, utc_now
from recsys.scoring.loading import load_scorer

logger = logging.getLogger(__name__)

MIN_FEEDBACK_GROUPS = 20  # ranked feedback lists below which their interval is too wide to hold a challenger back


@dataclass(frozen=True)
class HeadToHead:
    """The challenger against the champion on one click log: each one's group AUC and the challenger's paired
    advantage (challenger minus champion, with its paired bootstrap 95% interval over the groups)."""

    data: str  # what they were compared on, in words: a file name, or "the 200 most recent feedback lists"
    groups: int  # groups with a click and a non-click: those the AUC averages over
    champion_auc: float
    challenger_auc: float
    difference: Difference

    def describe(self) -> str:
        d = self.difference
        return (
            f"on {self.data} ({self.groups} ranked groups) the challenger's group AUC is {self.challenger_auc:.3f} "
            f"against the champion's {self.champion_auc:.3f}, {d.value:+.3f} (95% interval {d.low:+.3f} to "
            f"{d.high:+.3f})"
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "difference": list(self.difference)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HeadToHead:
        return cls(**{**data, "difference": Difference(*data["difference"])})


@dataclass(frozen=True)
class Challenge:
    """What the decision reads: the held-out log's head-to-head, and the recent feedback lists' where there were any
    ranked ones (None: no feedback list held out had a click and a non-click)."""

    held_out: HeadToHead
    feedback: HeadToHead | None = None

    def to_json(self) -> dict[str, Any]:
        return {"held_out": self.held_out.to_json(), "feedback": self.feedback and self.feedback.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Challenge:
        feedback = data.get("feedback")
        return cls(HeadToHead.from_json(data["held_out"]), HeadToHead.from_json(feedback) if feedback else None)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str  # one sentence, with the numbers


def decide(challenge: Challenge, min_feedback_groups: int = MIN_FEEDBACK_GROUPS) -> Decision:
    """Promote only where the challenger's group-AUC interval against the champion is clear of zero on the held-out
    log, and not wholly below zero on the recent feedback lists where at least ``min_feedback_groups`` are ranked."""
    held_out, feedback = challenge.held_out, challenge.feedback
    if not held_out.difference.low > 0:  # written so, a NaN interval keeps the champion too
        return Decision(False, f"Kept the champion: {held_out.describe()}, which does not clear zero.")
    if feedback is None:
        check = "no recent feedback list held out was ranked, so none could hold it back"
    elif feedback.groups < min_feedback_groups:
        check = f"{feedback.describe()}, too few ranked lists (under {min_feedback_groups}) to count"
    elif feedback.difference.high < 0:
        return Decision(
            False, f"Kept the champion: {held_out.describe()}, but {feedback.describe()}, wholly below zero."
        )
    else:
        check = f"{feedback.describe()}, not below zero"
    return Decision(True, f"Promoted the challenger: {held_out.describe()}, clear of zero; {check}.")


def head_to_head(frame: pd.DataFrame, champion: Scored, challenger: Scored, data: str) -> HeadToHead:
    """Both models' scores (and probabilities) on a validated click log with ranked groups, compared as
    ``recsys.evaluation.evaluator`` compares a model with a baseline: the champion is the baseline."""
    evaluation = compare(frame, challenger, {"champion": champion}, data_file=data)
    against = evaluation.baselines["champion"]
    return HeadToHead(
        data,
        evaluation.model.groups,
        against.metrics.values["auc"],
        evaluation.model.values["auc"],
        against.model_minus_baseline["auc"],
    )


def ranked_groups(frame: pd.DataFrame) -> int:
    """How many groups hold both a click and a non-click."""
    return int(frame.groupby(GROUP, sort=False)[CLICKED].nunique().gt(1).sum()) if len(frame) else 0


def challenge(
    champion_dir: str | Path, challenger_dir: str | Path, held_out: str | Path, recent: pd.DataFrame | None = None
) -> Challenge:
    """Score the champion and the challenger on the held-out log and on ``recent`` (the recent feedback lists that
    the challenger did not train on; a validated click log) and compare them."""
    frame = read_clicks(held_out)
    require_ranked_groups(frame, str(held_out))
    champion, challenger = load_scorer(str(champion_dir)), load_scorer(str(challenger_dir))
    logger.info("scoring %s with the champion and the challenger", held_out)
    result = head_to_head(
        frame, score_model(champion, frame)[0], score_model(challenger, frame)[0], Path(held_out).name
    )
    if recent is None or not ranked_groups(recent):
        return Challenge(result)
    lists = f"the {recent[GROUP].nunique()} most recent feedback lists"
    logger.info("scoring %s with the champion and the challenger", lists)
    feedback = head_to_head(recent, score_model(champion, recent)[0], score_model(challenger, recent)[0], lists)
    return Challenge(result, feedback)


def promote(served_dir: str | Path, candidate_dir: str | Path, evaluation: Challenge | None, reason: str) -> Version:
    """Serve ``candidate_dir``'s model from ``served_dir``: the served model is recorded if it is not yet, the
    candidate is recorded as a new version, the folder's model is replaced as one change, and the log says why."""
    history = History(served_dir)
    previous = history.record_served()
    version = history.add(candidate_dir)
    history.serve(version)
    figures = evaluation.to_json() if evaluation is not None else None
    history.append(Event(utc_now(), PROMOTED, version.number, version.digest, reason, figures, previous.number))
    return version


def keep(served_dir: str | Path, challenger_dir: str | Path, evaluation: Challenge, reason: str) -> Event:
    """Log that the champion stays: the challenger's digest, where it is, the figures and why."""
    history = History(served_dir)
    champion = history.record_served()
    challenger = served_version(challenger_dir)
    event = Event(
        utc_now(),
        KEPT,
        champion.number,
        champion.digest,
        reason,
        evaluation.to_json(),
        challenger=challenger,
        challenger_dir=str(challenger_dir),
    )
    history.append(event)
    return event


def settle(served_dir: str | Path, challenger_dir: str | Path, evaluation: Challenge) -> Decision:
    """Decide (:func:`decide`), then promote the challenger or keep the champion, logging the reason either way."""
    decision = decide(evaluation)
    if decision.promote:
        promote(served_dir, challenger_dir, evaluation, decision.reason)
    else:
        keep(served_dir, challenger_dir, evaluation, decision.reason)
    return decision
