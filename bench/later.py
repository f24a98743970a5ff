"""Why Bing News test_later.csv and test_users.csv disagree: the fine-tuned model against zero-shot, by slice.

    python -m bench.later [--models models/results]     # after `make results`; scoring only

test_later.csv is the DKN authors' own test file: a later window whose titles never occur in
training, for users of all three splits. Two differences from test_users.csv could turn the
fine-tuned model's advantage around there, and this script separates them:

1. Seen contexts: 65% of test_later's rows belong to users whose history (the query) was trained on.
   Compare the model's per-group advantage for those users with that for users never trained on.
2. New titles: test_later's items are all new. test_users.csv restricted to titles that never occur in
   train.csv asks whether the model still helps on new titles in the training window.

3. The label leak of the earlier split (one query per row, "the user's other clicks"), rebuilt
   from raw/ for the validation users: how well "this row's query differs from its group's usual
   query" alone tells clicks from non-clicks, and what zero-shot MiniLM and TF-IDF score there.

Writes bench/later.md: Δ group AUC (model − zero-shot, text score alone and final score) per slice,
mean over the seeds' models with the paired bootstrap 95% interval of each; then the leak check.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from bench.common import DATASETS
from bench.results import SEEDS
from recsys.data.contract import GROUP, ITEM, QUERY, read_clicks
from recsys.evaluation.baselines import tfidf_baseline
from recsys.evaluation.metrics import group_metrics, paired_difference
from recsys.scoring.loading import load_scorer, zero_shot_of
from recsys.scoring.scorer import Scorer

HERE = Path(__file__).resolve().parent


def slices() -> dict[str, pd.DataFrame]:
    data = DATASETS["bing_news"]
    train, later, users = (read_clicks(data.path(s)) for s in ("train", "test_later", "test_users"))
    trained_users = set(train[GROUP])
    seen_titles = set(train[ITEM])
    return {
        "test_later: all": later,
        "test_later: users trained on (query seen in training)": later[later[GROUP].isin(trained_users)],
        "test_later: users never trained on": later[~later[GROUP].isin(trained_users)],
        "test_users: all": users,
        "test_users: only titles not in train.csv": users[~users[ITEM].isin(seen_titles)],
    }


def per_row_query_split(split: str = "valid") -> pd.DataFrame:
    """``split``'s users as the earlier converter wrote them: each row's query is the user's other clicks."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bing_contract", DATASETS["bing_news"].folder / "make_contract.py")
    contract = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(contract)
    raw = contract.read_raw(DATASETS["bing_news"].folder / "raw" / "raw_train.txt")
    history = contract.click_history(raw)
    users = {g.removeprefix("u") for g in read_clicks(DATASETS["bing_news"].path(split))[GROUP]}
    rows = []
    for row in raw:
        others = [t for t in history.get(row["user"], []) if t != row["title"]][:8]
        if row["user"] in users and others:
            rows.append(
                {GROUP: f"u{row['user']}", QUERY: " | ".join(others), ITEM: row["title"], "clicked": row["clicked"]}
            )
    return pd.DataFrame(rows).astype({"clicked": int})


def leak_check(zero_shot: Scorer) -> list[str]:
    """The earlier per-row queries against today's one query per group, on the validation users."""
    lines = ["", "## The label leak of per-row queries (validation users, rebuilt from raw/)", ""]
    lines += [
        "| split design | rows | AUC of 'query differs from the group's usual one' | zero-shot AUC | TF-IDF AUC |"
    ]
    lines += ["|---|---|---|---|---|"]
    for name, frame in (
        ("per-row queries (earlier)", per_row_query_split()),
        ("one query per group (now)", read_clicks(DATASETS["bing_news"].path("valid"))),
    ):
        usual = frame.groupby(GROUP)[QUERY].agg(lambda q: q.value_counts().index[0])
        differs = (frame[QUERY] != frame[GROUP].map(usual)).to_numpy(float)
        cells = [group_metrics(frame, s)["auc"].mean() for s in (differs, text_logits(zero_shot, frame))]
        cells.append(group_metrics(frame, tfidf_baseline(frame)[0])["auc"].mean())
        lines.append(f"| {name} | {len(frame)} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    return lines


def text_logits(scorer: Scorer, frame: pd.DataFrame):
    return scorer.score_pairs(list(zip(frame[QUERY], frame[ITEM], strict=True)))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("models/results"))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--out", type=Path, default=HERE / "later.md")
    args = parser.parse_args(argv)

    models = {seed: load_scorer(str(args.models / f"bing_news-seed{seed}")) for seed in args.seeds}
    zero_shot = zero_shot_of(next(iter(models.values())))  # reading texts as long as the models do
    rows = []
    for name, frame in slices().items():
        frame = frame.reset_index(drop=True)
        base = text_logits(zero_shot, frame)
        row = {"slice": name, "groups": len(group_metrics(frame, base)), "rows": len(frame)}
        for label, final in (("text", False), ("final", True)):
            diffs = []
            for scorer in models.values():
                scores = scorer.score_frame(frame)[0] if final else text_logits(scorer, frame)
                diffs.append(paired_difference(frame, scores, base)["auc"])
            row[label] = diffs
        rows.append(row)

    def cell(diffs: list[list[float]]) -> str:
        mean = sum(d[0] for d in diffs) / len(diffs)
        return f"{mean:+.3f} (" + "; ".join(f"[{d[1]:+.3f}, {d[2]:+.3f}]" for d in diffs) + ")"

    lines = [
        "# Why test_later goes the other way",
        "",
        f"Command: `python -m bench.later`; the models of `make results` (seeds {', '.join(map(str, args.seeds))}).",
        "Δ group AUC of the fine-tuned model minus zero-shot MiniLM on the same rows: mean over seeds, then each",
        "seed's paired bootstrap 95% interval. 'text' is the text score alone, 'final' adds the learned item priors.",
        "",
        "| slice | groups | rows | Δ AUC, text | Δ AUC, final |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r['slice']} | {r['groups']} | {r['rows']} | {cell(r['text'])} | {cell(r['final'])} |" for r in rows]
    lines += leak_check(zero_shot)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
