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
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.curve_logs import LOGS
from bench.curve_points import SEEDS, TIME_BUDGET, finished_points, run_curve
from bench.curve_report import draw, render, summarize
from recsys.defaults import ROOT

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Outputs:
    """Where the run writes its files."""

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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
    return args


def describe_run(args: argparse.Namespace, argv: list[str] | None) -> dict:
    """curve.json's ``run``: the command, the date, the machine, and each log's pool and held-out file."""
    return {
        "command": " ".join(["python -m bench.curve", *(sys.argv[1:] if argv is None else argv)]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only",
        "time_budget": args.time_budget,
        "pools": {log: str(LOGS[log].pool.relative_to(ROOT)) for log in args.logs},
        "held_out": {log: str(LOGS[log].held_out.relative_to(ROOT)) for log in args.logs},
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    outputs = Outputs.into(args.out_dir)
    for path in (outputs.json, outputs.chart):
        path.parent.mkdir(parents=True, exist_ok=True)

    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        if args.fresh:
            outputs.runs.unlink(missing_ok=True)
        points = finished_points(args, outputs.runs) if args.finished_only else run_curve(args, outputs.runs)
        results = {"run": describe_run(args, argv), "points": points, "summary": summarize(points)}
        outputs.json.write_text(json.dumps(results, indent=2) + "\n")
    draw(results, outputs.chart)
    report = render(results, os.path.relpath(outputs.chart, outputs.markdown.parent))
    outputs.markdown.write_text(report)
    print(report)
    return results


if __name__ == "__main__":
    main()
