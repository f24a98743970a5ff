"""Closing the feedback loop: retrain on the app's feedback, promote a challenger only on a win, keep every version.

    python -m recsys.loop retrain --model SERVED --feedback FEEDBACK_DIR --train-file LOG [--held-out FILE]
        [--recent-lists N] [--output-dir CHALLENGER_DIR] [--train-args "..."]
    python -m recsys.loop history --model SERVED
    python -m recsys.loop rollback VERSION --model SERVED [--reason TEXT]
    python -m recsys.loop simulate --champion A --challenger B --data LOG --click-model cascade|position --seed S
        [--json OUT] [--max-sessions N]

``retrain`` exports the feedback store as a click log, holds its ``--recent-lists`` most recent lists out, trains a
challenger from the served model's base model on the training log plus the rest (``python -m finetune.train`` in a
subprocess, with the default recipe and ``--train-args``), compares it with the served champion on the held-out file
and on those recent lists, and promotes it only on a clear win (``recsys.loop.versions.decide``); either way it says why
in one sentence with the numbers. ``history`` lists the served folder's versions (``SERVED.history/``), which one is
served, and each decision with its reason; ``rollback`` serves a recorded version again. See ``recsys.loop.versions``.

``simulate`` asks whether a challenger would beat the champion with users, replayed on a click log.

Each group of the log is one session, replayed in a seeded order: both models rank the group's items, team-draft
interleaving (``recsys.feedback.interleave``) makes the list shown, a click model clicks it as the log's ``clicked``
labels say the items deserve, and the clicks credit one model, the other, or neither. The sign test over the sessions
names the winner. A and B are a model folder, a Hub id, or ``zero-shot``: the base model, reading texts as long as
the other model, where that one is a fine-tuned ClickTune model, reads them.

The ``--json`` report holds ``winner`` (``champion``, ``challenger`` or ``none`` at alpha 0.05), ``wins`` (lists the
challenger won), ``losses``, ``ties``, ``sessions``, ``p_value``, ``champion``, ``challenger``, ``click_model``
(its parameters), ``seed``, ``data`` and ``sessions_to_decision`` (after how many sessions the test reached the
final winner and stayed there; null without a winner).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.cli import run_cli, say
from recsys.data.contract import CLICKED, GROUP, POSITION, read_clicks, require_ranked_groups, validate_clicks
from recsys.data.file_checks import check_not_an_input, check_not_an_input_folder
from recsys.defaults import BUNDLED_LOGS, DB_FILE
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
from recsys.feedback.store import FeedbackStore
from recsys.loop.versions import (
    KEPT,
    Decision,
    Event,
    History,
    Version,
    challenge,
    describe_versions,
    history_dir,
    record,
    rollback,
    settle,
)
from recsys.model.artifact import ModelMetadata, write_text_atomic
from recsys.model.checks import check_model_folder
from recsys.scoring.scorer import Scorer, load_scorer, zero_shot_of

logger = logging.getLogger(__name__)

ZERO_SHOT = "zero-shot"  # in place of a model: the base model, zero-shot
RECENT_LISTS = 200  # the most recent feedback lists that retrain holds out of training to decide on
CHALLENGER_SUFFIX, DATA_SUFFIX = ".challenger", ".data"  # models/clicktune.challenger, and its training data beside it
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # holds recsys/ (and finetune/, in a checkout or an install)


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
        """The ``--json`` report (module docstring)."""
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


# -- retrain, history, rollback ---------------------------------------------------------------------------------


def choose_held_out(served: Path, champion: ModelMetadata, given: Path | None, train_file: Path) -> tuple[Path, str]:
    """The click log to decide on, and why it is that one: ``--held-out`` where given (never a log that either model
    trains or was selected on), else the bundled log's first held-out file where ``served`` is a bundled model."""
    if given is not None:
        trained_on = {
            "the training log": train_file,
            "the champion's training log": champion.training.get("train_file"),
            "the log the champion was selected on": champion.training.get("eval_file"),
        }
        for what, path in trained_on.items():
            if path and Path(path).exists() and given.exists() and given.samefile(path):
                raise UserError(
                    f"--held-out {given} is {what}: give a click log that neither model trained or was selected on"
                )
        return given, "given by --held-out"
    for log in BUNDLED_LOGS:
        if log.model_dir.is_dir() and served.samefile(log.model_dir):
            return log.held_out_files[0], f"the bundled {log.name} log's first held-out file, never trained on"
    selected_on = champion.training.get("eval_file") or "a share of its training log"
    raise UserError(
        f"--held-out is needed: {served} is not a bundled model, so give a click log that neither model trained or "
        f"was selected on ({selected_on}, which selected the champion, is not held out)"
    )


def split_recent(clicks: pd.DataFrame, lists: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A click log in time order as (its last ``lists`` groups, the others): the recent lists to decide on, held
    out of training, and those to train on."""
    order = clicks[GROUP].drop_duplicates()
    recent = set(order.iloc[len(order) - lists :]) if lists else set()
    held = clicks[GROUP].isin(recent).to_numpy(dtype=bool)
    return clicks[held].reset_index(drop=True), clicks[~held].reset_index(drop=True)


def combine_logs(log: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """The training log and the feedback lists as one click log with the union of their columns (a row lacks what
    its source lacked), except a ``position`` that not every row has: the contract allows no gaps in it."""
    shared = set(log[GROUP]) & set(feedback[GROUP])
    if shared:
        raise UserError(
            f"the training log and the feedback share group ids ({', '.join(sorted(map(str, shared))[:3])}): "
            "give a training log whose groups are its own"
        )
    combined = pd.concat([log, feedback], ignore_index=True)
    if POSITION in combined.columns and combined[POSITION].isna().any():
        logger.info("the %s column is left out: only some of the rows have one", POSITION)
        combined = combined.drop(columns=POSITION)
    return validate_clicks(combined, source="the training log with the feedback")


def train_challenger(champion: ModelMetadata, train_file: Path, output_dir: Path, extra: list[str]) -> None:
    """``python -m finetune.train`` in a subprocess from the champion's base model and architecture, with the
    default recipe and ``extra`` flags (which win); its output goes to stderr, so that stdout holds the decision."""
    command = [
        sys.executable, "-m", "finetune.train", "--train-file", str(train_file),
        "--model-name-or-path", champion.base_model, "--architecture", champion.architecture,
        "--output-dir", str(output_dir), *extra,
    ]  # fmt: skip
    path = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")]))
    logger.info("training the challenger: %s", shlex.join(command))
    done = subprocess.run(command, env={**os.environ, "PYTHONPATH": path}, stdout=2, check=False)  # 2: stderr
    if done.returncode:
        raise UserError(
            f"training the challenger failed (exit status {done.returncode}; its messages are above); the champion "
            "stays served"
        )


def run_retrain(args: argparse.Namespace) -> Decision:
    served: Path = args.model
    champion = check_model_folder(served)
    if champion is None or not champion.fine_tuned:
        raise UserError(f"{served}: holds no fine-tuned ClickTune model; give the folder the app serves")
    if args.recent_lists < 0:
        raise UserError(f"--recent-lists must be 0 or more, not {args.recent_lists}")
    database = args.feedback / DB_FILE
    if not database.is_file():
        raise UserError(f"no feedback database at {database}; pass the app's FEEDBACK_DIR as --feedback")
    held_out, why = choose_held_out(served, champion, args.held_out, args.train_file)
    output: Path = args.output_dir or served.with_name(served.name + CHALLENGER_SUFFIX)
    inputs = [served, history_dir(served), args.train_file, args.feedback, held_out]
    data_dir = output.with_name(output.name + DATA_SUFFIX)  # the challenger's training data, beside it
    for folder in (output, data_dir):
        check_not_an_input_folder(folder, inputs, f"give --output-dir a folder of its own, e.g. {output.name}-next")
    # Every input is read before the training: a bad one is refused now, not after it.
    log = read_clicks(args.train_file)
    require_ranked_groups(read_clicks(held_out), str(held_out))
    feedback = FeedbackStore(args.feedback).click_log()
    lists = feedback[GROUP].nunique()
    if args.recent_lists >= lists:
        raise UserError(
            f"--recent-lists {args.recent_lists} would hold out all {lists} feedback lists, leaving none to train "
            f"on: give fewer than {lists}, or 0 to train on all of them and decide on the held-out file alone"
        )
    recent, trained = split_recent(feedback, args.recent_lists)
    combined = combine_logs(log, trained)
    record(served)  # the champion is in the history before anything can replace it

    data_dir.mkdir(parents=True, exist_ok=True)
    train_file, recent_file = data_dir / "train.csv", data_dir / "recent_feedback.csv"
    combined.to_csv(train_file, index=False, quoting=csv.QUOTE_ALL)  # quoted: texts may hold commas and quotes
    recent.to_csv(recent_file, index=False, quoting=csv.QUOTE_ALL)
    say(f"held-out file: {held_out} ({why})")
    say(
        f"training a challenger on {args.train_file.name} ({len(log)} rows) and {lists - recent[GROUP].nunique()} "
        f"feedback lists ({train_file}); the {recent[GROUP].nunique()} most recent lists are held out to decide on"
    )
    train_challenger(champion, train_file, output, shlex.split(args.train_args))
    decision = settle(served, output, challenge(served, output, held_out, recent if len(recent) else None))
    say(decision.reason)
    return decision


def format_history(history: History) -> str:
    """The versions (the served one starred) and every decision with its reason, oldest first."""
    versions = describe_versions(history)
    current = next((version for version, served, _ in versions if served), None)
    serving = f"version {current.number} ({current.digest})" if current else "a model that the history lacks"
    lines = [f"{history.served} serves {serving}; its versions are kept in {history.folder}", ""]
    lines.append("  version  digest    first served")
    for version, served, since in versions:
        lines.append(f"{'*' if served else ' '} {version.number:>7}  {version.digest}  {since or '-'}")
    lines += ["", "Decisions, oldest first:"]
    for event in history.events():
        lost = f" (challenger {event.challenger} in {event.challenger_dir})" if event.action == KEPT else ""
        lines.append(f"{event.time}  {event.action:<11}  version {event.version}  {event.reason}{lost}")
    return "\n".join(lines)


def run_history(args: argparse.Namespace) -> list[Event]:
    history = History(args.model)
    record(args.model)  # the first use records the served model as version 1
    say(format_history(history))
    return history.events()


def run_rollback(args: argparse.Namespace) -> Version:
    before = record(args.model)
    version = rollback(args.model, args.version, args.reason)
    if version == before:
        say(f"{args.model} serves version {version.number} ({version.digest}) already; nothing changed")
    else:
        say(f"{args.model} now serves version {version.number} ({version.digest}) in place of version {before.number}")
    return version


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys.loop",
        description="Close the feedback loop: retrain on the app's feedback and promote the challenger only on a "
        "win, keep every served version and roll back to any of them; or compare two models as users would, by "
        "interleaving.",
        epilog="Installed as a package (pip install .), the same command is clicktune-loop.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, help="what to do; `python -m recsys.loop COMMAND --help` lists its flags"
    )
    simulate_ = commands.add_parser(
        "simulate",
        help="replay a click log as team-draft interleaved sessions with simulated clicks",
        description="Replay each group of a click log as one session: the two models' rankings interleaved by "
        "team draft, clicked by a click model as the log's labels say, credited to the model whose item was "
        "clicked; a sign test over the sessions names the winner at alpha 0.05.",
    )
    model = "a saved model folder, a Hub id, or zero-shot (the base model)"
    simulate_.add_argument("--champion", required=True, help=f"the model served now: {model}")
    simulate_.add_argument("--challenger", required=True, help=f"the model that would replace it: {model}")
    simulate_.add_argument(
        "--data",
        required=True,
        type=Path,
        help="click log to replay, one session per group (.csv, .tsv, .jsonl, .parquet)",
    )
    simulate_.add_argument(
        "--click-model",
        required=True,
        choices=list(CLICK_MODELS),
        help="how simulated users click: cascade (top-down, may leave after a click) or position (rank r looked at "
        "with probability 1/r)",
    )
    simulate_.add_argument("--seed", required=True, type=int, help="seeds the session order and the clicks")
    simulate_.add_argument(
        "--max-sessions", type=int, metavar="N", help="replay only the first N sessions of the order (default: all)"
    )
    simulate_.add_argument("--json", type=Path, help="also write the report to this JSON file (default: none)")
    add_version_commands(commands)
    return parser


def add_version_commands(commands: argparse._SubParsersAction) -> None:
    served = "the model folder the app serves (its versions are kept in FOLDER.history beside it)"
    retrain = commands.add_parser(
        "retrain",
        help="train a challenger on the feedback and promote it only if it beats the served model",
        description="Export the feedback as a click log, train a challenger from the served model's base model on "
        "the training log plus the feedback (the most recent lists held out), compare it with the served champion "
        "on a held-out log and on those recent lists, and promote it only where its group-AUC interval against the "
        "champion is clear of zero on the held-out log (and not wholly below zero on the recent lists); the output "
        "says why in one sentence.",
    )
    retrain.add_argument("--model", required=True, type=Path, help=served)
    retrain.add_argument(
        "--feedback", required=True, type=Path, help="the app's feedback folder (FEEDBACK_DIR), holding " + DB_FILE
    )
    retrain.add_argument(
        "--train-file",
        required=True,
        type=Path,
        help="the click log the served model was trained on, to train on again",
    )
    retrain.add_argument(
        "--held-out",
        type=Path,
        help="click log to decide on, never trained or selected on (default: the bundled log's first held-out file, "
        "for a bundled model only)",
    )
    retrain.add_argument(
        "--recent-lists",
        type=int,
        default=RECENT_LISTS,
        metavar="N",
        help="the N most recent feedback lists are held out of training and decided on (default: %(default)s)",
    )
    retrain.add_argument(
        "--output-dir",
        type=Path,
        help="where the challenger is trained (default: MODEL.challenger beside the model; its training data goes "
        "to OUTPUT_DIR.data)",
    )
    retrain.add_argument(
        "--train-args",
        default="",
        metavar="FLAGS",
        help="more flags for python -m finetune.train, in one string, which win over the defaults "
        '(e.g. --train-args="--max-steps 200 --seed 1")',
    )
    history = commands.add_parser(
        "history",
        help="list the served folder's versions and each decision with its reason",
        description="List the versions kept for a served model folder, which one it serves, and every decision "
        "(recorded, promoted, kept, rolled back) with its reason. The first use records the served model.",
    )
    history.add_argument("--model", required=True, type=Path, help=served)
    rollback_ = commands.add_parser(
        "rollback",
        help="serve a recorded version again",
        description="Serve a recorded version of the model again, replacing the served folder's model as one change.",
    )
    rollback_.add_argument("version", help="the version's number (3) or digest, as `history` lists them")
    rollback_.add_argument("--model", required=True, type=Path, help=served)
    rollback_.add_argument("--reason", help="why, for the history (default: rolled back by request)")


def main(argv: list[str] | None = None) -> Replay | Decision | Version | list[Event]:
    args = build_parser().parse_args(argv)
    commands = {"simulate": run_simulate, "retrain": run_retrain, "history": run_history, "rollback": run_rollback}
    return commands[args.command](args)


def cli() -> None:
    """``python -m recsys.loop``, installed as ``clicktune-loop``."""
    run_cli(main)


if __name__ == "__main__":
    cli()
