"""README's held-out tables: the default recipe on both bundled logs, 3 seeds, against every baseline.

    python -m bench.results [--seeds 42 43 44] [--evaluate-only]     # or: make results
    python -m bench.results --from-json bench/results.json            # rewrite results.md only

For each log (Bing News, MovieLens) and seed, ``python -m finetune.train`` runs with its defaults
(chosen on validation users by ``python -m bench.search``), early-stopping on the log's valid.csv.
Each model is then scored once on each held-out file (Bing News: test_users.csv and
test_later.csv; MovieLens: test.csv), beside every baseline, with the model's paired bootstrap
advantage over each. Writes bench/results.md and bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import DATASETS, reset_accelerate, write_report
from finetune.train import main as train
from recsys.data.contract import read_clicks
from recsys.evaluation.evaluator import baseline_scores, compare
from recsys.evaluation.metrics import RANKING_METRICS
from recsys.model.artifact import TRAINING_METRICS_FILE
from recsys.scoring.loading import load_scorer

HERE = Path(__file__).resolve().parent
SEEDS = (42, 43, 44)
MODEL = "fine-tuned (ours)"


def train_all(dataset: str, seeds: list[int], models: Path, evaluate_only: bool) -> dict[int, dict]:
    summaries = {}
    for seed in seeds:
        out = models / f"{dataset}-seed{seed}"
        if not evaluate_only:
            flags = [*DATASETS[dataset].train_flags(), "--output-dir", str(out), "--seed", str(seed)]
            train([*flags, "--report-to", "none"])
            reset_accelerate()
        summaries[seed] = json.loads((out / TRAINING_METRICS_FILE).read_text())
    return summaries


def evaluate_split(dataset: str, split: str, seeds: list[int], models: Path) -> dict:
    """Every seed's model and every baseline on one held-out file; baselines are scored once."""
    data = DATASETS[dataset]
    frame, train_frame = read_clicks(data.path(split)), read_clicks(data.path("train"))
    scored = baseline_scores(frame, train_frame, zero_shot=load_scorer(None, log=train_frame))
    evaluations = {
        seed: compare(frame, load_scorer(str(models / f"{dataset}-seed{seed}")).score_frame(frame), scored)
        for seed in seeds
    }
    baselines = next(iter(evaluations.values())).baselines  # the same for every seed
    return {
        "baselines": {name: baseline.metrics.to_dict() for name, baseline in baselines.items()},
        "seeds": {
            seed: {
                **evaluation.model.to_dict(),
                "model_minus_baseline": {
                    name: b.to_dict()["model_minus_baseline"] for name, b in evaluation.baselines.items()
                },
            }
            for seed, evaluation in evaluations.items()
        },
    }


def mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.3f}"


def split_markdown(result: dict) -> str:
    seeds = result["seeds"]
    runs = list(seeds.values())
    lines = [
        "| scorer | " + " | ".join(RANKING_METRICS) + " |",
        "|" + "---|" * (len(RANKING_METRICS) + 1),
        f"| {MODEL}, mean ± sd over {len(runs)} seeds | "
        + " | ".join(mean_sd([r[k] for r in runs]) for k in RANKING_METRICS)
        + " |",
    ]
    for name, metrics in result["baselines"].items():
        cells = [f"{metrics[k]:.3f} [{metrics['ci'][k][0]:.3f}, {metrics['ci'][k][1]:.3f}]" for k in RANKING_METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(f"\n{runs[0]['groups']} groups with a click and a non-click, {runs[0]['rows']} rows.\n")
    lines += [
        f"{MODEL} minus each baseline, per group: Δ AUC and Δ nDCG@10 with paired bootstrap 95% intervals, per seed:",
        "",
        "| baseline | " + " | ".join(f"seed {s}: Δ auc | seed {s}: Δ ndcg@10" for s in seeds) + " |",
        "|" + "---|" * (2 * len(seeds) + 1),
    ]
    for name in result["baselines"]:
        cells = []
        for metrics in runs:
            for key in ("auc", "ndcg@10"):
                d, low, high = metrics["model_minus_baseline"][name][key]
                cells.append(f"{d:+.3f} [{low:+.3f}, {high:+.3f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(results: dict) -> str:
    """bench/results.md from bench/results.json's form: the run, then per log its training and held-out tables."""
    run = results["run"]
    sections = []
    for dataset, result in results["datasets"].items():
        training = list(result["training"].values())

        def each(key: str, form: str = "{}", training: list = training) -> str:
            return ", ".join(form.format(t[key]) for t in training)

        sections.append(
            f"## {dataset}\n\nPer seed: best step {each('best_step')} of {each('steps')}; "
            f"{each('train_seconds', '{:.0f}')} s of training at {each('pairs_per_second', '{:.0f}')} "
            "(query, item) pairs/s.\n"
        )
        for split, split_result in result["splits"].items():
            sections.append(f"### {dataset}/{split}.csv\n\n{split_markdown(split_result)}\n")
    return (
        "# Held-out results of the default recipe\n\n"
        f"Command: `{run['command']}`, run on {run['date']} ({run['machine']}, "
        f"{run['threads']} threads, CPU only); {run['minutes']:.1f} min in all. "
        f"Seeds {', '.join(map(str, run['seeds']))}.\n"
        "Baselines are deterministic (random has a fixed seed) and scored once; their cells hold bootstrap 95%\n"
        "intervals over groups.\n\n" + "\n".join(sections)
    )


def run_all(args: argparse.Namespace) -> dict:
    """Train and evaluate every seed on every log: bench/results.json's form."""
    started = time.perf_counter()
    datasets: dict = {}
    for dataset in args.datasets:
        summaries = train_all(dataset, args.seeds, args.models, args.evaluate_only)
        datasets[dataset] = {
            "training": {
                seed: {k: s[k] for k in ("best_step", "steps", "train_seconds", "pairs_per_second")}
                for seed, s in summaries.items()
            },
            "splits": {
                split: evaluate_split(dataset, split, args.seeds, args.models) for split in DATASETS[dataset].tests
            },
        }
    run = {
        "command": " ".join(["python -m bench.results", *(["--evaluate-only"] if args.evaluate_only else [])]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "minutes": (time.perf_counter() - started) / 60,
        "seeds": args.seeds,
    }
    return {"run": run, "datasets": datasets}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", type=Path, default=Path("models/results"))
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    parser.add_argument("--evaluate-only", action="store_true", help="reuse the models already trained in --models")
    parser.add_argument(
        "--from-json", type=Path, help="only write --out from this results.json (bench/results.json): no training"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from_json = bool(args.from_json)
    results = json.loads(args.from_json.read_text()) if from_json else run_all(args)
    write_report(args.out, render(results), None if from_json else results)
    return results


if __name__ == "__main__":
    main()
