"""The position-bias experiment's report: the test metrics of every arm and seed, the seeds pooled, the simulated
clicks and the propensities estimated from swaps, as markdown (``bench.position_bias`` writes it)."""

from __future__ import annotations

import json

import pandas as pd

from recsys.data.contract import POSITION
from recsys.evaluation.metrics import RANKING_METRICS

PLAIN = "no correction"  # the arm without position weights, that every IPS arm is compared with


def records(table: pd.DataFrame) -> list[dict]:
    """A table as JSON records: plain numbers, null for a missing one."""
    return json.loads(table.to_json(orient="records"))


def render(results: dict) -> str:
    run, seeds = results["run"], results["seeds"]
    lines = [
        "# Position bias: does inverse propensity weighting recover the labels?",
        "",
        f"Command: `{run['command']}`, run on {run['date']} ({run['machine']}); {run['minutes']:.1f} min in all. "
        f"Seeds {', '.join(map(str, run['seeds']))}.",
        "",
        f"- Labelled log: {run['train']} (train), {run['valid']} (validation, true labels), {run['test']} (test, "
        "true labels).",
        f"- Logged ranking: {run['logging']}.",
        f"- Click model: {run['click_model_text']}.",
        f"- Swap interventions: {run['swaps']}.",
        f"- Training: the default recipe{run['train_flags']}; the IPS arms add `--position-weights ips` "
        "(clip 10, weights rescaled to a mean of 1 per batch).",
        "",
        "## Test metrics (true labels)",
        "",
        "| seed | arm | " + " | ".join(RANKING_METRICS) + " | Δ AUC vs no correction | Δ nDCG@10 vs no correction |",
        "|" + "---|" * (len(RANKING_METRICS) + 4),
    ]
    for seed, result in seeds.items():
        for arm, values in result["arms"].items():
            metrics = " | ".join(f"{values['test'][k]:.3f}" for k in RANKING_METRICS)
            deltas = ["", ""]
            if "minus_plain" in values:
                deltas = ["{:+.3f} [{:+.3f}, {:+.3f}]".format(*values["minus_plain"][k]) for k in ("auc", "ndcg@10")]
            lines.append(f"| {seed} | {arm} | {metrics} | {deltas[0]} | {deltas[1]} |")
    lines += [
        "",
        "Δ: the IPS arm minus the plain one per test group, with the paired bootstrap 95% interval (same groups).",
        "",
        *pooled_lines(results["pooled"]),
        "## The simulated clicks",
        "",
        "| seed | rows | relevant | clicks | swapped lists | click rate at positions 1, 2, 3, 5, 10 (model's) |",
        "|---|---|---|---|---|---|",
    ]
    for seed, result in seeds.items():
        log = result["log"]
        rates = {r[POSITION]: r for r in log["click_rates"]}
        shown = ", ".join(
            f"{rates[k]['rate']:.2f} ({rates[k]['expected']:.2f})" for k in (1, 2, 3, 5, 10) if k in rates
        )
        lines.append(
            f"| {seed} | {log['rows']} | {log['relevant']} | {log['clicks']} | {log['swapped_lists']} | {shown} |"
        )
    estimates = {seed: r["estimate"] for seed, r in seeds.items() if "estimate" in r}
    if estimates:
        lines += ["", "## Propensities estimated from the swaps", ""]
        for seed, estimate in estimates.items():
            curve = ", ".join(
                f"p({row[POSITION]}) = {row['propensity']:.2f} ({row['swapped_lists']} lists)"
                for row in estimate["curve"][1:]
            )
            fitted = f"fitted eta {estimate['eta']:.2f}" if "eta" in estimate else estimate.get("error", "")
            lines.append(f"- seed {seed}: {curve or 'none'}; {fitted} (true eta {run['click_model']['eta']:g}).")
    return "\n".join(lines) + "\n"


def pooled_lines(pooled: dict[str, dict]) -> list[str]:
    """The report's lines on the seeds pooled: each IPS arm's per-group difference averaged over the seeds."""
    if not pooled or len(next(iter(pooled.values()))["seeds"]) < 2:
        return []
    lines = [
        "All seeds pooled (each test group's difference averaged over the seeds; bootstrap 95% interval over the "
        "groups):",
        "",
    ]
    for arm, values in pooled.items():
        auc, ndcg = ("{:+.3f} [{:+.3f}, {:+.3f}]".format(*values[k]) for k in ("auc", "ndcg@10"))
        lines.append(
            f"- {arm}: Δ AUC {auc}, Δ nDCG@10 {ndcg} ({len(values['seeds'])} seeds, {values['groups']} groups)."
        )
    return [*lines, ""]
