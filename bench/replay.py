"""Would the loop pick the right model with users? Interleaved replays of the bundled held-out logs.

    python -m bench.replay [--models models/results] [--seeds 1 2 3 4 5] [--stream 3000]   # bench/replay.md

For each bundled log's held-out file, the fine-tuned models of ``make results`` (one per training seed) meet the
zero-shot base model (reading texts as long as they do) in ``recsys.loop.simulation``'s replay: each group is one user
session, team-draft interleaved, clicked by a click model from the log's labels (cascade, and position-based), and
credited. Two questions, each over several replay seeds:

- **One pass** over the held-out users, as ``python -m recsys.loop simulate`` runs it: the winner by the sign test
  at 0.05, wins / losses / ties.
- **How many sessions a decision takes**: a stream of sessions drawn with replacement from the held-out users (more
  sessions of users like them, each clicked afresh) until ``--stream`` sessions; the session after which the sign test
  reached its final winner and stayed there (``recsys.feedback.interleave.sessions_to_decision``).

Each model scores the held-out rows once; the replays reuse the scores. Writes bench/replay.md and bench/replay.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import DATASETS, write_report
from recsys.data.contract import CLICKED, read_clicks
from recsys.feedback.interleave import CLICK_MODELS, Comparison, sessions_to_decision
from recsys.loop.simulation import draw_sessions, replay
from recsys.scoring.loading import load_scorer, zero_shot_of

HERE = Path(__file__).resolve().parent
HELD_OUT = {"bing_news": ("test_later", "test_users"), "movielens": ("test",)}
TRAINING_SEEDS = (42, 43, 44)


def replay_log(dataset: str, split: str, args: argparse.Namespace) -> list[dict]:
    frame = read_clicks(DATASETS[dataset].path(split))
    labels = frame[CLICKED].to_numpy()
    rows = []
    for training_seed in args.training_seeds:
        tuned = load_scorer(str(args.models / f"{dataset}-seed{training_seed}"))
        base = zero_shot_of(tuned)
        # The champion is the model served today; the fine-tuned one challenges it.
        scores = {"champion": base.score_frame(frame)[0], "challenger": tuned.score_frame(frame)[0]}
        for name, click_model in CLICK_MODELS.items():
            model = click_model()
            for seed in args.seeds:
                order, clicks, stream_order, stream_draws, stream_clicks = np.random.SeedSequence(seed).spawn(5)
                one_pass = replay(
                    draw_sessions(frame, np.random.default_rng(order)), scores["champion"], scores["challenger"],
                    labels, model, np.random.default_rng(clicks),
                )  # fmt: skip
                groups = draw_sessions(frame, np.random.default_rng(stream_order))
                drawn = np.random.default_rng(stream_draws).integers(len(groups), size=args.stream)
                stream = replay(
                    [groups[i] for i in drawn], scores["champion"], scores["challenger"], labels, model,
                    np.random.default_rng(stream_clicks),
                )  # fmt: skip
                comparison, streamed = Comparison.of(one_pass), Comparison.of(stream)
                rows.append({
                    "log": dataset, "split": split, "training_seed": training_seed, "click_model": name,
                    "parameters": model.parameters(), "seed": seed, "sessions": len(one_pass),
                    "winner": comparison.winner, "wins": comparison.wins, "losses": comparison.losses,
                    "ties": comparison.ties, "p_value": comparison.p_value,
                    "stream_winner": streamed.winner, "stream_sessions": len(stream),
                    "sessions_to_decision": sessions_to_decision(stream),
                })  # fmt: skip
                print(
                    f"{dataset}/{split} seed {training_seed} {name} replay {seed}: {comparison.sentence()}", flush=True
                )
    return rows


def render(results: dict) -> str:
    run = results["run"]
    lines = [
        "# Interleaved replays: does the loop pick the right model?",
        "",
        f"Command: `{run['command']}` ({run['date']}, {run['seconds']:.0f} s, CPU only). "
        "The champion is the zero-shot base model (reading texts as long as the "
        "fine-tuned model does); the challenger is each `make results` model. Wins are the challenger's.",
        "",
        "Click models: " + "; ".join(f"**{name}**: {CLICK_MODELS[name]().describe()}" for name in CLICK_MODELS),
        "",
        "| held-out file | click model | training seed | one pass: winner per replay seed (wins/losses/ties) "
        "| stream: winner, sessions to decision per replay seed |",
        "|---|---|---|---|---|",
    ]
    keys = dict.fromkeys((r["log"], r["split"], r["click_model"], r["training_seed"]) for r in results["rows"])
    for log, split, click_model, training_seed in keys:
        cell = [
            r
            for r in results["rows"]
            if (r["log"], r["split"], r["click_model"], r["training_seed"]) == (log, split, click_model, training_seed)
        ]
        one_pass = "; ".join(f"{r['winner']} ({r['wins']}/{r['losses']}/{r['ties']})" for r in cell)
        stream = "; ".join(f"{r['stream_winner']} after {r['sessions_to_decision'] or '—'}" for r in cell)
        lines.append(f"| {log} `{split}.csv` | {click_model} | {training_seed} | {one_pass} | {stream} |")
    lines += [
        "",
        "One pass replays each held-out user once (as many sessions as the file has groups). The stream draws "
        f"{run['stream']} sessions with replacement from the same users; *sessions to decision* is the session after "
        "which the two-sided sign test at 0.05 reached the stream's final winner and stayed there (— : no winner).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("models/results"), help="make results' models")
    parser.add_argument("--training-seeds", type=int, nargs="+", default=list(TRAINING_SEEDS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="replay seeds")
    parser.add_argument("--stream", type=int, default=3000, help="sessions drawn with replacement per replay")
    parser.add_argument("--logs", nargs="+", default=list(HELD_OUT), choices=list(HELD_OUT))
    parser.add_argument("--out", type=Path, default=HERE / "replay.md")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = [row for log in args.logs for split in HELD_OUT[log] for row in replay_log(log, split, args)]
    command = " ".join(["python -m bench.replay", *(argv if argv is not None else sys.argv[1:])])
    run = {"command": command, "date": time.strftime("%Y-%m-%d"), "stream": args.stream}
    results = {"run": run | {"seconds": time.perf_counter() - started}, "rows": rows}
    write_report(args.out, render(results), results)
    return results


if __name__ == "__main__":
    main()
