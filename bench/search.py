"""The levers of the fine-tuning recipe, tried on the validation users of both bundled logs only.

    python -m bench.search [--steps 150] [--only NAME ...] [--fresh]     # or: make search

Each candidate trains on a log's train.csv and is scored on its valid.csv every 50 steps; the best
validation AUC of the final score (text + item priors where the candidate blends them), the text
score's own AUC and nDCG@10 go to bench/search.md. Held-out test users are never touched here.
Finished candidates are kept in bench/search_runs.jsonl, so that a stopped search goes on where
it stopped; pass --fresh to run every candidate again.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.common import DATASETS, baseline_rows, reset_accelerate, zero_shot_with_priors_row
from finetune.config import TrainConfig
from finetune.train import main as train

HERE = Path(__file__).resolve().parent

# name -> (dataset, flags on top of the defaults of finetune.config.TrainConfig). Full fine-tuning at
# lr 2e-5 (the earlier default) is the base of the levers tried on it; LoRA won and is the default now.
FULL = ["--lora-rank", "0"]
CANDIDATES: dict[str, tuple[str, list[str]]] = {
    "bing_news: full fine-tuning, lr 2e-5": ("bing_news", FULL),
    "movielens: full fine-tuning, lr 2e-5": ("movielens", FULL),
    "bing_news: full fine-tuning + in-batch negatives": ("bing_news", [*FULL, "--in-batch-negatives"]),
    "bing_news: full fine-tuning + WiSE-FT alpha 0.5": ("bing_news", [*FULL, "--wise-alpha", "0.5"]),
    "movielens: full fine-tuning + WiSE-FT alpha 0.5": ("movielens", [*FULL, "--wise-alpha", "0.5"]),
    "bing_news: LoRA rank 8, lr 5e-4 (the default)": ("bing_news", []),
    "movielens: LoRA rank 8, lr 5e-4 (the default)": ("movielens", []),
    "bing_news: full fine-tuning + learned scale (from 20, own lr 1e-2)": (
        "bing_news",
        [*FULL, "--scale-learning-rate", "1e-2"],
    ),
}
COMMON = ["--eval-steps", "50", "--patience", "0", "--report-to", "none"]


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def later_sections(path: Path) -> str:
    """What follows the table in ``path``, from its first ``## `` heading on (the blend study, written from
    bench/blend.py's table), kept when the table is written again."""
    text = path.read_text() if path.is_file() else ""
    start = text.find("\n## ")
    return "" if start < 0 else text[start:]


def record(runs: Path, done: dict, row: dict) -> None:
    """Keep a finished candidate, in memory and on disk."""
    done[row["name"]] = row
    with runs.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def record_baselines(runs: Path, done: dict) -> None:
    """Each log's baselines and its zero-shot + item priors reference, where no earlier run recorded them."""
    for dataset in dict.fromkeys(d for d, _ in CANDIDATES.values()):
        if not any(row.get("kind") == "baseline" and row["dataset"] == dataset for row in done.values()):
            for row in baseline_rows(dataset, "valid"):
                record(runs, done, row)
        if not any(row.get("kind") == "reference" and row["dataset"] == dataset for row in done.values()):
            record(runs, done, zero_shot_with_priors_row(dataset))


def run_candidate(name: str, dataset: str, flags: list[str], steps: int) -> dict:
    """Train one candidate for ``steps`` steps; its row: the best validation figures and what the run cost."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        summary = train(
            [*DATASETS[dataset].train_flags(), "--output-dir", out, "--max-steps", str(steps), *COMMON, *flags]
        )
    reset_accelerate()
    best = summary["best"]
    return {
        "name": name,
        "dataset": dataset,
        "auc": best["auc"],
        "text_auc": best.get("text_auc", best["auc"]),
        "ndcg@10": best["ndcg@10"],
        "step": summary["best_step"],
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "pairs_per_second": summary["pairs_per_second"],
    }


def table_lines(done: dict, steps: int, only: list[str] | None) -> list[str]:
    """search.md's heading, what every candidate ran with, and the table: baselines, references, candidates."""
    defaults = TrainConfig().resolved()  # the learning rate a run with the defaults trains at
    lines = [
        "# The recipe's levers on validation users only",
        "",
        f"Command: `python -m bench.search --steps {steps}`; every candidate runs `python -m finetune.train`",
        f"with its defaults (LoRA rank {defaults.lora_rank} at lr {defaults.learning_rate}, "
        f"batch {defaults.batch_size}, "
        f"max_length {defaults.max_length}, scale {defaults.scale}, item priors {defaults.item_priors}), "
        f"`--max-steps {steps} {' '.join(COMMON)}` and the flags of its name",
        "(`full fine-tuning` is `--lora-rank 0`, which trains every weight at lr 2e-5).",
        "AUC is the final score's (text + priors where blended); text AUC the text logit's alone; both are group",
        "AUCs on the log's valid.csv. Baselines are scored on the same rows.",
        "",
        "| candidate | val AUC | text AUC | val nDCG@10 | best step | minutes | train pairs/s |",
        "|---|---|---|---|---|---|---|",
    ]
    kinds = {"baseline": 0, "reference": 1}
    datasets = list(DATASETS)
    rows = sorted(done.values(), key=lambda r: (datasets.index(r["dataset"]), kinds.get(r.get("kind"), 2)))
    for row in rows:
        if only is None or row["name"] in only or row.get("kind") in kinds:
            lines.append(
                f"| {row['name']} | {row['auc']:.4f} | {_cell(row.get('text_auc'))} | {row['ndcg@10']:.4f} | "
                f"{row.get('step', '')} | {row.get('minutes', '')} | {row.get('pairs_per_second', '')} |"
            )
    return lines


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
    record_baselines(args.runs, done)
    for name, (dataset, flags) in CANDIDATES.items():
        if not (args.only and name not in args.only) and name not in done:
            record(args.runs, done, run_candidate(name, dataset, flags, args.steps))
    lines = table_lines(done, args.steps, args.only)
    args.out.write_text("\n".join(lines) + "\n" + later_sections(args.out))
    print("\n".join(lines))
    return list(done.values())


if __name__ == "__main__":
    main()
