"""Position bias in clicks, and what inverse propensity weights win back: a simulated experiment on a labelled log.

    python -m bench.position_bias [--logging zero-shot|random] [--eta 1] [--p-relevant 0.9] [--p-irrelevant 0.05]
                                  [--swap-share 0.1 [--swap-design adjacent|top] [--swap-depth 10]]
                                  [--seeds 42 43 44] [--quick]

The bundled logs hold true labels: ``clicked`` says which items the user wanted, whatever their place. Real clicks
from a ranked list do not: users look at the top more, so an item shown low is clicked less than it deserves. This
experiment makes such a log from the labels and asks whether ``finetune.train --position-weights ips`` learns the
labels better from it than the plain recipe.

1. A logged ranking per group of the train file: the zero-shot base model's order (the ranker a product starts
   with), or a seeded shuffle (``--logging random``). Each row gets its place in it as ``position``, from 1.
2. Optionally, swap interventions: a seeded ``--swap-share`` of the groups shown with one pair of the top
   ``--swap-depth`` positions exchanged (``recsys.feedback.swaps.assign_swaps``).
3. Clicks simulated per group, in the order shown, by the position-based click model
   (``recsys.feedback.interleave.PositionBasedClicks``: a user looks at position r with probability 1/r^eta, and clicks
   an item seen with ``--p-relevant`` where its label is 1 and ``--p-irrelevant`` where it is 0). That is the biased
   click log, written to ``--models``/logs/ with the contract's columns and ``position``.
4. Per seed, the default recipe trained on it (``finetune.train``, in this process) without position weights,
   with ``--position-weights ips`` and the click model's own propensities
   (``recsys.feedback.propensity.from_click_model``, as a ``--propensity-file``), and, with swaps, with the power law
   fitted to the propensities estimated from them (``estimate_from_swaps`` with the items of a ranked position pooled,
   since this log's titles rarely recur; ``fit_power_law``). Validation (early stopping, the blend, the calibration)
   reads the true labels of valid.csv in every arm, so the arms differ in what they learn from, not in how they are
   selected.
5. Each model scored on test_users.csv's true labels; each IPS arm compared with the plain one on the same groups
   (``recsys.evaluation.evaluator.compare``: the per-group difference with its paired bootstrap 95% interval).

Each seed draws its own logged clicks (and shuffle, and swaps); the arms of a seed train on the same log. Writes
bench/position_bias.md and bench/position_bias.json (``--out``). ``--quick`` is a smoke run: 40 training groups,
one seed, 3 training steps; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.position_bias_log import biased_log, click_rates
from bench.position_bias_report import PLAIN, records, render
from recsys.data.contract import CLICKED, GROUP, ITEM, ITEM_ID, POSITION, QUERY, read_clicks
from recsys.defaults import ROOT
from recsys.evaluation.metrics import RANKING_METRICS, bootstrap_interval, group_metrics
from recsys.feedback.interleave import PositionBasedClicks
from recsys.feedback.propensity import from_click_model, write_propensities
from recsys.feedback.swaps import DESIGNS, SWAP, estimate_from_swaps, fit_power_law
from recsys.model.artifact import TRAINING_METRICS_FILE, content_digest

HERE = Path(__file__).resolve().parent
DATA = ROOT / "data" / "bing_news"
SEEDS = (42, 43, 44)
QUICK_GROUPS = 40  # train groups in a --quick run; validation and test keep 20 each
QUICK_FLAGS = ["--max-steps", "3", "--max-length", "32"]
LOG_COLUMNS = (GROUP, QUERY, ITEM, CLICKED, ITEM_ID, POSITION)  # what the biased log keeps: never the true labels

logger = logging.getLogger(__name__)


# -- training and scoring ----------------------------------------------------------------------------------


ARM_FILE = "bench_arm.json"  # beside a trained arm: what it was trained from, so that a rerun can reuse it


def train_arm(flags: list[str], output_dir: Path) -> dict:
    """One run of the default recipe in this process (``bench.results`` does the same), its summary.

    An arm already trained from the same flags and the same files (its ``metrics.json`` written, and
    :data:`ARM_FILE` recording the flags and the digest of every file they name) is reused, not trained again: a
    rerun with more seeds trains only the new ones, and a log simulated with other settings is trained on anew."""
    from bench.common import reset_accelerate
    from finetune.train import main as train

    # The log and propensity files keep their names when the click model's settings change: their contents decide.
    trained_from = {"flags": flags, "files": content_digest([Path(f) for f in flags if Path(f).is_file()])}
    record, metrics = output_dir / ARM_FILE, output_dir / TRAINING_METRICS_FILE
    if record.is_file() and metrics.is_file() and json.loads(record.read_text()) == trained_from:
        logger.info("reusing %s, trained from the same flags and files", output_dir)
        return json.loads(metrics.read_text())
    try:
        summary = train([*flags, "--output-dir", str(output_dir), "--report-to", "none"])
    finally:
        reset_accelerate()
    record.write_text(json.dumps(trained_from, indent=1))
    return summary


def score(model_dir: Path, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    from recsys.scoring.loading import load_scorer

    return load_scorer(str(model_dir)).score_frame(frame)


def subsample(frame: pd.DataFrame, groups: int) -> pd.DataFrame:
    """The first ``groups`` groups that hold a click and a non-click (so that each can be ranked)."""
    ranked = frame.groupby(GROUP, sort=False)[CLICKED].nunique().gt(1)
    keep = ranked.index[ranked][:groups]
    return frame[frame[GROUP].isin(keep)].reset_index(drop=True)


def logging_scores(args: argparse.Namespace, train: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    if args.logging == "random":
        return rng.random(len(train))
    from recsys.scoring.loading import load_scorer

    return load_scorer(args.model_name_or_path or None, log=train).score_frame(train)[0]


def run_seed(
    args: argparse.Namespace, seed: int, frames: dict[str, pd.DataFrame], model: PositionBasedClicks
) -> tuple[dict, dict[str, np.ndarray]]:
    """One seed: its biased log, its arms trained and scored on the test file, each IPS arm against the plain one;
    the result, and each arm's test scores."""
    from recsys.evaluation.evaluator import compare

    rng = np.random.default_rng(seed)
    train, test = frames["train"], frames["test"]
    scores = logging_scores(args, train, rng)
    log = biased_log(train, scores, model, rng, args.swap_share, args.swap_design, args.swap_depth)
    logs = args.models / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_file = logs / f"clicks-seed{seed}.csv"
    log[[c for c in LOG_COLUMNS if c in log.columns]].to_csv(log_file, index=False)
    deepest = int(log[POSITION].max())
    click_model_file = logs / f"propensities-click-model-seed{seed}.csv"
    positions = np.arange(1, deepest + 1)
    write_propensities(
        pd.DataFrame({POSITION: positions, "propensity": from_click_model(model, positions)}), click_model_file
    )

    base = ["--train-file", str(log_file), "--eval-file", str(args.valid), "--seed", str(seed), *args.train_flags]
    arms = {PLAIN: [], "ips (click model)": ["--position-weights", "ips", "--propensity-file", str(click_model_file)]}
    result: dict = {
        "log": {
            "file": log_file.name,
            "rows": len(log),
            "clicks": int(log[CLICKED].sum()),
            "relevant": int(log["relevance"].sum()),
            "swapped_lists": int((log.groupby(GROUP)[SWAP].first() > 0).sum()),
            "click_rates": records(click_rates(log, model)),
        }
    }
    if args.swap_share > 0:
        estimate = estimate_from_swaps(log, item=None, design=args.swap_design, source=log_file.name)
        write_propensities(estimate, logs / f"propensities-estimated-seed{seed}.csv")
        result["estimate"] = {"curve": records(estimate)}
        try:
            eta = fit_power_law(estimate)
        except ValueError as err:  # too few swapped lists to estimate anything: said, and that arm left out
            result["estimate"]["error"] = str(err)
        else:
            result["estimate"]["eta"] = eta
            arms[f"ips (estimated, eta {eta:.2f})"] = ["--position-weights", "ips", "--propensity-eta", f"{eta:.6g}"]

    scored, result["arms"] = {}, {}
    for n, (arm, flags) in enumerate(arms.items()):
        output_dir = args.models / f"arm{n}-seed{seed}"
        summary = train_arm([*base, *flags], output_dir)
        scored[arm] = score(output_dir, test)
        result["arms"][arm] = {"best_step": summary["best_step"], "steps": summary["steps"], "flags": flags}
    for arm, model_scores in scored.items():
        evaluation = compare(test, model_scores, {PLAIN: scored[PLAIN]} if arm != PLAIN else {})
        result["arms"][arm]["test"] = evaluation.model.to_dict()
        if arm != PLAIN:
            result["arms"][arm]["minus_plain"] = {
                k: list(v) for k, v in evaluation.baselines[PLAIN].model_minus_baseline.items()
            }
    return result, {arm: model_scores for arm, (model_scores, _) in scored.items()}


def pooled_differences(test: pd.DataFrame, scores: dict[int, dict[str, np.ndarray]]) -> dict[str, dict]:
    """Each IPS arm minus the plain one over all seeds: per test group, the difference averaged over the seeds,
    then its mean with a bootstrap 95% interval over the groups (the seeds share the test groups, so the groups,
    not the seed-group pairs, are the units resampled)."""

    def per_group(model_scores: np.ndarray) -> pd.DataFrame:
        return group_metrics(test, model_scores).set_index(GROUP)[list(RANKING_METRICS)]

    arms = [arm for arm in next(iter(scores.values())) if arm != PLAIN]
    plain = {seed: per_group(arms_scores[PLAIN]) for seed, arms_scores in scores.items()}
    pooled = {}
    for arm in arms:
        seeds = [seed for seed in scores if arm in scores[seed]]
        per_seed = [per_group(scores[seed][arm]) - plain[seed] for seed in seeds]
        mean = sum(per_seed) / len(per_seed)
        pooled[arm] = {
            "seeds": seeds,
            "groups": len(mean),
            **{k: [float(mean[k].mean()), *bootstrap_interval(mean[k].to_numpy())] for k in ("auc", "ndcg@10")},
        }
    return pooled


# -- the command -------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.position_bias", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", type=Path, default=DATA / "train.csv", help="labelled log the clicks come from")
    parser.add_argument("--valid", type=Path, default=DATA / "valid.csv", help="validation, by its true labels")
    parser.add_argument("--test", type=Path, default=DATA / "test_users.csv", help="held-out file, true labels")
    parser.add_argument("--logging", choices=("zero-shot", "random"), default="zero-shot", help="the logged ranking")
    parser.add_argument("--eta", type=float, default=1.0, help="click model: position r is examined with 1/r^eta")
    parser.add_argument("--p-relevant", type=float, default=0.9, help="click model: a seen relevant item's click")
    parser.add_argument("--p-irrelevant", type=float, default=0.05, help="click model: a seen irrelevant item's")
    parser.add_argument("--swap-share", type=float, default=0.0, help="share of lists shown with a pair swapped")
    parser.add_argument("--swap-design", choices=DESIGNS, default="adjacent", help="k and k+1, or 1 and k")
    parser.add_argument("--swap-depth", type=int, default=10, help="swaps stay within the top this many positions")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--model-name-or-path", default="", help="base model (default: training's)")
    parser.add_argument("--train-args", default="", help="more finetune.train flags for every arm, one string")
    parser.add_argument("--models", type=Path, default=Path("models/position_bias"), help="logs and models go here")
    parser.add_argument("--out", type=Path, default=HERE / "position_bias.md", help="the report; .json beside it")
    parser.add_argument("--quick", action="store_true", help="smoke run: 40 groups, seed 42, 3 training steps")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    model = PositionBasedClicks(args.p_relevant, args.p_irrelevant, args.eta)
    frames = {"train": read_clicks(args.train), "valid": read_clicks(args.valid), "test": read_clicks(args.test)}
    args.train_flags = shlex.split(args.train_args)
    if args.model_name_or_path:
        args.train_flags += ["--model-name-or-path", args.model_name_or_path]
    if args.quick:
        args.seeds = args.seeds[:1]
        args.train_flags += QUICK_FLAGS
        frames = {
            name: subsample(frame, QUICK_GROUPS if name == "train" else QUICK_GROUPS // 2)
            for name, frame in frames.items()
        }
        args.valid = args.models / "logs" / "valid-quick.csv"
        args.valid.parent.mkdir(parents=True, exist_ok=True)
        frames["valid"].to_csv(args.valid, index=False)
    seeds, scores = {}, {}
    for seed in args.seeds:
        seeds[seed], scores[seed] = run_seed(args, seed, frames, model)
    swaps = "none"
    if args.swap_share > 0:
        swaps = f"{args.swap_share:.0%} of the lists, one {args.swap_design} pair within the top {args.swap_depth}"
    run = {
        "command": " ".join(["python -m bench.position_bias", *(sys.argv[1:] if argv is None else argv)]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.machine(),
        "minutes": (time.perf_counter() - started) / 60,
        "seeds": args.seeds,
        "train": args.train.name,
        "valid": args.valid.name,
        "test": args.test.name,
        "logging": "the zero-shot base model's order" if args.logging == "zero-shot" else "a seeded shuffle",
        "click_model": model.parameters(),
        "click_model_text": model.describe(),
        "swaps": swaps,
        "train_flags": f" with `{' '.join(args.train_flags)}`" if args.train_flags else "",
        "quick": args.quick,
    }
    results = {"run": run, "seeds": seeds, "pooled": pooled_differences(frames["test"], scores)}
    from bench.common import write_report  # with Accelerate, which the pieces tested alone do not need

    write_report(args.out, render(results), results)
    return results


if __name__ == "__main__":
    main()
