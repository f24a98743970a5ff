"""The learning curve: held-out group AUC against the number of training clicks, on both bundled logs.

    python -m bench.curve [--logs bing_news movielens] [--fractions F ...] [--seeds 42 43 44]
                          [--time-budget 30] [--work-dir models/curve] [--full-models models/results]
                          [--fresh]                                                  # or: make curve
    python -m bench.curve --from-json bench/curve.json      # rewrite curve.md and docs/curve.png only
    python -m bench.curve --finished-only                   # the curve of the points finished so far, training none

Does a log hold enough clicks for fine-tuning to pay? For each log, seed and fraction, the seed shuffles
the pool's users and the first ceil(fraction × users) of them train the default recipe
(``python -m finetune.train``, early-stopping on the log's valid.csv). The model, the popularity baseline
fitted on the same users' clicks, and the zero-shot base model are then scored on the log's held-out users.
Within a seed the subsets are nested: each fraction's users include the smaller fractions'.

Pools: Bing News' train.csv, whose groups are one user each; for MovieLens, every chunk of 10 ratings of
the bundled split's training users (``data/movielens/make_contract.py --training-pool``), not train.csv,
which keeps each user's last 2 chunks only. That pool is built once into bench/curve-data/ (not in git;
delete it to build it again).

Fractions, unless --fractions names them for every log: Bing News 10%, 25%, 50% and 100% of its 302 users;
MovieLens 2.5% and 5% of its 394 users (about 600 and 1,100 clicks; the bundled train.csv, which
``make results`` measures, holds 4,311). MovieLens' pool holds eight times train.csv's rows: on 2 CPU cores
a point on 2.5% of it takes about 10 minutes; 10% of it is as large as train.csv (7,230 rows for seed 42,
against 7,660), whose runs take 14 to 26 minutes in ``make results``, and larger shares run into the
30-minute budget, where they measure the budget rather than the data (``--logs movielens --fractions 0.1
0.25`` on a GPU, or with ``--time-budget 0``).

A pool that is the bundled train.csv (Bing News) at fraction 1 is the very run that ``python -m bench.results``
trains with the same seed: --full-models DIR scores its model DIR/<log>-seed<seed> instead of training it again,
once its clicktune.json shows the same train file, eval file and seed.

Each finished point is appended to curve_runs.jsonl, so that a stopped run goes on where it stopped;
--fresh starts over. Writes bench/curve.json, bench/curve.md and docs/curve.png (--out-dir: all four
files into one other folder).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from bench.common import DATA, DATASETS, reset_accelerate
from finetune.data import USER
from finetune.train import main as train
from recsys.data.contract import CLICKED, GROUP, read_clicks
from recsys.defaults import ROOT
from recsys.evaluation.evaluator import baseline_scores, compare
from recsys.model.artifact import METADATA_FILE, TRAINING_METRICS_FILE
from recsys.scoring.loading import load_scorer, zero_shot_of

HERE = Path(__file__).resolve().parent
FRACTIONS = (0.1, 0.25, 0.5, 1.0)  # Bing News'
MOVIELENS_FRACTIONS = (0.025, 0.05)
SEEDS = (42, 43, 44)  # bench.results' seeds: its models are the whole-pool points (--full-models)
TIME_BUDGET = 30.0  # minutes per training run: finetune.config's default
MOVIELENS_POOL = HERE / "curve-data" / "movielens_train_all.csv"
LINES = {"fine_tuned": "fine-tuned", "popularity": "popularity", "zero_shot": "zero-shot"}  # key -> label
COLORS = {"fine_tuned": "#e8590c", "popularity": "#1c7ed6", "zero_shot": "#868e96"}


def make_contract() -> ModuleType:
    """data/movielens/make_contract.py, a script rather than a package module."""
    spec = importlib.util.spec_from_file_location("movielens_make_contract", DATA / "movielens" / "make_contract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_movielens_pool(path: Path) -> None:
    """Every chunk of the MovieLens training users' timelines, written aside and then renamed into ``path``:
    a stopped build leaves no half a pool to train on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    make_contract().main(["--training-pool", str(partial)])
    partial.replace(path)


@dataclass(frozen=True)
class Log:
    pool: Path  # the training users' clicks that the subsets are drawn from
    user: str  # the pool's column that names each row's user
    valid: Path  # training early-stops on it
    held_out: Path  # the curve's y
    fractions: tuple[float, ...]  # of the pool's users, unless --fractions names others
    build: Callable[[Path], None] | None = None  # how to make the pool where it is missing

    def pool_file(self) -> Path:
        if not self.pool.is_file() and self.build is not None:
            self.build(self.pool)
        return self.pool


BING_NEWS, MOVIELENS = DATASETS["bing_news"], DATASETS["movielens"]
LOGS = {
    "bing_news": Log(
        pool=BING_NEWS.path("train"),
        user=GROUP,  # the bundled sample's groups are one user each
        valid=BING_NEWS.path("valid"),
        held_out=BING_NEWS.path("test_users"),
        fractions=FRACTIONS,
    ),
    "movielens": Log(
        pool=MOVIELENS_POOL,
        user=USER,
        valid=MOVIELENS.path("valid"),
        held_out=MOVIELENS.path("test"),
        fractions=MOVIELENS_FRACTIONS,
        build=build_movielens_pool,
    ),
}


def subset_size(fraction: float, users: int) -> int:
    """ceil(fraction × users), without float noise: 0.07 × 100 is 7 users, not 8."""
    return math.ceil(round(fraction * users, 9))


def user_subsets(frame: pd.DataFrame, user: str, fractions: Sequence[float], seed: int) -> dict[float, pd.DataFrame]:
    """Each fraction's rows: those of the first ceil(fraction × users) users of one seeded shuffle of the users.

    Users come whole, and the subsets are nested: a smaller fraction's users are a larger one's first ones.
    """
    users = np.random.default_rng(seed).permutation(np.sort(frame[user].unique()))
    return {f: frame[frame[user].isin(users[: subset_size(f, len(users))])] for f in fractions}


# -- one point of the curve ---------------------------------------------------------------------------------


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


# -- summary, table and chart -------------------------------------------------------------------------------


def mean_sd(values: Sequence[float]) -> dict:
    """The mean and the sample standard deviation (None for one value), and n."""
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"mean": float(np.mean(values)), "sd": sd, "n": len(values)}


def summarize(points: list[dict]) -> list[dict]:
    """Per (log, fraction), in the points' order: users, rows and clicks, and each line's AUC, over the seeds."""
    cells: dict[tuple[str, float], list[dict]] = {}
    for point in points:
        cells.setdefault((point["log"], point["fraction"]), []).append(point)
    return [
        {
            "log": log,
            "fraction": fraction,
            "n": len(cell),
            **{key: mean_sd([p[key] for p in cell]) for key in ("users", "rows", "clicks")},
            "auc": {line: mean_sd([p["auc"][line] for p in cell]) for line in LINES},
        }
        for (log, fraction), cell in cells.items()
    ]


def cell(stat: dict) -> str:
    return f"{stat['mean']:.3f} ± {stat['sd']:.3f}" if stat["sd"] is not None else f"{stat['mean']:.3f} (1 seed)"


def brief_ending(point: dict) -> str:
    """finetune.train's ending up to its first colon or semicolon, with the best step."""
    ending = point["ending"].split(":")[0].split(";")[0]
    return f"{ending}; best step {point['best_step']} of {point['steps']}"


def render(results: dict, chart: str) -> str:
    """curve.md from curve.json's form; ``chart`` is the chart's path relative to the Markdown file."""
    run, summaries = results["run"], summarize(results["points"])
    sections = []
    for log in dict.fromkeys(point["log"] for point in results["points"]):
        rows = sorted((s for s in summaries if s["log"] == log), key=lambda s: s["fraction"])
        seeds = sorted({p["seed"] for p in results["points"] if p["log"] == log})
        lines = [
            f"## {log}",
            "",
            f"Pool: {run['pools'][log]}; held out: {run['held_out'][log]}. Mean ± sample sd over "
            f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}.",
            "",
            "| fraction of users | users | training clicks (mean) | fine-tuned | popularity | zero-shot |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {s['fraction']:g} | {s['users']['mean']:.0f} | {s['clicks']['mean']:.0f} | "
            + " | ".join(cell(s["auc"][line]) for line in LINES)
            + " |"
            for s in rows
        ]
        lines += ["", "How each training run ended:", ""]
        lines += [
            f"- fraction {p['fraction']:g}, seed {p['seed']}: {p['clicks']} clicks; {brief_ending(p)}; "
            + (f"{p['seconds'] / 60:.1f} min" if p["trained_by"] == "bench.curve" else "make results' model, scored")
            for p in sorted(results["points"], key=lambda p: (p["fraction"], p["seed"]))
            if p["log"] == log
        ]
        sections.append("\n".join(lines) + "\n")
    return (
        "# Learning curve: held-out group AUC against training clicks\n\n"
        f"Command: `{run['command']}`, written on {run['date']} ({run['machine']}, {run['threads']} threads, "
        f"{run['device']}); training time budget {run['time_budget']:g} min per run. The points took "
        f"{sum(p['seconds'] for p in results['points']) / 60:.0f} min in all.\n\n"
        "Each point trains the default recipe on the first ceil(fraction × users) users of a seeded shuffle of the "
        "pool's users (nested across fractions within a seed), early-stopping on the log's valid.csv; popularity is "
        "fitted on the same users' clicks; zero-shot is the base model before any training.\n\n"
        f"![Held-out group AUC against training clicks]({chart})\n\n" + "\n".join(sections)
    )


def draw(results: dict, path: Path) -> None:
    """One panel per log: each line's mean held-out AUC against the mean training clicks, a band of ± one sample sd;
    the x ticks are the fractions' click counts."""
    summaries = summarize(results["points"])
    logs = list(dict.fromkeys(s["log"] for s in summaries))
    figure = Figure(figsize=(5.5 * len(logs), 4.4), layout="constrained")
    for axes, log in zip(figure.subplots(1, len(logs), squeeze=False)[0], logs, strict=True):
        rows = sorted((s for s in summaries if s["log"] == log), key=lambda s: s["clicks"]["mean"])
        clicks = [s["clicks"]["mean"] for s in rows]
        for line, label in LINES.items():
            mean = np.array([s["auc"][line]["mean"] for s in rows])
            sd = np.array([s["auc"][line]["sd"] or 0.0 for s in rows])
            axes.plot(clicks, mean, "o-", color=COLORS[line], label=label)
            axes.fill_between(clicks, mean - sd, mean + sd, color=COLORS[line], alpha=0.2, linewidth=0)
        axes.set_xscale("log")
        axes.set_xticks(clicks, [f"{c:,.0f}" for c in clicks])
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set(xlabel="training clicks (mean over seeds, log scale)", ylabel="held-out group AUC", title=log)
    seeds = max(s["n"] for s in summaries)
    figure.suptitle(f"Held-out group AUC; bands: mean ± 1 sample sd over {seeds} seed{'s' * (seeds > 1)}")
    figure.legend(*axes.get_legend_handles_labels(), loc="outside lower center", ncols=len(LINES))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


# -- the run ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outputs:
    json: Path
    markdown: Path
    runs: Path  # the finished points, one JSON line each
    chart: Path

    @classmethod
    def into(cls, folder: Path | None) -> Outputs:
        """bench/ and docs/ by default; all four in ``folder`` where given."""
        if folder is None:
            return cls(HERE / "curve.json", HERE / "curve.md", HERE / "curve_runs.jsonl", ROOT / "docs" / "curve.png")
        return cls(folder / "curve.json", folder / "curve.md", folder / "curve_runs.jsonl", folder / "curve.png")


def fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"a fraction of the users is in (0, 1], got {text}")
    return value


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())
    return f"{cpu}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", nargs="+", default=list(LOGS), choices=list(LOGS))
    parser.add_argument("--fractions", type=fraction, nargs="+", help="of the pool's users, for every log")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--time-budget", type=float, default=TIME_BUDGET, help="minutes per training run (0: none)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "models" / "curve", help="subsets and models")
    parser.add_argument("--out-dir", type=Path, help="write curve.json, .md, _runs.jsonl and .png here instead")
    parser.add_argument(
        "--full-models",
        type=Path,
        help="bench.results' models folder: its whole-pool runs of the same seeds are scored, not trained again",
    )
    parser.add_argument("--fresh", action="store_true", help="forget the finished points in curve_runs.jsonl")
    parser.add_argument("--from-json", type=Path, help="only draw curve.md and curve.png from this curve.json")
    parser.add_argument(
        "--finished-only",
        action="store_true",
        help="train nothing: write the curve of the points of --logs and --seeds that curve_runs.jsonl holds",
    )
    args = parser.parse_args(argv)
    args.fractions, args.seeds = list(dict.fromkeys(args.fractions or ())), list(dict.fromkeys(args.seeds))
    outputs = Outputs.into(args.out_dir)
    for path in (outputs.json, outputs.chart):
        path.parent.mkdir(parents=True, exist_ok=True)

    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        if args.fresh:
            outputs.runs.unlink(missing_ok=True)
        points = finished_points(args, outputs.runs) if args.finished_only else run_curve(args, outputs.runs)
        run = {
            "command": " ".join(["python -m bench.curve", *(sys.argv[1:] if argv is None else argv)]),
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
            "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only",
            "time_budget": args.time_budget,
            "pools": {log: str(LOGS[log].pool.relative_to(ROOT)) for log in args.logs},
            "held_out": {log: str(LOGS[log].held_out.relative_to(ROOT)) for log in args.logs},
        }
        results = {"run": run, "points": points, "summary": summarize(points)}
        outputs.json.write_text(json.dumps(results, indent=2) + "\n")
    draw(results, outputs.chart)
    report = render(results, os.path.relpath(outputs.chart, outputs.markdown.parent))
    outputs.markdown.write_text(report)
    print(report)
    return results


if __name__ == "__main__":
    main()
