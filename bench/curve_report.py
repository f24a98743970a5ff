"""The learning curve's report, drawn from curve.json's form: per log and fraction the mean and sample sd of each
line's held-out AUC over the seeds, as the curve.md table and the chart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from bench.curve_points import LINES

COLORS = {"fine_tuned": "#e8590c", "popularity": "#1c7ed6", "zero_shot": "#868e96"}


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
