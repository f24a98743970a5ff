"""Evaluate a model against the baselines on a click log: the one evaluator of the CLI, the model card and the app.

    python -m recsys.evaluate --model DIR --data FILE [--train-file FILE] [--json OUT]

The JSON holds the model's ``auc``, ``mrr``, ``ndcg@5``, ``ndcg@10``, ``logloss``, ``ece``,
``groups`` and ``rows`` (plus ``ci``, bootstrap 95% intervals over groups), and the same for
each baseline under ``baselines``, where ``model_minus_baseline`` gives the model's per-group
advantage on each ranking metric as ``[difference, low, high]`` (paired bootstrap 95% interval).
Published model folders add ``data_file`` and ``data_split`` (``validation`` for the file that
training selected the model on).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.artifact import write_text_atomic
from recsys.baselines import (
    Scored,
    bm25_baseline,
    popularity_baseline,
    random_baseline,
    tfidf_baseline,
    zero_shot_baseline,
)
from recsys.cli import run_cli, say
from recsys.contract import CLICKED, read_clicks, require_ranked_groups
from recsys.metrics import RANKING_METRICS, Difference, Metrics, evaluate_scores, paired_difference
from recsys.scoring import Scorer, load_scorer, zero_shot_of

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]  # (fraction done, what is being done)


@dataclass
class BaselineResult:
    metrics: Metrics
    model_minus_baseline: dict[str, Difference]  # the model's per-group advantage on each ranking metric

    def to_dict(self) -> dict[str, Any]:
        differences = {name: list(d) for name, d in self.model_minus_baseline.items()}
        return {**self.metrics.to_dict(), "model_minus_baseline": differences}


@dataclass
class Evaluation:
    """The model's metrics on one click log, each baseline's beside them, and the per-row scores behind them."""

    model: Metrics
    baselines: dict[str, BaselineResult] = field(default_factory=dict)
    data_file: str = ""  # the click log's file name
    data_split: str | None = None  # "validation" where training selected the model on that file
    labels: np.ndarray | None = None  # per row, for the plots (recsys.plots)
    scores: np.ndarray | None = None
    probabilities: np.ndarray | None = None

    def to_json(self, per_row: bool = False) -> dict[str, Any]:
        """The ``--json`` form (module docstring); ``per_row`` adds the labels, scores and probabilities."""
        data: dict[str, Any] = self.model.to_dict()
        if self.baselines:
            data["baselines"] = {name: b.to_dict() for name, b in self.baselines.items()}
        if self.data_file:
            data["data_file"] = self.data_file
        if self.data_split:
            data["data_split"] = self.data_split
        if per_row and self.labels is not None:
            data["per_row"] = {k: getattr(self, k).tolist() for k in ("labels", "scores", "probabilities")}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evaluation:
        baselines = {
            name: BaselineResult(
                Metrics.from_dict(b), {k: Difference(*d) for k, d in b.get("model_minus_baseline", {}).items()}
            )
            for name, b in data.get("baselines", {}).items()
        }
        rows = data.get("per_row", {})
        arrays = {k: np.asarray(rows[k], dtype=np.float64) for k in ("labels", "scores", "probabilities") if k in rows}
        return cls(Metrics.from_dict(data), baselines, data.get("data_file", ""), data.get("data_split"), **arrays)

    def save(self, path: str | Path, per_row: bool = False) -> None:
        """Written aside, then renamed into place: a reader never sees half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(self.to_json(per_row), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Evaluation | None:
        path = Path(path)
        return cls.from_json(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


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


def compare(frame: pd.DataFrame, model: Scored, baselines: dict[str, Scored], data_file: str = "") -> Evaluation:
    """The metrics of the model's scores and of each baseline's on ``frame``, with the model's paired advantage."""
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
    )


def evaluate(
    scorer: Scorer,
    frame: pd.DataFrame,
    train: pd.DataFrame | None = None,
    *,
    baselines: bool = True,
    zero_shot: Scorer | None = None,
    data_file: str = "",
    progress: Progress | None = None,
) -> Evaluation:
    """The model's metrics on a validated click log, each baseline's beside them and its paired advantage.

    The zero-shot baseline is ``zero_shot``, else the fine-tuned model's base model (loaded here).
    """
    require_ranked_groups(frame, data_file or "the click log")  # before any scoring, not after it
    report = progress or (lambda fraction, desc: None)
    report(0.05, "scoring the model")
    model = scorer.score_frame(frame)
    report(0.5, "scoring the baselines")
    scored = baseline_scores(frame, train, zero_shot or zero_shot_of(scorer)) if baselines else {}
    evaluation = compare(frame, model, scored, data_file)
    report(1.0, "done")
    return evaluation


def format_table(evaluation: Evaluation, model_name: str = "fine-tuned model") -> str:
    """A Markdown table: each ranking metric with its 95% interval, then log-loss and ECE; then the paired Δ table."""
    lines = [
        "| scorer | " + " | ".join(RANKING_METRICS) + " | logloss | ece |",
        "|" + "---|" * (len(RANKING_METRICS) + 3),
    ]
    entries = [(model_name, evaluation.model), *((name, b.metrics) for name, b in evaluation.baselines.items())]
    for name, metrics in entries:
        cells = []
        for key in RANKING_METRICS:
            low, high = metrics.intervals.get(key, (float("nan"), float("nan")))
            cells.append(f"{metrics.values[key]:.3f} [{low:.3f}, {high:.3f}]")
        values = metrics.values
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {values['logloss']:.3f} | {values['ece']:.3f} |")
    lines.append(f"\n{evaluation.model.groups} groups with a click and a non-click, {evaluation.model.rows} rows.")
    paired = [(name, b.model_minus_baseline) for name, b in evaluation.baselines.items() if b.model_minus_baseline]
    if paired:
        lines += [
            "",
            f"{model_name} minus each baseline, per group, with paired bootstrap 95% intervals:",
            "",
            "| baseline | " + " | ".join(f"Δ {key}" for key in RANKING_METRICS) + " |",
            "|" + "---|" * (len(RANKING_METRICS) + 1),
        ]
        for name, diff in paired:
            cells = [f"{d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}]" for d in (diff[k] for k in RANKING_METRICS)]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys.evaluate",
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
    frame = read_clicks(args.data)
    require_ranked_groups(frame, str(args.data))
    train = read_clicks(args.train_file) if args.train_file else None
    evaluation = evaluate(load_scorer(args.model), frame, train, baselines=not args.no_baselines)
    say(format_table(evaluation))
    if args.json:
        evaluation.save(args.json)
    return evaluation


def cli() -> None:
    """``python -m recsys.evaluate``, installed as ``clicktune-evaluate``."""
    run_cli(main)


if __name__ == "__main__":
    cli()
