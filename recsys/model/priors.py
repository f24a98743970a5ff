"""What a click log says about its items, and the blend that adds it to the text score.

The text model knows what an item is about; the log also knows how often each item was clicked
when shown. ``ItemPriors`` keeps, per item, its clicks and views in the training log, and the sum
of each numeric column the log has beyond the contract's own (a rating, a watch time). Items are
keyed by ``item_id``; a row without one, in a log or in a candidate list, gets the hash of its
text (``recsys.data.contract.fill_item_ids``). Its features for a row are

- ``prior``: the smoothed click rate ``(clicks + s * base) / (views + s)`` as a logit, minus the
  logit of the base rate;
- ``log_views``: ``log(1 + views)``: how much the log has seen of it;
- ``mean_<column>``: the item's mean of that column, smoothed the same way toward the log's mean,
  minus the log's mean, in units of the column's standard deviation.

All are 0 for an item the log never showed, so an unknown item is ranked by its text alone.
Only item-level aggregates of the training log are kept: a row's own values (its rating is its
label in disguise) never enter its score.

``Blend`` holds a weight for the text logit and one per feature, fitted on validation rows with
the listwise objective that training uses (a softmax over each group's rows):

    final score = w_text * text logit + w_prior * prior + w_log_views * log_views + Σ w_mean_c * mean_c

The text weight lets the blend lean on the priors where the text says little (a zero-shot model on
movie ratings) and on the text where the items are new; it is kept at 0 or more.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.contract import (
    CLICKED,
    GROUP,
    ITEM,
    ITEM_ID,
    POSITION,
    QUERY,
    TIMESTAMP,
    fill_item_ids,
    numeric_columns,
)
from recsys.model.artifact import PRIORS_FILE

TEXT = "text"  # the blend's name for the text logit
SMOOTHING = 5.0  # pseudo-views at the base rate: an item seen once moves little from the base rate
# Columns of the contract that say nothing about an item's quality; every other numeric column is averaged.
NOT_AVERAGED = (CLICKED, POSITION, TIMESTAMP)


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


@dataclass
class ItemPriors:
    """Clicks, views and numeric-column sums per item of a training log, keyed by ``item_id``."""

    base_rate: float
    table: pd.DataFrame  # index: the key as text; columns clicks, views, then sum_<column> per averaged column
    means: dict[str, tuple[float, float]] = field(default_factory=dict)  # column -> (mean, sd) over the log
    smoothing: float = SMOOTHING

    @classmethod
    def fit(cls, log: pd.DataFrame, smoothing: float = SMOOTHING) -> ItemPriors:
        contract = (GROUP, QUERY, ITEM, ITEM_ID, *NOT_AVERAGED)
        values = {c: pd.to_numeric(log[c]).astype(np.float64) for c in numeric_columns(log, exclude=contract)}
        keys = fill_item_ids(log)
        table = log.groupby(keys)[CLICKED].agg(clicks="sum", views="count")
        for column, v in values.items():
            table[f"sum_{column}"] = v.groupby(keys).sum()
        means = {c: (float(v.mean()), float(v.std(ddof=0)) or 1.0) for c, v in values.items()}
        return cls(float(log[CLICKED].mean()), table, means, smoothing)

    @property
    def feature_names(self) -> list[str]:
        return ["prior", "log_views", *(f"mean_{c}" for c in self.means)]

    def _rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The table's row for each row's item; zeros for items the log never showed."""
        return self.table.reindex(fill_item_ids(frame)).fillna(0.0).reset_index(drop=True)

    def stats(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Clicks and views of each row's item in the log (zeros for unknown items)."""
        rows = self._rows(frame)
        return rows["clicks"].to_numpy(np.float64), rows["views"].to_numpy(np.float64)

    def click_rate(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's item click rate, shrunk toward the base rate by ``smoothing`` pseudo-views."""
        return self.rate(*self.stats(frame))

    def rate(self, clicks: np.ndarray, views: np.ndarray) -> np.ndarray:
        """The click rate of items with these ``stats``, shrunk toward the base rate by ``smoothing`` pseudo-views."""
        return (clicks + self.smoothing * self.base_rate) / (views + self.smoothing)

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One column per name in :attr:`feature_names` (see the module docstring); zeros for unknown items."""
        rows = self._rows(frame)
        views = rows["views"].to_numpy(np.float64)
        features = {
            "prior": _logit(self.rate(rows["clicks"].to_numpy(np.float64), views)) - _logit(self.base_rate),
            "log_views": np.log1p(views),
        }
        for column, (mean, sd) in self.means.items():
            smoothed = (rows[f"sum_{column}"].to_numpy(np.float64) + self.smoothing * mean) / (views + self.smoothing)
            features[f"mean_{column}"] = (smoothed - mean) / sd
        return pd.DataFrame(features)

    def save(self, directory: str | Path) -> None:
        path = Path(directory) / PRIORS_FILE
        header = {"base_rate": self.base_rate, "smoothing": self.smoothing, "means": self.means}
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(f"# {json.dumps(header)}\n")
            # Every field quoted: an id may hold a comma, a quote, or a lone carriage return.
            self.table.rename_axis(ITEM_ID).to_csv(handle, quoting=csv.QUOTE_ALL)

    @classmethod
    def load(cls, directory: str | Path) -> ItemPriors | None:
        path = Path(directory) / PRIORS_FILE
        if not path.is_file():
            return None
        with path.open(encoding="utf-8", newline="") as handle:
            header = json.loads(handle.readline().removeprefix("# "))
            table = pd.read_csv(handle, dtype={ITEM_ID: str}, keep_default_na=False).set_index(ITEM_ID)
        means = {c: (float(m), float(sd)) for c, (m, sd) in header["means"].items()}
        return cls(float(header["base_rate"]), table, means, float(header["smoothing"]))


@dataclass
class Blend:
    """The weight of the text logit (``text``, 1 where absent) and of each prior feature (0 where absent)."""

    weights: dict[str, float] = field(default_factory=dict)

    @property
    def text_weight(self) -> float:
        return self.weights.get(TEXT, 1.0)

    def final(self, logits: np.ndarray, features: pd.DataFrame) -> np.ndarray:
        """The weighted text logits plus the weighted features."""
        final = self.text_weight * np.asarray(logits, dtype=np.float64)
        for name, weight in self.weights.items():
            if name in features.columns:
                final = final + weight * features[name].to_numpy(np.float64)
        return final

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        logits: np.ndarray,
        features: pd.DataFrame,
        l2: float = 1e-3,
        text_weight: float | None = None,
    ) -> Blend:
        """Weights that maximise the listwise likelihood of the clicks in ``frame``'s groups.

        Each click competes with its group's non-clicks under a softmax, as in listwise training.
        The text weight starts at 1 and is kept at 0 or more (a blend never ranks against the
        text); feature weights start at 0. An L2 penalty of strength ``l2`` pulls every weight
        toward its start. A ``text_weight`` holds the text weight there and fits the features alone.
        Groups without both a click and a non-click carry no information.
        """
        codes = pd.factorize(frame[GROUP])[0]
        labels = frame[CLICKED].to_numpy()
        lists = []
        for g in np.unique(codes):
            rows = np.flatnonzero(codes == g)
            clicked, others = rows[labels[rows] == 1], rows[labels[rows] == 0]
            lists += [(c, others) for c in clicked] if len(others) else []
        fixed = text_weight is not None
        if fixed and not (math.isfinite(text_weight) and text_weight > 0):
            raise ValueError(f"text_weight must be a positive number, got {text_weight}")
        if not lists:
            return cls({TEXT: text_weight if fixed else 1.0, **dict.fromkeys(features.columns, 0.0)})
        width = 1 + max(len(o) for _, o in lists)
        index = np.zeros((len(lists), width), dtype=np.int64)
        valid = np.zeros((len(lists), width), dtype=bool)
        for n, (click, others) in enumerate(lists):
            index[n, 0], index[n, 1 : 1 + len(others)] = click, others
            valid[n, : 1 + len(others)] = True
        import torch  # imported here: a command's --help loads no torch

        t = torch.tensor(np.asarray(logits, dtype=np.float64))[index]
        x = torch.tensor(features.to_numpy(np.float64))[index]
        mask = torch.as_tensor(valid)
        # The text weight as exp(log_text): positive by construction.
        log_text = torch.tensor(math.log(text_weight) if fixed else 0.0, dtype=torch.float64, requires_grad=not fixed)
        w = torch.zeros(features.shape[1], dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([w] if fixed else [log_text, w], max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            text = log_text.exp()
            scores = (text * t + x @ w).masked_fill(~mask, -math.inf)
            penalty = l2 * ((text - 1) ** 2 + (w**2).sum())
            loss = -torch.log_softmax(scores, dim=1)[:, 0].mean() + penalty
            loss.backward()
            return loss

        optimizer.step(closure)
        weights = dict(zip(features.columns, map(float, w.detach().numpy()), strict=True))
        return cls({TEXT: float(log_text.detach().exp()), **weights})
