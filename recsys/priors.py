"""What a click log says about its items, and the blend that adds it to the text score.

The text model knows what an item is about; the log also knows how often each item was clicked
when shown. ``ItemPriors`` keeps, per item (by ``item_id`` where the log has one, else by item
text), its clicks and views in the training log. Its features for a row are

- ``prior``: the smoothed click rate ``(clicks + s * base) / (views + s)`` as a logit, minus the
  logit of the base rate: 0 for an item never seen, so an unknown item is ranked by its text alone;
- ``log_views``: ``log(1 + views)``: how much the log has seen of it (0 when never seen).

``Blend`` holds one weight per feature, fitted on validation rows with the listwise objective that
training uses (a softmax over each group's rows), the text logit's weight held at 1:

    final score = text logit + w_prior * prior + w_log_views * log_views
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recsys.contract import CLICKED, GROUP, ITEM, ITEM_ID

PRIORS_FILE = "item_priors.csv"
FEATURES = ("prior", "log_views")
SMOOTHING = 5.0  # pseudo-views at the base rate: an item seen once moves little from the base rate


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


@dataclass
class ItemPriors:
    """Clicks and views per item in a training log; ``key`` is the column they are keyed by."""

    key: str
    base_rate: float
    table: pd.DataFrame  # index: the key as text; columns clicks, views
    smoothing: float = SMOOTHING

    @classmethod
    def fit(cls, log: pd.DataFrame, smoothing: float = SMOOTHING) -> ItemPriors:
        key = ITEM_ID if ITEM_ID in log.columns else ITEM
        table = log.groupby(log[key].astype(str))[CLICKED].agg(clicks="sum", views="count")
        return cls(key, float(log[CLICKED].mean()), table.astype(np.int64), smoothing)

    def stats(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Clicks and views of each row's item; zeros for items the log never showed."""
        if self.key not in frame.columns:
            return np.zeros(len(frame)), np.zeros(len(frame))
        rows = self.table.reindex(frame[self.key].astype(str))
        return rows["clicks"].fillna(0).to_numpy(np.float64), rows["views"].fillna(0).to_numpy(np.float64)

    def click_rate(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's item click rate, shrunk toward the base rate by ``smoothing`` pseudo-views."""
        clicks, views = self.stats(frame)
        return (clicks + self.smoothing * self.base_rate) / (views + self.smoothing)

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        """``[prior, log_views]`` per row (see the module docstring); zeros for unknown items."""
        _, views = self.stats(frame)
        prior = _logit(self.click_rate(frame)) - _logit(self.base_rate)
        return np.column_stack([prior, np.log1p(views)])

    def save(self, directory: str | Path) -> None:
        path = Path(directory) / PRIORS_FILE
        header = json.dumps({"key": self.key, "base_rate": self.base_rate, "smoothing": self.smoothing})
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(f"# {header}\n")
            self.table.rename_axis(self.key).to_csv(handle)

    @classmethod
    def load(cls, directory: str | Path) -> ItemPriors | None:
        path = Path(directory) / PRIORS_FILE
        if not path.is_file():
            return None
        with path.open(encoding="utf-8") as handle:
            header = json.loads(handle.readline().removeprefix("# "))
            table = pd.read_csv(handle, dtype={header["key"]: str}, keep_default_na=False).set_index(header["key"])
        return cls(header["key"], float(header["base_rate"]), table, float(header["smoothing"]))


@dataclass
class Blend:
    """Weights of the prior features added to the text logit; all zero is the text score alone."""

    weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FEATURES, 0.0))

    def final(self, logits: np.ndarray, features: np.ndarray) -> np.ndarray:
        w = np.array([self.weights.get(name, 0.0) for name in FEATURES])
        return np.asarray(logits, dtype=np.float64) + np.asarray(features, dtype=np.float64) @ w

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def fit(cls, frame: pd.DataFrame, logits: np.ndarray, features: np.ndarray, l2: float = 1e-3) -> Blend:
        """Weights that maximise the listwise likelihood of the clicks in ``frame``'s groups.

        Each click competes with its group's non-clicks under a softmax, as in listwise training;
        the text logit keeps weight 1, so the weights say how much a unit of prior is worth in
        units of text score. Groups without both a click and a non-click carry no information.
        """
        codes = pd.factorize(frame[GROUP])[0]
        labels = frame[CLICKED].to_numpy()
        lists = []
        for g in np.unique(codes):
            rows = np.flatnonzero(codes == g)
            clicked, others = rows[labels[rows] == 1], rows[labels[rows] == 0]
            lists += [(c, others) for c in clicked] if len(others) else []
        if not lists:
            return cls()
        width = 1 + max(len(o) for _, o in lists)
        index = np.zeros((len(lists), width), dtype=np.int64)
        valid = np.zeros((len(lists), width), dtype=bool)
        for n, (click, others) in enumerate(lists):
            index[n, 0], index[n, 1 : 1 + len(others)] = click, others
            valid[n, : 1 + len(others)] = True
        t = torch.as_tensor(np.asarray(logits, dtype=np.float64))[index]
        x = torch.as_tensor(np.asarray(features, dtype=np.float64))[index]
        mask = torch.as_tensor(valid)
        w = torch.zeros(len(FEATURES), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            scores = (t + x @ w).masked_fill(~mask, -math.inf)
            loss = -torch.log_softmax(scores, dim=1)[:, 0].mean() + l2 * (w**2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return cls({name: float(v) for name, v in zip(FEATURES, w.detach().numpy(), strict=True)})
