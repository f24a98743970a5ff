"""``python -m recsys.loop retrain``: a challenger trained on the app's feedback and promoted only on a clear win.

The feedback store is exported as a click log and its most recent lists are held out; the challenger is trained
(``python -m finetune.train`` in a subprocess) from the served model's base model on the training log plus the other
lists, then compared with the served champion on a held-out log and on those recent lists and settled by
``recsys.loop.versions``, which promotes it or keeps the champion and records why.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd

from recsys.cli import say
from recsys.data.contract import GROUP, POSITION, read_clicks, require_ranked_groups, validate_clicks
from recsys.data.file_checks import check_not_an_input_folder
from recsys.defaults import BUNDLED_LOGS, DB_FILE
from recsys.errors import UserError
from recsys.feedback.store import FeedbackStore
from recsys.loop.promotion import Decision, challenge, settle
from recsys.loop.versions import history_dir, record
from recsys.model.artifact import ModelMetadata
from recsys.model.checks import check_model_folder

logger = logging.getLogger(__name__)

RECENT_LISTS = 200  # the most recent feedback lists that retrain holds out of training to decide on
CHALLENGER_SUFFIX, DATA_SUFFIX = ".challenger", ".data"  # models/clicktune.challenger, and its training data beside it
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # holds recsys/ (and finetune/, in a checkout or an install)


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
