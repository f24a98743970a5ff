"""The learning curve's points: for one log, seed and fraction, train the default recipe on the subset's users
(or take bench.results' model of the same run), and score it, the popularity baseline fitted on the same clicks and
the zero-shot base model on the log's held-out users. Each finished point is appended to a JSON-lines file, so that
a stopped run goes on where it stopped."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import pandas as pd

from bench.common import reset_accelerate
from bench.curve_logs import LOGS, user_subsets
from finetune.train import main as train
from recsys.data.contract import CLICKED, read_clicks
from recsys.evaluation.evaluator import baseline_scores, compare
from recsys.model.artifact import METADATA_FILE, TRAINING_METRICS_FILE
from recsys.scoring.loading import load_scorer, zero_shot_of

SEEDS = (42, 43, 44)  # bench.results' seeds: its models are the whole-pool points (--full-models)
TIME_BUDGET = 30.0  # minutes per training run: finetune.config's default
LINES = {"fine_tuned": "fine-tuned", "popularity": "popularity", "zero_shot": "zero-shot"}  # key -> label


def held_out_aucs(model_dir: Path, held_out: pd.DataFrame, subset: pd.DataFrame) -> dict[str, float]:
    """Group AUC on the held-out users of the model, of popularity fitted on ``subset``, and of the zero-shot base
    model (read at the model's text length)."""
    scorer = load_scorer(str(model_dir))
    scored = baseline_scores(held_out, subset, zero_shot=zero_shot_of(scorer))
    baselines = {name: scored[name] for name in ("popularity", "zero_shot")}
    evaluation = compare(held_out, scorer.score_frame(held_out), baselines)
    aucs = {name: result.metrics.values["auc"] for name, result in evaluation.baselines.items()}
    return {"fine_tuned": evaluation.model.values["auc"], **aucs}


def full_model(log: str, seed: int, fraction: float, args: argparse.Namespace) -> Path | None:
    """bench.results' model of this point, where it is the same run: the whole bundled train.csv, same eval file and
    seed, and no other time budget than the default (those runs end long before it)."""
    if args.full_models is None or fraction != 1.0 or args.time_budget != TIME_BUDGET:
        return None
    folder = args.full_models / f"{log}-seed{seed}"
    if not (folder / METADATA_FILE).is_file() or not (folder / TRAINING_METRICS_FILE).is_file():
        return None
    training = json.loads((folder / METADATA_FILE).read_text())["training"]
    same = [
        Path(training["train_file"]).resolve() == LOGS[log].pool.resolve(),
        Path(training["eval_file"]).resolve() == LOGS[log].valid.resolve(),
        training["seed"] == seed,
    ]
    return folder if all(same) else None


def run_point(log: str, seed: int, fraction: float, subset: pd.DataFrame, args: argparse.Namespace) -> dict:
    """Train the default recipe on ``subset`` (or take bench.results' same run), score it on the held-out users,
    and delete the model it trained."""
    started = time.perf_counter()
    folder = args.work_dir / log / f"seed{seed}-fraction{fraction:g}"
    folder.mkdir(parents=True, exist_ok=True)
    subset_file, model_dir = folder / "train.csv", folder / "model"
    subset.to_csv(subset_file, index=False)
    reused = full_model(log, seed, fraction, args)
    if reused is not None:
        print(f"  the whole pool with seed {seed} is bench.results' run: scoring {reused}", flush=True)
        model_dir = reused
    else:
        if model_dir.exists():  # a stopped run's half-trained folder
            shutil.rmtree(model_dir)
        flags = ["--train-file", str(subset_file), "--eval-file", str(LOGS[log].valid), "--output-dir", str(model_dir)]
        flags += ["--seed", str(seed), "--time-budget", f"{args.time_budget:g}", "--report-to", "none"]
        train(flags)
        reset_accelerate()
    summary = json.loads((model_dir / TRAINING_METRICS_FILE).read_text())
    aucs = held_out_aucs(model_dir, read_clicks(LOGS[log].held_out), read_clicks(subset_file))
    if reused is None:
        shutil.rmtree(model_dir)
    return {
        "log": log,
        "seed": seed,
        "fraction": fraction,
        "time_budget": args.time_budget,
        "users": int(subset[LOGS[log].user].nunique()),
        "rows": len(subset),
        "clicks": int(subset[CLICKED].astype(int).sum()),
        "auc": aucs,
        "steps": summary["steps"],
        "best_step": summary["best_step"],
        "ending": summary["ending"],
        "seconds": round(time.perf_counter() - started, 1),
        "trained_by": "bench.results" if reused is not None else "bench.curve",
    }


def point_key(point: dict) -> tuple:
    return point["log"], point["seed"], point["fraction"], point["time_budget"]


def read_points(runs: Path) -> dict[tuple, dict]:
    lines = runs.read_text().splitlines() if runs.is_file() else []
    return {point_key(point): point for point in map(json.loads, filter(None, lines))}


def run_curve(args: argparse.Namespace, runs: Path) -> list[dict]:
    """Every (log, seed, fraction) point, from ``runs`` where it is there, else trained and appended to it."""
    done = read_points(runs)
    points = []
    fractions = {log: args.fractions or LOGS[log].fractions for log in args.logs}
    total = len(args.seeds) * sum(map(len, fractions.values()))
    for log in args.logs:
        pool = pd.read_csv(LOGS[log].pool_file(), dtype=str, keep_default_na=False)  # text as written
        for seed in args.seeds:
            for fraction, subset in user_subsets(pool, LOGS[log].user, fractions[log], seed).items():
                key = (log, seed, fraction, args.time_budget)
                where = f"[{len(points) + 1}/{total}] {log}, seed {seed}, fraction {fraction:g}"
                if key in done:
                    print(f"{where}: done before (in {runs})", flush=True)
                    points.append(done[key])
                    continue
                print(f"{where}: training on {subset[LOGS[log].user].nunique()} users, {len(subset)} rows", flush=True)
                point = run_point(log, seed, fraction, subset, args)
                with runs.open("a") as handle:
                    handle.write(json.dumps(point) + "\n")
                aucs = ", ".join(f"{LINES[k]} {v:.3f}" for k, v in point["auc"].items())
                print(f"{where}: {point['clicks']} clicks; held-out AUC {aucs}; {point['seconds']:.0f} s", flush=True)
                points.append(point)
    return points


def finished_points(args: argparse.Namespace, runs: Path) -> list[dict]:
    """The finished points of ``args``' logs and seeds at its time budget, in run order, training none: a curve of
    what a stopped run measured."""
    order = {log: i for i, log in enumerate(args.logs)}
    points = [
        p
        for p in read_points(runs).values()
        if p["log"] in order and p["seed"] in args.seeds and p["time_budget"] == args.time_budget
        if not args.fractions or p["fraction"] in args.fractions
    ]
    if not points:
        raise SystemExit(f"{runs}: no finished point of {', '.join(args.logs)} to draw; run without --finished-only")
    return sorted(points, key=lambda p: (order[p["log"]], p["seed"], p["fraction"]))
