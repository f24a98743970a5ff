"""Evaluate a model against the baselines on a click log.

    python -m recsys.evaluate --model DIR --data FILE [--train-file FILE] [--json OUT]

The JSON holds the model's ``auc``, ``mrr``, ``ndcg@5``, ``ndcg@10``, ``logloss``, ``ece``,
``groups`` and ``rows`` (plus ``ci``, bootstrap 95% intervals over groups), and the same for
each baseline under ``baselines``, where ``model_minus_baseline`` gives the model's per-group
advantage on each ranking metric as ``[difference, low, high]`` (paired bootstrap 95% interval).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.baselines import (
    bm25_baseline,
    popularity_baseline,
    random_baseline,
    tfidf_baseline,
    zero_shot_baseline,
)
from recsys.contract import ITEM, QUERY, read_clicks
from recsys.metrics import RANKING_METRICS, evaluate_scores, paired_difference
from recsys.models import Scorer, load_scorer

logger = logging.getLogger(__name__)


def score_frame(scorer: Scorer, frame: pd.DataFrame) -> tuple:
    """The model's final scores (text + learned item priors) and click probabilities for each row."""
    logits = scorer.score_pairs(list(zip(frame[QUERY], frame[ITEM], strict=True)))
    scores = scorer.final_scores(logits, frame)
    return scores, scorer.probabilities(scores)


def baseline_scores(
    frame: pd.DataFrame, train: pd.DataFrame | None = None, zero_shot: Scorer | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each baseline's ``(scores, probabilities)`` on ``frame``; popularity needs ``train``, zero-shot a base scorer."""
    runs = {"random": lambda: random_baseline(frame, train)}
    if train is not None:
        runs["popularity"] = lambda: popularity_baseline(frame, train)
    else:
        logger.warning("no --train-file: the popularity baseline needs one and is left out")
    runs["tfidf"] = lambda: tfidf_baseline(frame, train)
    runs["bm25"] = lambda: bm25_baseline(frame, train)
    if zero_shot is not None:
        runs["zero_shot"] = lambda: zero_shot_baseline(frame, zero_shot, train)
    scored = {}
    for name, run in runs.items():
        logger.info("scoring baseline %s", name)
        scored[name] = run()
    return scored


def evaluate_baselines(
    frame: pd.DataFrame,
    train: pd.DataFrame | None = None,
    zero_shot: Scorer | None = None,
    model_scores: np.ndarray | None = None,
    scored: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, dict]:
    """Metrics of each baseline on ``frame`` (scored here, or given as ``baseline_scores``'s ``scored``).

    With ``model_scores``, each baseline also gets ``model_minus_baseline``: the model's per-group
    advantage on each ranking metric with a paired bootstrap interval.
    """
    scored = scored if scored is not None else baseline_scores(frame, train, zero_shot)
    results = {}
    for name, (scores, probabilities) in scored.items():
        results[name] = evaluate_scores(frame, scores, probabilities)
        if model_scores is not None:
            results[name]["model_minus_baseline"] = paired_difference(frame, model_scores, scores)
    return results


def evaluate(
    scorer: Scorer,
    frame: pd.DataFrame,
    train: pd.DataFrame | None = None,
    baselines: bool = True,
    zero_shot: Scorer | None = None,
) -> dict:
    """The model's metrics on ``frame``, with each baseline's under ``baselines`` and the model's paired
    advantage over each. The zero-shot baseline is ``zero_shot``, else the fine-tuned model's base model."""
    if baselines and zero_shot is None:
        zero_shot = load_scorer(scorer.metadata.base_model) if scorer.metadata.fine_tuned else scorer
    scores, probabilities = score_frame(scorer, frame)
    return evaluate_scored(frame, scores, probabilities, train, zero_shot if baselines else None, baselines)


def evaluate_scored(
    frame: pd.DataFrame,
    scores: np.ndarray,
    probabilities: np.ndarray,
    train: pd.DataFrame | None,
    zero_shot: Scorer | None,
    baselines: bool = True,
) -> dict:
    """The metrics of already computed model scores, and the baselines beside them (see :func:`evaluate`)."""
    result = evaluate_scores(frame, scores, probabilities)
    if baselines:
        result["baselines"] = evaluate_baselines(frame, train, zero_shot, model_scores=scores)
    return result


def format_table(result: dict, model_name: str = "fine-tuned model") -> str:
    """A Markdown table: each ranking metric with its 95% interval, then log-loss and ECE."""
    header = "| scorer | " + " | ".join(RANKING_METRICS) + " | logloss | ece |"
    lines = [header, "|" + "---|" * (len(RANKING_METRICS) + 3)]
    entries = [(model_name, result), *list(result.get("baselines", {}).items())]
    for name, metrics in entries:
        cells = []
        for key in RANKING_METRICS:
            low, high = metrics["ci"][key] if "ci" in metrics else (float("nan"), float("nan"))
            cells.append(f"{metrics[key]:.3f} [{low:.3f}, {high:.3f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {metrics['logloss']:.3f} | {metrics['ece']:.3f} |")
    lines.append(f"\n{result['groups']} groups with a click and a non-click, {result['rows']} rows.")
    paired = [
        (name, m["model_minus_baseline"])
        for name, m in result.get("baselines", {}).items()
        if "model_minus_baseline" in m
    ]
    if paired:
        lines += [
            "",
            f"{model_name} minus each baseline, per group, with paired bootstrap 95% intervals:",
            "",
            "| baseline | " + " | ".join(f"Δ {key}" for key in RANKING_METRICS) + " |",
            "|" + "---|" * (len(RANKING_METRICS) + 1),
        ]
        for name, diff in paired:
            cells = [f"{diff[k][0]:+.3f} [{diff[k][1]:+.3f}, {diff[k][2]:+.3f}]" for k in RANKING_METRICS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Evaluate a model against baselines (MIND protocol).")
    parser.add_argument("--model", default=None, help="model folder or name (default: zero-shot base model)")
    parser.add_argument("--data", required=True, type=Path, help="click log to evaluate on")
    parser.add_argument("--train-file", type=Path, help="training click log, for popularity and calibration")
    parser.add_argument("--json", type=Path, help="write the metrics here")
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    frame = read_clicks(args.data)
    train = read_clicks(args.train_file) if args.train_file else None
    result = evaluate(load_scorer(args.model), frame, train, baselines=not args.no_baselines)
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
