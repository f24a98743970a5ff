"""Do the blend weights over-weight the item priors? Ways to fit the blend, chosen on validation users only.

    python -m bench.blend [--models models/clicktune models/clicktune-movielens] [--folds 5] [--repeats 5]

The text model stays as trained (the demo folders of ``make demo``, one per bundled log); only the blend
on top of its text logits is fitted again (``recsys.model.priors.Blend.fit``), in these ways:

- today's fit: every validation group, L2 1e-3 (what ``finetune.train`` saves);
- stronger L2 (pulls the text weight toward 1 and the feature weights toward 0), fixed or chosen by an
  inner k-fold CV within the groups the fit is given;
- the text weight held at 1 (the temperature that listwise training gave the text logit), features fitted;
- fitted on the training users' groups, alone or with the validation groups. Their text logits are
  in-sample: the model was trained on those very clicks, so the text looks better there than on new
  users and such a fit leans toward the text. Their priors are
  out-of-fold (``--folds`` over training groups: each fold's features come from the other folds' rows),
  else each row's own click would be in its item's click rate and the fit would lean toward the priors;
- the text alone, for reference.

Validation AUC is the group AUC of out-of-fold final scores: the validation groups fall into ``--folds``
folds, each scored by a blend fitted without it, averaged over ``--repeats`` shuffles (a blend fitted on
training groups alone never sees a validation group, so its validation AUC is plain). Today's saved
blend's in-sample validation AUC is shown too. Held-out files are for reporting only: their group AUC,
the paired difference from today's fit, and how often the priors decide a list against the text (its
top 1 or its top-5 set by final score differs from the text's alone, over lists of more than 1 or 5 rows).
Writes bench/blend.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.common import DATASETS
from recsys.data.contract import GROUP, ITEM, QUERY, read_clicks
from recsys.evaluation.metrics import group_metrics, paired_difference
from recsys.model.priors import TEXT, Blend, ItemPriors
from recsys.scoring.loading import load_scorer
from recsys.scoring.scorer import Scorer

HERE = Path(__file__).resolve().parent
MODELS = {"bing_news": Path("models/clicktune"), "movielens": Path("models/clicktune-movielens")}
TODAY = "today: validation groups, L2 1e-3"
L2_STRENGTHS = (1e-3, 1e-2, 0.1, 1.0)
INNER_FOLDS = 5


@dataclass
class Rows:
    """A click log's rows with their text logits and prior features."""

    frame: pd.DataFrame
    logits: np.ndarray
    features: pd.DataFrame

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(
            self.frame[mask].reset_index(drop=True), self.logits[mask], self.features[mask].reset_index(drop=True)
        )

    def join(self, other: Rows) -> Rows:
        return Rows(
            pd.concat([self.frame, other.frame], ignore_index=True),
            np.concatenate([self.logits, other.logits]),
            pd.concat([self.features, other.features], ignore_index=True),
        )

    def fit(self, **options: float) -> Blend:
        return Blend.fit(self.frame, self.logits, self.features, **options)

    def final(self, blend: Blend) -> np.ndarray:
        return blend.final(self.logits, self.features)


Fit = Callable[[Rows], Blend]  # a way to fit: the validation rows it may use -> a blend


def group_folds(frame: pd.DataFrame, folds: int, seed: int) -> np.ndarray:
    """Each row's fold, groups kept whole, groups shuffled by ``seed``."""
    groups = frame[GROUP].unique()
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of = dict(zip(groups[order], np.arange(len(groups)) % folds, strict=True))
    return frame[GROUP].map(fold_of).to_numpy()


def text_logits(scorer: Scorer, frame: pd.DataFrame) -> np.ndarray:
    return scorer.score_pairs(list(zip(frame[QUERY], frame[ITEM], strict=True))).astype(np.float64)


def rows_of(scorer: Scorer, priors: ItemPriors, frame: pd.DataFrame) -> Rows:
    return Rows(frame, text_logits(scorer, frame), priors.features(frame))


def out_of_fold_train_rows(scorer: Scorer, train: pd.DataFrame, folds: int, seed: int = 0) -> Rows:
    """The training log's rows, in-sample text logits, each fold's prior features from the other folds' rows."""
    fold = group_folds(train, folds, seed)
    features = pd.DataFrame(index=train.index, columns=ItemPriors.fit(train).feature_names, dtype=np.float64)
    for k in range(folds):
        features.loc[fold == k] = ItemPriors.fit(train[fold != k]).features(train[fold == k]).to_numpy()
    return Rows(train, text_logits(scorer, train), features)


def ways(train: Rows) -> dict[str, Fit]:
    on_train = train.fit()  # uses no validation row: the same blend for every fold
    return {
        TODAY: lambda v: v.fit(),
        "validation, L2 0.01": lambda v: v.fit(l2=0.01),
        "validation, L2 0.1": lambda v: v.fit(l2=0.1),
        "validation, L2 1": lambda v: v.fit(l2=1.0),
        f"validation, L2 chosen by {INNER_FOLDS}-fold CV inside it": lambda v: v.fit(l2=chosen_l2(v)),
        "validation, text weight held at 1": lambda v: v.fit(text_weight=1.0),
        "validation, text weight held at 1, L2 0.1": lambda v: v.fit(text_weight=1.0, l2=0.1),
        "training groups (out-of-fold priors)": lambda v: on_train,
        "training + validation groups": lambda v: train.join(v).fit(),
        "text alone (no priors)": lambda v: Blend({TEXT: 1.0}),
    }


def chosen_l2(rows: Rows, strengths: tuple[float, ...] = L2_STRENGTHS) -> float:
    """The L2 strength of the best out-of-fold group AUC on ``rows`` (one shuffle of groups)."""
    fold = group_folds(rows.frame, INNER_FOLDS, seed=0)
    aucs = []
    for l2 in strengths:
        scores = np.zeros(len(rows.frame))
        for k in range(INNER_FOLDS):
            scores[fold == k] = rows.take(fold == k).final(rows.take(fold != k).fit(l2=l2))
        aucs.append(group_metrics(rows.frame, scores)["auc"].mean())
    return strengths[int(np.argmax(aucs))]


def cross_validated(fit: Fit, valid: Rows, folds: int, repeats: int) -> pd.Series:
    """Per validation group, the AUC of out-of-fold final scores, averaged over ``repeats`` fold shuffles."""
    runs = []
    for seed in range(repeats):
        fold, scores = group_folds(valid.frame, folds, seed), np.zeros(len(valid.frame))
        for k in range(folds):
            scores[fold == k] = valid.take(fold == k).final(fit(valid.take(fold != k)))
        runs.append(group_metrics(valid.frame, scores).set_index(GROUP)["auc"])
    return pd.concat(runs, axis=1).mean(axis=1)


def moved_by_priors(rows: Rows, blend: Blend) -> dict[str, float]:
    """How much the priors move ``rows``' lists away from their text alone: the shares of lists whose top 1
    (lists of 2+ rows) and top-5 set (6+ rows) by final score differ from the text's, and the median over
    lists of the spread (standard deviation) of the priors' part of the final score over the text's part."""
    text = blend.text_weight * rows.logits
    final = rows.final(blend)
    top1, top5, spread = [], [], []
    for index in rows.frame.groupby(GROUP, sort=False).indices.values():
        by_text, by_final = (np.argsort(-s[index], kind="stable") for s in (text, final))
        if len(index) > 1:
            top1.append(by_text[0] != by_final[0])
            spread.append(np.std(final[index] - text[index]) / max(np.std(text[index]), 1e-12))
        if len(index) > 5:
            top5.append(set(by_text[:5]) != set(by_final[:5]))
    return {"top1": float(np.mean(top1)), "top5": float(np.mean(top5)), "spread": float(np.median(spread))}


def evaluate_dataset(dataset: str, model: Path, folds: int, repeats: int) -> list[dict]:
    data = DATASETS[dataset]
    scorer = load_scorer(str(model))
    train_frame = read_clicks(data.path("train"))
    priors = ItemPriors.fit(train_frame)
    valid = rows_of(scorer, priors, read_clicks(data.path("valid")))
    tests = {split: rows_of(scorer, priors, read_clicks(data.path(split))) for split in data.tests}
    train = out_of_fold_train_rows(scorer, train_frame, folds)
    # Hundreds of small fits: one thread each is many times faster than two threads fighting over shared cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    today = valid.fit()
    saved = Blend(scorer.metadata.blend)
    results = []
    fits = ways(train)
    baseline_cv = cross_validated(fits[TODAY], valid, folds, repeats)
    for name, fit in fits.items():
        blend = fit(valid)
        cv = cross_validated(fit, valid, folds, repeats)
        difference = cv - baseline_cv
        row = {
            "dataset": dataset,
            "way": name,
            "weights": blend.weights,
            "valid_auc": float(cv.mean()),
            "valid_delta": float(difference.mean()),
            "valid_in_sample": float(group_metrics(valid.frame, valid.final(blend))["auc"].mean()),
        }
        for split, rows in tests.items():
            final = rows.final(blend)
            row[f"{split}_auc"] = float(group_metrics(rows.frame, final)["auc"].mean())
            row[f"{split}_delta"] = list(paired_difference(rows.frame, final, rows.final(today))["auc"])
            row |= {f"{split}_{k}": v for k, v in moved_by_priors(rows, blend).items()}
            row[f"{split}_known"] = float((rows.features["log_views"] > 0).mean())
        results.append(row)
    torch.set_num_threads(threads)
    # Today's fit on these logits should be the blend that training saved (the same model, the same rows).
    results[0]["saved_weights"] = saved.weights
    return results


def markdown(results: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Do the blend weights over-weight popularity?",
        "",
        f"Command: `python -m bench.blend --folds {args.folds} --repeats {args.repeats}` on the demo models "
        f"({', '.join(f'`{m}`' for m in args.models)}),",
        "each trained with `python -m finetune.train`'s defaults. Only the blend over the text logit is refitted.",
        f"'val AUC (CV)' is the group AUC of out-of-fold final scores on valid.csv ({args.folds} folds of groups,",
        f"{args.repeats} shuffles); 'Δ val' is its per-group mean difference from today's fit; 'in-sample' scores",
        "valid.csv with the blend fitted on all of it (what training reports and selects on). Held-out columns are",
        "for reporting, not choosing: group AUC; Δ against today's fit, with its paired bootstrap 95% interval;",
        "the shares of lists whose top 1 / top-5 set by final score differ from those by the text alone; and the",
        "median over lists of the spread of the priors' part of the final score over the spread of the text's part.",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        rows = [r for r in results if r["dataset"] == dataset]
        splits = [s for s in DATASETS[dataset].tests if rows[0][f"{s}_known"] > 0]
        known = ", ".join(f"{s} {rows[0][f'{s}_known']:.0%}" for s in DATASETS[dataset].tests)
        saved = ", ".join(f"{k} {w:.3f}" for k, w in rows[0]["saved_weights"].items())
        lines += ["", f"## {dataset}", "", f"Rows whose item the training log showed: {known}."]
        for s in DATASETS[dataset].tests:
            if s not in splits:
                lines.append(
                    f"Every blend ranks {s} by its text alone (group AUC {rows[0][f'{s}_auc']:.4f}): left out."
                )
        lines += [f"The blend that training saved in the model folder: {saved}.", ""]
        header = "| way to fit | weights | val AUC (CV) | Δ val | in-sample | "
        header += " | ".join(
            f"{s} AUC | Δ {s} [95%] | {s} top-1 / top-5 moved | {s} priors / text spread" for s in splits
        )
        lines += [header + " |", "|" + "---|" * (5 + 4 * len(splits))]
        for r in rows:
            weights = ", ".join(f"{k} {w:.3f}" for k, w in r["weights"].items())
            cells = [
                r["way"],
                weights,
                f"{r['valid_auc']:.4f}",
                f"{r['valid_delta']:+.4f}",
                f"{r['valid_in_sample']:.4f}",
            ]
            for s in splits:
                d = r[f"{s}_delta"]
                cells += [f"{r[f'{s}_auc']:.4f}", f"{d[0]:+.4f} [{d[1]:+.3f}, {d[2]:+.3f}]"]
                cells += [f"{r[f'{s}_top1']:.0%} / {r[f'{s}_top5']:.0%}", f"{r[f'{s}_spread']:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, nargs=2, default=list(MODELS.values()), help="bing_news, movielens")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "blend.md")
    args = parser.parse_args(argv)
    results = []
    for dataset, model in zip(MODELS, args.models, strict=True):
        results += evaluate_dataset(dataset, model, args.folds, args.repeats)
    text = markdown(results, args)
    args.out.write_text(text)
    print(text)
    return results


if __name__ == "__main__":
    main()
