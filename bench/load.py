"""Load and crash test of the running app: concurrent API clients, then a SIGKILL mid-load and a restart.

    python -m bench.load [--clients 16] [--requests 25] [--items 100] [--kill-after 200 | 30s]   # or: make load
    python -m bench.load [--bomb-clients 8] [--bomb-requests 10] [--bomb-rows 20000000] [--bomb-columns 600000]

Starts ``python app.py`` itself (its own port, a fresh FEEDBACK_DIR in a temporary folder; the
model of ``models/clicktune`` where it was trained, else the zero-shot base model). Each of
``--clients`` threads holds one ``gradio_client.Client`` (one Gradio session) and sends
``--requests`` times: a ``/rank`` of ``--items`` pasted Bing News titles (``test_users.csv``) for
one of its contexts, then a ``/feedback`` with one to three items of the returned table marked.
Three phases on one database:

1. load: every client's requests; errors, p50/p95 latency per endpoint, the app's peak memory.
2. load again, and the app is SIGKILLed after ``--kill-after`` acknowledged feedbacks (or seconds,
   ``30s``); it is restarted on the same FEEDBACK_DIR.
3. after the restart: ``--after-restart`` more requests a client, on fresh sessions.
4. upload bombs: ``--bomb-clients`` clients rank (``--bomb-requests`` each) without bombs, then again
   beside a bomber client that uploads, one after another until they are done, a Parquet file of
   ``--bomb-rows`` rows of one dictionary-encoded string (zstd: about 80 KB) and a CSV file whose
   header has ``--bomb-columns`` columns (about 5 MB). Every bomb must be refused; the ranking
   clients' p95 with the bombs must stay within 2× of theirs without; the app's peak memory while
   the bombs fly is reported. Then one client ranks the largest upload the limits accept (as many
   items and columns as they allow, just under MAX_UPLOAD_MB): the memory it adds is the
   per-request ceiling.

After each phase the SQLite store is read directly: every acknowledged list must be stored with
exactly the marks that were sent (none lost, none changed), every stored list whole (positions
1..n of a list a client sent), and ``PRAGMA integrity_check`` ok. Errors of requests cut off by
the kill are counted apart; any other error, and any failed check, makes the exit code 1.
Writes the report to bench/load.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.load_bombs import (
    Bomb,
    Bomber,
    BombReport,
    bomb_lines,
    csv_bomb,
    largest_upload,
    measure_ceiling,
    parquet_bomb,
)
from bench.load_clients import MAX_MARKS, Feedback, Load, Phase, Request, plan_requests, quantiles
from bench.load_store import StoreCheck, check_store
from bench.served_app import Api, App, free_port
from recsys.defaults import DB_FILE, ROOT
from recsys.model.artifact import TRAINING_METRICS_FILE
from recsys.serving.settings import AppConfig, Limits

HERE = Path(__file__).resolve().parent
TRAINED_MODEL = ROOT / "models" / "clicktune"


# -- the run --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """The phases of load on one app and one feedback store: what each sent, and the store checked after it."""

    app: App
    api: Api
    args: argparse.Namespace
    downloads: Path
    store: Path
    starts: list[tuple[float, float]]  # per start of the app: seconds until it answered, its peak RSS
    phases: list[Phase] = field(default_factory=list)
    checks: list[StoreCheck] = field(default_factory=list)
    sent: list[Feedback] = field(default_factory=list)

    def load(self, name: str, plan: list[list[Request]], kill: tuple[float, str] | None = None) -> Phase:
        phase = Load(self.app, self.api, Phase(name), self.args.timeout, self.downloads, self.args.seed).run(plan, kill)
        print(f"{name}: {len(phase.acknowledged)} feedbacks acknowledged in {phase.seconds:.0f} s", flush=True)
        self.phases.append(phase)
        self.sent += phase.feedback
        return phase

    def check(self) -> None:
        """The store against every feedback sent so far."""
        self.checks.append(check_store(self.store, self.sent))

    def restart(self) -> None:
        self.starts.append((self.app.start(self.args.start_timeout), self.app.peak_rss_mib()))


def run_phases(run: Run, plans: list[list[list[Request]]], kill_after: tuple[float, str]) -> None:
    """Load; load with a SIGKILL and a restart on the same store; load after the restart."""
    run.load("load", plans[0])
    run.check()
    run.load("load + SIGKILL", plans[1], kill_after)
    if not run.phases[1].killed_after:
        raise SystemExit(f"the second phase ended before the kill ({kill_after}): lower --kill-after")
    run.restart()
    run.check()
    run.load("after restart", plans[2])
    run.check()


def run_bomb_phases(run: Run, plans: list[list[list[Request]]], bombs: list[Bomb], largest: Path) -> BombReport:
    """Ranking clients alone, then beside the bomber; then the memory of ranking the largest accepted upload."""
    app, args = run.app, run.args
    app.reset_peak()
    alone = run.load("ranking alone", plans[0])
    run.check()
    app.reset_peak()
    rss_before = app.rss_mib()
    with Bomber(app, run.api, bombs, args.timeout, run.downloads) as bomber:
        bombed = run.load("ranking + bombs", plans[1])
    peak = app.peak_rss_mib()
    run.check()
    ceiling = (*measure_ceiling(app, run.api, largest, args.timeout, run.downloads), largest.stat().st_size)
    app.stop()
    return BombReport(args.bomb_clients, alone, bombed, bombs, bomber.errors, rss_before, peak, ceiling)


def model_folder(args: argparse.Namespace, work: Path) -> tuple[Path, str]:
    """The folder the app serves, and how the report names its model."""
    if args.zero_shot or args.model_dir is None:
        model_dir = work / "no-model"
        model_dir.mkdir()  # an empty folder: the app serves the zero-shot base model
    elif args.model_dir.is_dir():
        model_dir = args.model_dir.resolve()
    else:
        raise SystemExit(f"--model-dir {args.model_dir}: no such folder")
    shown = model_dir.relative_to(ROOT) if model_dir.is_relative_to(ROOT) else model_dir
    model = f"`{shown}`" if any(model_dir.iterdir()) else "the zero-shot base model (an empty MODEL_DIR)"
    return model_dir, model


def make_uploads(args: argparse.Namespace, work: Path, limits: Limits) -> tuple[list[Bomb], Path]:
    """The bombs and the largest upload the limits accept, each checked to be one that Gradio takes in."""
    bombs = [
        Bomb(f"Parquet: {args.bomb_rows:,} rows of one dictionary-encoded string, zstd", work / "bomb.parquet"),
        Bomb(f"CSV: a header of {args.bomb_columns:,} columns", work / "bomb.csv"),
    ]
    parquet_bomb(bombs[0].path, args.bomb_rows)
    csv_bomb(bombs[1].path, args.bomb_columns)
    largest = largest_upload(work / "largest.csv", limits)
    for path in (*(bomb.path for bomb in bombs), largest):
        if path.stat().st_size > limits.max_upload_mb * 2**20:
            raise SystemExit(f"{path.name} is over MAX_UPLOAD_MB ({limits.max_upload_mb:g}): Gradio would refuse it")
    return bombs, largest


def plan_phases(args: argparse.Namespace) -> list[list[list[Request]]]:
    """The requests of the five phases: load, load + SIGKILL, after restart, ranking alone, ranking + bombs."""
    counts = [args.requests, args.requests, args.after_restart, args.bomb_requests, args.bomb_requests]
    clients = [args.clients] * 3 + [args.bomb_clients] * 2
    return plan_requests(list(zip(counts, clients, strict=True)), args.items, args.seed)


# -- the report -----------------------------------------------------------------------------------------------


def phase_row(phase: Phase, check: StoreCheck) -> str:
    ranks, feedbacks = phase.latencies["/rank"], phase.latencies["/feedback"]
    return (
        f"| {phase.name} | {len(ranks)} | {len(feedbacks)} | {len(phase.errors)} | {phase.cut_off} | "
        f"{quantiles(ranks)} | {quantiles(feedbacks)} | {len(ranks) / phase.seconds:.1f} | "
        f"{phase.peak_rss_mib:.0f} | {check.lost_lists} of {check.acknowledged_lists} |"
    )


def report(args: argparse.Namespace, model: str, run: Run, bombs: BombReport, limits: Limits) -> str:
    phases, checks = run.phases, run.checks
    errors = [e for phase in phases for e in phase.errors] + bombs.errors
    common = defaultdict(int)
    for error in errors:
        common[error] += 1
    lines = [
        f"{args.clients} clients × {args.requests} ranks of {args.items} items, each followed by a feedback with "
        f"1–{MAX_MARKS} marks; model: {model}; in the last two phases {args.bomb_clients} clients × "
        f"{args.bomb_requests}. At each start the app answered after "
        + " and ".join(f"{seconds:.0f} s (peak RSS {rss:.0f} MiB)" for seconds, rss in run.starts)
        + ".",
        "",
        "| phase | ranks | feedbacks | errors | cut off by the kill | rank p50 / p95 s | feedback p50 / p95 s "
        "| ranks/s | peak RSS MiB | acknowledged lists lost |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(phase_row(phase, check) for phase, check in zip(phases, checks, strict=True)),
        "",
        f"SIGKILL after {phases[1].killed_after}; the app restarted on the same FEEDBACK_DIR.",
        "",
        *(f"- {phase.name}: {check.describe()}" for phase, check in zip(phases, checks, strict=True)),
        "",
        *bomb_lines(bombs, limits),
        "",
        f"Errors (goal 0): {len(errors)}" + "".join(f"\n- {n} × {e}" for e, n in sorted(common.items())),
        f"Result: {'PASS' if not errors and all(c.ok for c in checks) and bombs.ok else 'FAIL'}",
    ]
    return "\n".join(lines)


def machine() -> str:
    memory = ""
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
        memory = f", {total_kib / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    system = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores{memory}"
    return f"{system}, Python {platform.python_version()}"


def write_report(out: Path, text: str, argv: list[str] | None, minutes: float) -> None:
    command = " ".join(["python -m bench.load", *(argv if argv is not None else sys.argv[1:])])
    out.write_text(
        f"# Load and crash test of the app\n\nCommand: `{command}`, run on {time.strftime('%Y-%m-%d')} "
        f"({machine()}); {minutes:.1f} min in all.\n\n{text}\n"
    )
    print(text)


# -- main -----------------------------------------------------------------------------------------------------


def parse_kill_after(value: str) -> tuple[float, str]:
    """``30s``: seconds into the second phase; ``200``: after that many acknowledged feedbacks."""
    try:
        return (float(value[:-1]), "s") if value.endswith("s") else (int(value), "acks")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give a count of acknowledged feedbacks (200) or seconds (30s)"
        ) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16, help="concurrent gradio_client sessions")
    parser.add_argument("--requests", type=int, default=25, help="rank + feedback requests per client and phase")
    parser.add_argument("--items", type=int, default=100, help="candidates per rank request")
    parser.add_argument(
        "--kill-after",
        type=parse_kill_after,
        help="SIGKILL the app after this many acknowledged feedbacks of the second phase, or seconds (30s); "
        "default: half of the phase's feedbacks",
    )
    parser.add_argument("--after-restart", type=int, default=2, help="requests per client after the restart")
    parser.add_argument("--bomb-clients", type=int, default=8, help="ranking clients beside the bomber")
    parser.add_argument("--bomb-requests", type=int, default=10, help="their requests, without and with the bombs")
    parser.add_argument("--bomb-rows", type=int, default=20_000_000, help="rows of the Parquet bomb")
    parser.add_argument("--bomb-columns", type=int, default=600_000, help="columns of the CSV bomb's header")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=TRAINED_MODEL if (TRAINED_MODEL / TRAINING_METRICS_FILE).is_file() else None,
        help="the model to serve (default: models/clicktune where it was trained, else the zero-shot base model)",
    )
    parser.add_argument("--zero-shot", action="store_true", help="serve the zero-shot base model")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a request may take")
    parser.add_argument("--start-timeout", type=float, default=300, help="seconds the app may take to answer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "load.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kill_after = args.kill_after or (max(1, args.clients * args.requests // 2), "acks")
    work = Path(tempfile.mkdtemp(prefix="clicktune-load-"))
    model_dir, model = model_folder(args, work)
    feedback_dir, downloads = work / "feedback", work / "downloads"
    downloads.mkdir()
    app = App(model_dir, feedback_dir, free_port(), work / "app.log")
    plans = plan_phases(args)
    limits = AppConfig.from_env(app.env).limits
    bombs, largest = make_uploads(args, work, limits)
    started = time.perf_counter()
    try:
        starts = [(app.start(args.start_timeout), app.peak_rss_mib())]
        probe = app.client(downloads)
        api = Api.read(probe)
        probe.close()
        print(f"app at {app.url} ({model}); /rank takes {api.rank_inputs}, /feedback {api.feedback_inputs}", flush=True)
        run = Run(app, api, args, downloads, feedback_dir / DB_FILE, starts)
        run_phases(run, plans[:3], kill_after)
        bombed = run_bomb_phases(run, plans[3:], bombs, largest)
        text = report(args, model, run, bombed, limits)
    except BaseException:
        print(f"kept {work} (the app's log: {work / 'app.log'})", file=sys.stderr)
        raise
    finally:
        app.stop()
    passed = text.endswith("PASS")
    write_report(args.out, text, argv, (time.perf_counter() - started) / 60)
    if passed:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work} (the app's log: {work / 'app.log'})", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
