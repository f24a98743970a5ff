"""Hyperparameter search on the validation users only (the seed platform's step 3).

    python -m bench.search [--steps 150] [--only NAME ...]

Each candidate trains on data/bing_news/train.csv and is scored on data/bing_news/valid.csv every
50 steps; the table of best validation AUC and nDCG@10 goes to bench/search.md. The held-out test
users are never touched here. bench/bing_news.py then trains the winner for its final table.
Finished candidates are kept in bench/search_runs.jsonl, so that a stopped search goes on where
it stopped; delete that file (or pass --fresh) to run every candidate again.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from accelerate.state import AcceleratorState, PartialState

from finetune.config import BUNDLED_DATA
from finetune.train import main as train
from recsys.contract import ITEM, QUERY, read_clicks
from recsys.metrics import evaluate_scores
from recsys.models import load_scorer

HERE = Path(__file__).resolve().parent

CANDIDATES: dict[str, list[str]] = {
    "bi pointwise lr 2e-5": ["--architecture", "bi", "--loss", "pointwise", "--learning-rate", "2e-5"],
    "bi listwise lr 1e-5": ["--architecture", "bi", "--loss", "listwise", "--learning-rate", "1e-5"],
    "bi listwise lr 2e-5": ["--architecture", "bi", "--loss", "listwise", "--learning-rate", "2e-5"],
    "bi listwise lr 5e-5": ["--architecture", "bi", "--loss", "listwise", "--learning-rate", "5e-5"],
    "bi listwise lr 1e-4": ["--architecture", "bi", "--loss", "listwise", "--learning-rate", "1e-4"],
    "bi listwise lr 5e-5 freeze 3": [
        "--architecture", "bi", "--loss", "listwise", "--learning-rate", "5e-5", "--freeze-layers", "3",
    ],
    # The same examples in half the steps: batch size is tuned at a fixed data budget.
    "bi listwise lr 5e-5 batch 32": [
        "--architecture", "bi", "--loss", "listwise", "--learning-rate", "5e-5", "--batch-size", "32",
        "--max-steps", "{half}", "--eval-steps", "25",
    ],
    # A cross-encoder step reads every (query, item) pair whole, about 3x a bi-encoder step here:
    # a third of the steps gives it about the same compute.
    "cross listwise lr 5e-5": [
        "--architecture", "cross", "--loss", "listwise", "--learning-rate", "5e-5",
        "--max-steps", "{third}", "--eval-steps", "25",
    ],
}  # fmt: skip
COMMON = ["--max-length", "96", "--batch-size", "16", "--eval-steps", "50", "--patience", "0", "--report-to", "none"]


ZERO_SHOT = "zero-shot (no training)"


def record(runs: Path, done: dict, row: dict) -> None:
    """Keep a finished candidate, in memory and on disk."""
    done[row["name"]] = row
    with runs.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row))


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
    parser.add_argument("--runs", type=Path, default=HERE / "search_runs.jsonl", help="finished candidates")
    parser.add_argument("--fresh", action="store_true", help="forget finished candidates")
    args = parser.parse_args(argv)

    if args.fresh:
        args.runs.unlink(missing_ok=True)
    done = {}
    if args.runs.is_file():
        done = {row["name"]: row for row in map(json.loads, args.runs.read_text().splitlines()) if row}
    if ZERO_SHOT not in done:
        zero = zero_shot_validation()
        record(
            args.runs,
            done,
            {"name": ZERO_SHOT, "auc": zero["auc"], "ndcg@10": zero["ndcg@10"], "step": 0, "groups": zero["groups"]},
        )
    for name, flags in CANDIDATES.items():
        if (args.only and name not in args.only) or name in done:
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
                    *(flag.format(half=args.steps // 2, third=args.steps // 3) for flag in flags),
                ]
            )  # fmt: skip
        best = summary["best"]
        record(
            args.runs,
            done,
            {
                "name": name,
                "auc": best["auc"],
                "ndcg@10": best["ndcg@10"],
                "step": summary["best_step"],
                "minutes": round((time.perf_counter() - started) / 60, 1),
                "pairs_per_second": summary["pairs_per_second"],
            },
        )
        # Each candidate is a fresh training run in this process.
        AcceleratorState._reset_state(True)
        PartialState._reset_state()

    lines = [
        "# Hyperparameter search (validation users only)",
        "",
        f"Command: `python -m bench.search --steps {args.steps}`; common flags `{' '.join(COMMON)}`.",
        f"Validation: data/bing_news/valid.csv, {done[ZERO_SHOT]['groups']} groups with a click and a non-click.",
        "",
        "| candidate | best val AUC | val nDCG@10 | at step | minutes | train pairs/s |",
        "|---|---|---|---|---|---|",
    ]
    rows = [done[name] for name in (ZERO_SHOT, *CANDIDATES) if name in done]
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
