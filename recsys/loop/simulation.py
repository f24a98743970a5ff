"""Whether a challenger would beat the champion with users, replayed on a labelled click log: ``python -m recsys.loop
simulate`` (its command line and ``--json`` report are described in ``recsys.loop.commands``).

Each group of the log is one session, replayed in a seeded order: both models rank the group's items, team-draft
interleaving (``recsys.feedback.interleave``) makes the list shown, a click model clicks it as the log's ``clicked``
labels say the items deserve, and the clicks credit one model, the other, or neither.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsys.cli import say
from recsys.data.atomic_files import write_text_atomic
from recsys.data.contract import CLICKED, GROUP, read_clicks, require_ranked_groups
from recsys.data.file_checks import check_not_an_input
from recsys.errors import UserError
from recsys.feedback.interleave import (
    CLICK_MODELS,
    ClickModel,
    Comparison,
    Outcome,
    credit,
    sessions_to_decision,
    team_draft,
)
from recsys.scoring.loading import load_scorer, zero_shot_of
from recsys.scoring.scorer import Scorer

logger = logging.getLogger(__name__)

ZERO_SHOT = "zero-shot"  # in place of a model: the base model, zero-shot


@dataclass
class Replay:
    """One simulated comparison: what was compared, how, and each session's outcome in the order replayed."""

    champion: str
    challenger: str
    data: str
    click_model: ClickModel
    seed: int
    outcomes: list[Outcome]

    @property
    def comparison(self) -> Comparison:
        return Comparison.of(self.outcomes)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` report (``recsys.loop.commands``' docstring)."""
        comparison = self.comparison
        return {
            "winner": comparison.winner,
            "wins": comparison.wins,
            "losses": comparison.losses,
            "ties": comparison.ties,
            "sessions": len(self.outcomes),
            "p_value": comparison.p_value,
            "champion": self.champion,
            "challenger": self.challenger,
            "click_model": self.click_model.parameters(),
            "seed": self.seed,
            "data": self.data,
            "sessions_to_decision": sessions_to_decision(self.outcomes),
        }


def load_rankers(champion: str, challenger: str, log: pd.DataFrame) -> tuple[Scorer, Scorer]:
    """The two models by name; ``zero-shot`` is the other model's base model where that one is fine-tuned (reading
    texts as long as it does), else the default base model reading texts as long as ``log`` needs. A model named
    twice is loaded once."""
    loaded = {name: load_scorer(name, log=log) for name in dict.fromkeys((champion, challenger)) if name != ZERO_SHOT}
    if ZERO_SHOT in (champion, challenger):
        other = loaded.get(challenger if champion == ZERO_SHOT else champion)
        fine_tuned = other is not None and other.metadata.fine_tuned
        loaded[ZERO_SHOT] = zero_shot_of(other) if fine_tuned else load_scorer(None, log=log)
    return loaded[champion], loaded[challenger]


def draw_sessions(frame: pd.DataFrame, rng: np.random.Generator, max_sessions: int | None = None) -> list[np.ndarray]:
    """Each group's row positions, one session per group, in a random order; the first ``max_sessions`` of them."""
    groups = list(frame.groupby(GROUP, sort=False).indices.values())
    return [groups[i] for i in rng.permutation(len(groups))[:max_sessions]]


def replay(
    sessions: list[np.ndarray],
    champion_scores: np.ndarray,
    challenger_scores: np.ndarray,
    labels: np.ndarray,
    click_model: ClickModel,
    rng: np.random.Generator,
) -> list[Outcome]:
    """Each session's outcome: both rankings of its rows by score (ties in row order), their team-draft list, the
    click model's clicks on the labels of the items shown, and the credit."""
    outcomes = []
    for rows in sessions:
        champion = rows[np.argsort(-champion_scores[rows], kind="stable")].tolist()
        challenger = rows[np.argsort(-challenger_scores[rows], kind="stable")].tolist()
        shown = team_draft(champion, challenger, rng)
        clicks = click_model.simulate(labels[[entry.item for entry in shown]], rng)
        outcomes.append(credit(shown, np.flatnonzero(clicks) + 1))
    return outcomes


def final_scores(scorer: Scorer, frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """The scorer's final scores of ``rows`` (positions in ``frame``), placed at those positions; NaN elsewhere."""
    scores = np.full(len(frame), np.nan)
    scores[rows] = scorer.score_frame(frame.iloc[rows].reset_index(drop=True))[0]
    return scores


def simulate(
    champion: Scorer,
    challenger: Scorer,
    frame: pd.DataFrame,
    click_model: ClickModel,
    seed: int,
    max_sessions: int | None = None,
) -> list[Outcome]:
    """Replay the click log's groups as interleaved sessions (``max_sessions`` of them, default all); each model
    scores the rows replayed, once. The session order and the clicks come from ``seed``, each from its own stream,
    so that a shorter run replays the first sessions of a longer one."""
    order_seed, click_seed = np.random.SeedSequence(seed).spawn(2)
    sessions = draw_sessions(frame, np.random.default_rng(order_seed), max_sessions)
    rows = np.sort(np.concatenate(sessions)) if sessions else np.array([], dtype=int)
    logger.info("scoring the %d rows of %d sessions with each model", len(rows), len(sessions))
    champion_scores = final_scores(champion, frame, rows)
    challenger_scores = champion_scores if challenger is champion else final_scores(challenger, frame, rows)
    labels = frame[CLICKED].to_numpy()
    return replay(sessions, champion_scores, challenger_scores, labels, click_model, np.random.default_rng(click_seed))


def format_table(result: Replay) -> str:
    comparison = result.comparison
    report = result.to_json()
    decided = report["sessions_to_decision"]
    winner = comparison.winner + ("" if decided is None else f" (decided after {decided} sessions)")
    rows = [
        ("champion", result.champion),
        ("challenger", result.challenger),
        ("click model", result.click_model.describe()),
        ("sessions", f"{len(result.outcomes)} (seed {result.seed})"),
        ("challenger won", str(comparison.wins)),
        ("champion won", str(comparison.losses)),
        ("ties", str(comparison.ties)),
        ("p-value", f"{comparison.p_value:.4g}"),
        ("winner", winner),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows) + "\n\n" + comparison.sentence()


def run_simulate(args: argparse.Namespace) -> Replay:
    if args.seed < 0:
        raise UserError(f"--seed must be 0 or more, not {args.seed}")
    if args.max_sessions is not None and args.max_sessions < 1:
        raise UserError(f"--max-sessions must be at least 1, not {args.max_sessions}")
    if args.json:  # before the scoring, not after it
        check_not_an_input(args.json, [args.data], "write the report to another file")
    click_model = CLICK_MODELS[args.click_model]()
    frame = read_clicks(args.data)
    require_ranked_groups(frame, str(args.data))
    champion, challenger = load_rankers(args.champion, args.challenger, frame)
    if champion is challenger:
        logger.warning("the champion and the challenger are the same model: every session is a tie")
    outcomes = simulate(champion, challenger, frame, click_model, args.seed, args.max_sessions)
    result = Replay(args.champion, args.challenger, str(args.data), click_model, args.seed, outcomes)
    say(format_table(result))
    if args.json:
        write_text_atomic(args.json, json.dumps(result.to_json(), indent=2) + "\n")
    return result
