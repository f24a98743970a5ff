"""Hyperparameter search on the validation users only (the seed platform's step 3).

    python -m bench.search [--steps 150] [--only NAME ...]

Each candidate trains on data/bing_news/train.csv and is scored on data/bing_news/valid.csv every
50 steps; the table of best validation AUC and nDCG@10 goes to bench/search.md. The held-out test
users are never touched here. bench/bing_news.py then trains the winner for its final table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from finetune.config import BUNDLED_DATA
from finetune.train import main as train
from recsys.contract import ITEM, QUERY, read_clicks
from recsys.metrics import evaluate_scores
from recsys.models import load_scorer

HERE = Path(__file__).resolve().parent

CANDIDATES: dict[str, list[str]] = {
    "bi pointwise lr 2e-5": ["--architecture", "bi", "--loss", "pointwise", "--learning-rate", "2e-5"],
    "bi listwise lr 2e-5": ["--architecture", "bi", "--loss", "listwise", "--learning-rate", "2e-5"],
    "bi listwise lr 5e-5": ["--architecture", "bi", "--loss", "listwise", "--learning-rate", "5e-5"],
    "bi listwise lr 1e-4": ["--architecture", "bi", "--loss", "listwise", "--learning-rate", "1e-4"],
    "bi listwise lr 5e-5 freeze 3": [
        "--architecture", "bi", "--loss", "listwise", "--learning-rate", "5e-5", "--freeze-layers", "3",
    ],
    "bi listwise lr 5e-5 batch 32": [
        "--architecture", "bi", "--loss", "listwise", "--learning-rate", "5e-5", "--batch-size", "32",
    ],
    "cross listwise lr 5e-5": ["--architecture", "cross", "--loss", "listwise", "--learning-rate", "5e-5"],
}  # fmt: skip
COMMON = ["--max-length", "96", "--batch-size", "16", "--eval-steps", "50", "--patience", "0", "--report-to", "none"]


def zero_shot_validation() -> dict:
    frame = read_clicks(BUNDLED_DATA / "valid.csv")
    scorer = load_scorer(None)
    logits = scorer.score_pairs(list(zip(frame[QUERY], frame[ITEM], strict=True)))
    return evaluate_scores(frame, logits, scorer.probabilities(logits), intervals=False)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150, help="optimiser steps per candidate")
    parser.add_argument("--only", nargs="*", help="run only these candidates (by name)")
    parser.add_argument("--out", type=Path, default=HERE / "search.md")
    args = parser.parse_args(argv)

    zero = zero_shot_validation()
    rows = [{"name": "zero-shot (no training)", "auc": zero["auc"], "ndcg@10": zero["ndcg@10"], "step": 0}]
    for name, flags in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            summary = train(
                [
                    "--train-file", str(BUNDLED_DATA / "train.csv"),
                    "--eval-file", str(BUNDLED_DATA / "valid.csv"),
                    "--output-dir", out,
                    "--max-steps", str(args.steps),
                    *COMMON,
                    *flags,
                ]
            )  # fmt: skip
        best = summary["best"]
        rows.append(
            {
                "name": name,
                "auc": best["auc"],
                "ndcg@10": best["ndcg@10"],
                "step": summary["best_step"],
                "minutes": round((time.perf_counter() - started) / 60, 1),
                "pairs_per_second": summary["pairs_per_second"],
            }
        )
        print(json.dumps(rows[-1]))
        from accelerate.state import AcceleratorState, PartialState

        AcceleratorState._reset_state(True)
        PartialState._reset_state()

    lines = [
        "# Hyperparameter search (validation users only)",
        "",
        f"Command: `python -m bench.search --steps {args.steps}`; common flags `{' '.join(COMMON)}`.",
        f"Validation: data/bing_news/valid.csv, {zero['groups']} groups with a click and a non-click.",
        "",
        "| candidate | best val AUC | val nDCG@10 | at step | minutes | train pairs/s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['auc']:.4f} | {row['ndcg@10']:.4f} | {row['step']} | "
            f"{row.get('minutes', '')} | {row.get('pairs_per_second', '')} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
