"""The bundled logs and the baselines, shared by the search (validation) and the results (test)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from accelerate.state import AcceleratorState, PartialState

from recsys.data.contract import ITEM, QUERY, read_clicks
from recsys.defaults import ROOT
from recsys.evaluation.evaluator import baseline_scores
from recsys.evaluation.metrics import evaluate_scores
from recsys.model.priors import Blend, ItemPriors
from recsys.scoring.loading import load_scorer

DATA = ROOT / "data"


@dataclass(frozen=True)
class Dataset:
    folder: Path
    tests: tuple[str, ...]  # held-out files, without .csv

    def path(self, split: str) -> Path:
        return self.folder / f"{split}.csv"

    def train_flags(self) -> list[str]:
        return ["--train-file", str(self.path("train")), "--eval-file", str(self.path("valid"))]


DATASETS = {
    "bing_news": Dataset(DATA / "bing_news", ("test_users", "test_later")),
    "movielens": Dataset(DATA / "movielens", ("test",)),
}


def write_report(out: Path, report: str, results: dict | None = None) -> None:
    """Write a bench report (Markdown) to ``out`` and, where given, its numbers beside it (``out`` as .json), and
    print it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if results is not None:
        out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    out.write_text(report)
    print(report)


def reset_accelerate() -> None:
    """Each training run in one process starts from fresh Accelerate state, as a new process would."""
    AcceleratorState._reset_state(True)
    PartialState._reset_state()


def baseline_rows(dataset: str, split: str) -> list[dict]:
    """Each baseline's metrics on one split of a bundled log, as search rows."""
    data = DATASETS[dataset]
    frame, train = read_clicks(data.path(split)), read_clicks(data.path("train"))
    scored = baseline_scores(frame, train, zero_shot=load_scorer(None, log=train))
    metrics = {name: evaluate_scores(frame, *scores, intervals=False).values for name, scores in scored.items()}
    return [
        {"name": f"{dataset}: {name}", "kind": "baseline", "dataset": dataset, **{k: m[k] for k in ("auc", "ndcg@10")}}
        for name, m in metrics.items()
    ]


def zero_shot_with_priors_row(dataset: str, split: str = "valid") -> dict:
    """No training at all: the zero-shot text logit blended with the item priors, the blend fitted on ``split``.

    What the priors alone can do on a log, so that fine-tuning is credited only with what it adds.
    """
    data = DATASETS[dataset]
    frame, train = read_clicks(data.path(split)), read_clicks(data.path("train"))
    logits = load_scorer(None, log=train).score_pairs(list(zip(frame[QUERY], frame[ITEM], strict=True)))
    features = ItemPriors.fit(train).features(frame)
    final = Blend.fit(frame, logits, features).final(logits, features)
    metrics = evaluate_scores(frame, final, final, intervals=False)
    name = f"{dataset}: zero-shot + item priors (no training)"
    values = metrics.values
    return {"name": name, "kind": "reference", "dataset": dataset, "auc": values["auc"], "ndcg@10": values["ndcg@10"]}
