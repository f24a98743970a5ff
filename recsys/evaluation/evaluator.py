"""Evaluate a model against the baselines on a click log: the one evaluator of the CLI, the model card and the app.

    python -m recsys.evaluation.evaluator --model DIR --data FILE [--train-file FILE] [--json OUT]

The JSON holds the model's ``auc``, ``mrr``, ``ndcg@5``, ``ndcg@10``, ``logloss``, ``ece``,
``groups`` and ``rows`` (plus ``ci``, bootstrap 95% intervals over groups), and the same for
each baseline under ``baselines``, where ``model_minus_baseline`` gives the model's per-group
advantage on each ranking metric as ``[difference, low, high]`` (paired bootstrap 95% interval).
Published model folders add ``data_file`` and ``data_split`` (``validation`` for the file that
training selected the model on). A model that blends item priors into its score adds ``text_alone``:
the same metrics for its text logits alone, with ``text_minus_baseline`` (their paired advantage over
each baseline) and ``model_minus_text_alone`` (the final score's over them: what the priors add). The evaluation
of a model folder adds ``model_sha256``, the folder's ``recsys.model.artifact.model_digest``: an ``evaluation.json``
is of the model whose digest it records.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys.cli import run_cli, say
from recsys.data.contract import CLICKED, read_clicks, require_ranked_groups
from recsys.data.file_checks import check_not_an_input
from recsys.evaluation.baselines import (
    Scored,
    bm25_baseline,
    popularity_baseline,
    random_baseline,
    tfidf_baseline,
    zero_shot_baseline,
)
from recsys.evaluation.metrics import RANKING_METRICS, Difference, Metrics, evaluate_scores, paired_difference
from recsys.evaluation.results import BaselineResult, Evaluation, TextAloneResult
from recsys.model.artifact import model_digest, resolve_model_path
from recsys.scoring.loading import load_scorer, zero_shot_of
from recsys.scoring.scorer import Scorer

if TYPE_CHECKING:
    from recsys.model.relevance_model import Progress

logger = logging.getLogger(__name__)

EVALUATION_STEPS = 2  # what evaluate reports its progress in: scoring the model, then the baselines


def baseline_scores(
    frame: pd.DataFrame, train: pd.DataFrame | None = None, zero_shot: Scorer | None = None
) -> dict[str, Scored]:
    """Each baseline's scores on ``frame``; popularity needs ``train``, zero-shot a base scorer."""
    runs = {"random": lambda: random_baseline(frame, train)}
    if train is not None:
        runs["popularity"] = lambda: popularity_baseline(frame, train)
    else:
        logger.warning("no training log: the popularity baseline needs one and is left out")
    runs["tfidf"] = lambda: tfidf_baseline(frame, train)
    runs["bm25"] = lambda: bm25_baseline(frame, train)
    if zero_shot is not None:
        runs["zero_shot"] = lambda: zero_shot_baseline(frame, zero_shot, train)
    scored = {}
    for name, score in runs.items():
        logger.info("scoring baseline %s", name)
        scored[name] = score()
    return scored


def score_model(scorer: Scorer, frame: pd.DataFrame) -> tuple[Scored, Scored | None]:
    """The model's final scores and probabilities on ``frame``, and its text alone's where it blends item priors
    (else None): both from one pass of the model, the text logits before and after the priors are added."""
    logits = scorer.frame_logits(frame)
    scores = scorer.final_scores(logits, frame)
    model = scores, scorer.probabilities(scores)
    if scorer.priors is None:
        return model, None
    return model, (np.asarray(logits, dtype=np.float64), scorer.text_alone_probabilities(logits))


def compare(
    frame: pd.DataFrame,
    model: Scored,
    baselines: dict[str, Scored],
    data_file: str = "",
    text_alone: Scored | None = None,
) -> Evaluation:
    """The metrics of the model's scores and of each baseline's on ``frame``, with the model's paired advantage;
    with ``text_alone`` (the model's text logits without its item priors), theirs too."""
    scores, probabilities = model
    results = {
        name: BaselineResult(evaluate_scores(frame, *scored), paired_difference(frame, scores, scored[0]))
        for name, scored in baselines.items()
    }
    return Evaluation(
        evaluate_scores(frame, scores, probabilities),
        results,
        data_file=data_file,
        labels=frame[CLICKED].to_numpy(dtype=np.int64),
        scores=np.asarray(scores, dtype=np.float64),
        probabilities=np.asarray(probabilities, dtype=np.float64),
        text_alone=compare_text_alone(frame, scores, text_alone, baselines) if text_alone is not None else None,
    )


def compare_text_alone(
    frame: pd.DataFrame, scores: np.ndarray, text_alone: Scored, baselines: dict[str, Scored]
) -> TextAloneResult:
    """The text alone's metrics, its paired advantage over each baseline, and the final ``scores``' over it."""
    logits, probabilities = text_alone
    return TextAloneResult(
        evaluate_scores(frame, logits, probabilities),
        {name: paired_difference(frame, logits, scored[0]) for name, scored in baselines.items()},
        paired_difference(frame, scores, logits),
    )


def evaluate(
    scorer: Scorer,
    frame: pd.DataFrame,
    train: pd.DataFrame | None = None,
    *,
    baselines: bool = True,
    zero_shot: Scorer | None = None,
    with_zero_shot: bool = True,
    data_file: str = "",
    progress: Progress | None = None,
) -> Evaluation:
    """The model's metrics on a validated click log, each baseline's beside them and its paired advantage.

    The zero-shot baseline is ``zero_shot``, else the fine-tuned model's base model (loaded here); none where
    not ``with_zero_shot`` (a zero-shot model is its own, at a difference of 0). A model
    that blends item priors into its score is also evaluated on its text logits alone (``text_alone``).
    """
    require_ranked_groups(frame, data_file or "the click log")  # before any scoring, not after it
    report = progress or (lambda done, total, what: None)
    report(0, EVALUATION_STEPS, "scoring the model")
    model, text_alone = score_model(scorer, frame)
    report(1, EVALUATION_STEPS, "scoring the baselines")
    zero_shot = (zero_shot or zero_shot_of(scorer)) if with_zero_shot else None
    scored = baseline_scores(frame, train, zero_shot) if baselines else {}
    evaluation = compare(frame, model, scored, data_file, text_alone)
    report(EVALUATION_STEPS, EVALUATION_STEPS, "done")
    return evaluation


TEXT_ALONE_ROW = "text alone"  # format_table's name for the model's text logits without its item priors
MODEL_ROW, ZERO_SHOT_ROW = "fine-tuned model", "zero-shot base model"  # the evaluated model's row, by what it is


def format_table(evaluation: Evaluation, model_name: str = MODEL_ROW) -> str:
    """A Markdown table: each ranking metric with its 95% interval, then log-loss and ECE; then the paired Δ table.

    A model with item priors has a row for its text alone after its own, in both tables: in the Δ table
    that row is what the priors add.
    """
    text_alone = evaluation.text_alone
    entries = [(model_name, evaluation.model)]
    entries += [(f"{model_name}: {TEXT_ALONE_ROW}", text_alone.metrics)] if text_alone else []
    entries += [(name, b.metrics) for name, b in evaluation.baselines.items()]
    lines = [
        "| scorer | " + " | ".join(RANKING_METRICS) + " | logloss | ece |",
        "|" + "---|" * (len(RANKING_METRICS) + 3),
        *(_metrics_row(name, metrics) for name, metrics in entries),
        f"\n{evaluation.model.groups} groups with a click and a non-click, {evaluation.model.rows} rows.",
    ]
    priors_add = text_alone.model_minus_text_alone if text_alone else {}
    paired = [(f"{TEXT_ALONE_ROW} (what the item priors add)", priors_add)] if priors_add else []
    paired += [(name, b.model_minus_baseline) for name, b in evaluation.baselines.items() if b.model_minus_baseline]
    if paired:
        lines += [
            "",
            f"{model_name} minus each baseline, per group, with paired bootstrap 95% intervals:",
            "",
            "| baseline | " + " | ".join(f"Δ {key}" for key in RANKING_METRICS) + " |",
            "|" + "---|" * (len(RANKING_METRICS) + 1),
            *(_difference_row(name, differences) for name, differences in paired),
        ]
    return "\n".join(lines)


def _metrics_row(name: str, metrics: Metrics) -> str:
    cells = []
    for key in RANKING_METRICS:
        low, high = metrics.intervals.get(key, (float("nan"), float("nan")))
        cells.append(f"{metrics.values[key]:.3f} [{low:.3f}, {high:.3f}]")
    values = metrics.values
    return f"| {name} | " + " | ".join(cells) + f" | {values['logloss']:.3f} | {values['ece']:.3f} |"


def _difference_row(name: str, differences: dict[str, Difference]) -> str:
    cells = [f"{d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}]" for d in (differences[k] for k in RANKING_METRICS)]
    return f"| {name} | " + " | ".join(cells) + " |"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys.evaluation.evaluator",
        description="Evaluate a model against baselines (MIND protocol).",
        epilog="Installed as a package (pip install .), the same command is clicktune-evaluate.",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="saved model folder, Hub id or base model name (default: the zero-shot base model)",
    )
    parser.add_argument(
        "--data", required=True, type=Path, help="click log to evaluate on (.csv, .tsv, .jsonl, .parquet)"
    )
    parser.add_argument(
        "--train-file",
        type=Path,
        help="training click log, for the popularity baseline and the baselines' click probabilities "
        "(default: none: popularity is left out)",
    )
    parser.add_argument("--json", type=Path, help="also write the metrics to this JSON file (default: none)")
    parser.add_argument("--no-baselines", action="store_true", help="evaluate the model alone")
    return parser


def main(argv: list[str] | None = None) -> Evaluation:
    args = build_parser().parse_args(argv)
    if args.json:  # before a minute of scoring, not after it
        inputs = [args.data, *([args.train_file] if args.train_file else [])]
        check_not_an_input(args.json, inputs, "write the metrics to another file")
    frame = read_clicks(args.data)
    require_ranked_groups(frame, str(args.data))
    train = read_clicks(args.train_file) if args.train_file else None
    # A base model reads texts as long as training on this log would have chosen: a zero-shot row fit to the log.
    scorer = load_scorer(args.model, log=train if train is not None else frame)
    fine_tuned = scorer.metadata.fine_tuned
    evaluation = evaluate(scorer, frame, train, baselines=not args.no_baselines, with_zero_shot=fine_tuned)
    say(format_table(evaluation, MODEL_ROW if fine_tuned else ZERO_SHOT_ROW))
    if args.json:
        path = resolve_model_path(args.model)
        evaluation.model_sha256 = model_digest(path) if Path(path).is_dir() else ""
        evaluation.save(args.json)
    return evaluation


def cli() -> None:
    """``python -m recsys.evaluation.evaluator``, installed as ``clicktune-evaluate``."""
    run_cli(main)


if __name__ == "__main__":
    cli()
