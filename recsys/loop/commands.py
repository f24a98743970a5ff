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
and on those recent lists, and promotes it only on a clear win (``recsys.loop.promotion.decide``); either way it says
why in one sentence with the numbers. ``history`` lists the served folder's versions (``SERVED.history/``), which one is
served, and each decision with its reason; ``rollback`` serves a recorded version again. See ``recsys.loop.versions``.

``simulate`` asks whether a challenger would beat the champion with users, replayed on a click log
(``recsys.loop.simulation``); ``retrain`` is ``recsys.loop.retraining``'s.

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
from pathlib import Path

from recsys.cli import run_cli, say
from recsys.defaults import DB_FILE
from recsys.feedback.interleave import CLICK_MODELS
from recsys.loop.promotion import Decision
from recsys.loop.retraining import RECENT_LISTS, run_retrain
from recsys.loop.simulation import Replay, run_simulate
from recsys.loop.versions import KEPT, Event, History, Version, describe_versions, record, rollback


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


def add_retrain_command(commands: argparse._SubParsersAction, served: str) -> None:
    """``retrain``: a challenger trained on the log plus the feedback, promoted only on a win."""
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


def add_version_commands(commands: argparse._SubParsersAction) -> None:
    served = "the model folder the app serves (its versions are kept in FOLDER.history beside it)"
    add_retrain_command(commands, served)
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
