"""An evaluation's typed result and its JSON (``evaluation.json``, the evaluator's ``--json``): the model's metrics,
each baseline's with the model's paired advantage, the text alone's where the model blends item priors, and the
per-row scores behind the plots (``recsys.evaluation.evaluator`` computes it; the module docstring there lists the
keys)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.data.atomic_files import write_text_atomic
from recsys.evaluation.metrics import Difference, Metrics


@dataclass
class BaselineResult:
    metrics: Metrics
    model_minus_baseline: dict[str, Difference]  # the model's per-group advantage on each ranking metric

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics.to_dict(), "model_minus_baseline": _listed(self.model_minus_baseline)}


@dataclass
class TextAloneResult:
    """A model's text logits without its item priors: what the text match alone achieves."""

    metrics: Metrics
    text_minus_baseline: dict[str, dict[str, Difference]]  # baseline -> ranking metric -> the text alone's advantage
    model_minus_text_alone: dict[str, Difference]  # the final score's advantage: what the item priors add

    def to_dict(self) -> dict[str, Any]:
        against = {name: _listed(d) for name, d in self.text_minus_baseline.items()}
        return {
            **self.metrics.to_dict(),
            "text_minus_baseline": against,
            "model_minus_text_alone": _listed(self.model_minus_text_alone),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextAloneResult:
        against = {name: _differences(d) for name, d in data.get("text_minus_baseline", {}).items()}
        return cls(Metrics.from_dict(data), against, _differences(data.get("model_minus_text_alone", {})))


def _listed(differences: dict[str, Difference]) -> dict[str, list[float]]:
    return {name: list(d) for name, d in differences.items()}


def _differences(data: dict[str, list[float]]) -> dict[str, Difference]:
    return {name: Difference(*d) for name, d in data.items()}


@dataclass
class Evaluation:
    """The model's metrics on one click log, each baseline's beside them, and the per-row scores behind them."""

    model: Metrics
    baselines: dict[str, BaselineResult] = field(default_factory=dict)
    data_file: str = ""  # the click log's file name
    data_split: str | None = None  # "validation" where training selected the model on that file
    labels: np.ndarray | None = None  # per row, for the plots (recsys.evaluation.plots)
    scores: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    text_alone: TextAloneResult | None = None  # where the model blends item priors into its score
    # recsys.model.artifact.model_digest of the model folder evaluated ("": unknown): a folder's evaluation.json is
    # current while the folder's digest is this one.
    model_sha256: str = ""

    def to_json(self, per_row: bool = False) -> dict[str, Any]:
        """The ``--json`` form (module docstring); ``per_row`` adds the labels, scores and probabilities."""
        data: dict[str, Any] = self.model.to_dict()
        if self.baselines:
            data["baselines"] = {name: b.to_dict() for name, b in self.baselines.items()}
        if self.data_file:
            data["data_file"] = self.data_file
        if self.data_split:
            data["data_split"] = self.data_split
        if self.text_alone is not None:
            data["text_alone"] = self.text_alone.to_dict()
        if self.model_sha256:
            data["model_sha256"] = self.model_sha256
        if per_row and self.labels is not None:
            data["per_row"] = {k: getattr(self, k).tolist() for k in ("labels", "scores", "probabilities")}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evaluation:
        baselines = {
            name: BaselineResult(Metrics.from_dict(b), _differences(b.get("model_minus_baseline", {})))
            for name, b in data.get("baselines", {}).items()
        }
        rows = data.get("per_row", {})
        arrays = {k: np.asarray(rows[k], dtype=np.float64) for k in ("labels", "scores", "probabilities") if k in rows}
        text_alone = TextAloneResult.from_dict(data["text_alone"]) if "text_alone" in data else None
        return cls(
            Metrics.from_dict(data),
            baselines,
            data.get("data_file", ""),
            data.get("data_split"),
            **arrays,
            text_alone=text_alone,
            model_sha256=data.get("model_sha256", ""),
        )

    def save(self, path: str | Path, per_row: bool = False) -> None:
        """Written aside, then renamed into place: a reader never sees half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(self.to_json(per_row), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Evaluation | None:
        path = Path(path)
        return cls.from_json(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None
