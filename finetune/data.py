"""Click logs to training examples and padded batches, and the validation part held out of a log.

An example is a query with one or more items and their labels: one row (pointwise), or one
click followed by ``negatives`` non-clicks from the same group (listwise). The model's class
turns a list of examples into its inputs (``RelevanceModel.batch``), padded to the batch's own
longest text; the collator adds the labels and, for in-batch negatives, the mask.

Each example may carry a weight in the loss, from one weight per row of the log: a pointwise
example has its row's, a listwise one its click's (``--position-weights ips``: 1/propensity of the
position the click was shown at). A collator asked for them adds them as ``weights``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from recsys.data.contract import CLICKED, GROUP, ITEM, QUERY
from recsys.errors import UserError
from recsys.model.relevance_model import RelevanceModel

logger = logging.getLogger(__name__)

USER = "user"  # an optional click-log column: a hold-out keeps each user's lists together


@dataclass(frozen=True)
class HoldOut:
    """The part of a click log held out for validation: a seeded share of its users (or, without a ``user``
    column, of its groups), whole."""

    source: str  # the click log's file name
    fraction: float
    seed: int
    unit: str  # "users" or "groups"
    held_out: int
    total: int
    rows: int

    def describe(self) -> str:
        return (
            f"{self.held_out} of the {self.total} {self.unit} of {self.source} ({self.fraction:.0%}, "
            f"{self.rows} rows, seed {self.seed}), held out"
        )


def hold_out(
    frame: pd.DataFrame, fraction: float, seed: int, source: str
) -> tuple[pd.DataFrame, pd.DataFrame, HoldOut]:
    """``frame`` split into the rows to train on and the rows held out for validation: ``fraction`` of its users
    (its groups where it has no ``user`` column), drawn whole by a seeded shuffle, at least one of each side."""
    unit = USER if USER in frame.columns else GROUP
    units = frame[unit].astype(str)
    names = units.drop_duplicates().to_numpy()
    if len(names) < 2:
        raise UserError(
            f"{source}: one {unit} only, so none can be held out for validation; give --eval-file, "
            f"a click log of other {unit}s"
        )
    count = min(max(1, round(fraction * len(names))), len(names) - 1)
    chosen = np.random.default_rng(seed).permutation(names)[:count]
    held = units.isin(chosen).to_numpy()
    validation = frame[held].reset_index(drop=True)
    described = HoldOut(source, fraction, seed, f"{unit}s", count, len(names), len(validation))
    return frame[~held].reset_index(drop=True), validation, described


@dataclass(frozen=True)
class Example:
    query: str
    items: tuple[str, ...]
    labels: tuple[float, ...]
    group: str = ""  # the rows shown together; in-batch negatives never come from the example's own group
    weight: float = 1.0  # the example's weight in the loss: its row's (pointwise) or its click's (listwise)


def _row_weights(frame: pd.DataFrame, weights: np.ndarray | None) -> np.ndarray:
    if weights is None:
        return np.ones(len(frame))
    if len(weights) != len(frame):
        raise ValueError(f"{len(weights)} weights for {len(frame)} rows; give one weight per row")
    return np.asarray(weights, dtype=np.float64)


class PointwiseDataset(Dataset):
    """One example per row, in a seeded order that changes each epoch; ``weights``: one per row (default 1)."""

    def __init__(
        self, frame: pd.DataFrame, seed: int = 0, shuffle: bool = True, weights: np.ndarray | None = None
    ) -> None:
        rows = zip(frame[QUERY], frame[ITEM], frame[CLICKED], _row_weights(frame, weights), strict=True)
        self.examples = [Example(q, (i,), (float(c),), weight=float(w)) for q, i, c, w in rows]
        self.seed, self.shuffle = seed, shuffle
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        n = len(self.examples)
        self.order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> Example:
        return self.examples[self.order[index]]


class ListwiseDataset(Dataset):
    """Each click with ``negatives`` non-clicks drawn from its group, redrawn each epoch.

    Clicks in a group without any non-click cannot form a list; they are counted and logged.
    Groups with fewer non-clicks than ``negatives`` draw with replacement. ``weights``: one per row of
    ``frame`` (default 1); a list weighs what its click's row does.
    """

    def __init__(self, frame: pd.DataFrame, negatives: int, seed: int = 0, weights: np.ndarray | None = None) -> None:
        self.negatives, self.seed = negatives, seed
        row_weights = pd.Series(_row_weights(frame, weights), index=frame.index)
        self.clicks: list[tuple[str, str, int]] = []
        self.weights: list[float] = []  # each click's
        self.groups: list[str] = []  # each pool's group
        self.non_clicks: list[list[str]] = []
        unusable = 0
        for name, group in frame.groupby(GROUP, sort=False):
            clicked = group[group[CLICKED] == 1]
            others = group.loc[group[CLICKED] == 0, ITEM].tolist()
            if not others:
                unusable += len(clicked)
                continue
            for query, item, weight in zip(clicked[QUERY], clicked[ITEM], row_weights[clicked.index], strict=True):
                self.clicks.append((query, item, len(self.non_clicks)))
                self.weights.append(float(weight))
            self.non_clicks.append(others)
            self.groups.append(str(name))
        if unusable:
            logger.warning("listwise: %d clicks are in groups without a non-click and form no list", unusable)
        if not self.clicks:
            raise UserError(
                "listwise training needs groups with both a click and a non-click; none found in the train file"
            )
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        self.order = rng.permutation(len(self.clicks))
        self.drawn = []
        for _, _, pool in self.clicks:
            others = self.non_clicks[pool]
            replace = len(others) < self.negatives
            self.drawn.append(tuple(others[j] for j in rng.choice(len(others), self.negatives, replace=replace)))

    def __len__(self) -> int:
        return len(self.clicks)

    def __getitem__(self, index: int) -> Example:
        k = self.order[index]
        query, item, pool = self.clicks[k]
        labels = (1.0,) + (0.0,) * self.negatives
        return Example(query, (item, *self.drawn[k]), labels, self.groups[pool], self.weights[k])


class Collator:
    """Tokenizes a list of examples into a batch for ``model_class``, with a ``labels`` tensor.

    With ``in_batch`` (a listwise model that supports it), batches also carry ``in_batch_mask``,
    which makes the model score each example's query against every item of the batch; with
    ``weighted``, ``weights``: each example's weight in the loss.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        model_class: type[RelevanceModel],
        max_length: int,
        in_batch: bool = False,
        weighted: bool = False,
    ) -> None:
        self.tokenizer, self.model_class, self.max_length, self.in_batch = tokenizer, model_class, max_length, in_batch
        self.weighted = weighted

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        items = [e.items for e in examples]
        batch = self.model_class.batch(self.tokenizer, [e.query for e in examples], items, self.max_length)
        batch["labels"] = torch.tensor([label for e in examples for label in e.labels])
        if self.in_batch:
            batch["in_batch_mask"] = in_batch_mask(examples, [item for list_ in items for item in list_])
        if self.weighted:
            batch["weights"] = torch.tensor([e.weight for e in examples], dtype=torch.float32)
        return batch


def in_batch_mask(examples: list[Example], items: list[str]) -> torch.Tensor:
    """Which items of the batch may stand against each example's click: ``[example, item]``.

    Its own list, and every item of the other examples except those of its own group (in a log
    whose group is the user, that user's other clicks are not negatives) and copies of its click's text.
    """
    owner = torch.tensor([n for n, e in enumerate(examples) for _ in e.items])
    group_ids = {g: n for n, g in enumerate(dict.fromkeys(e.group for e in examples))}
    text_ids = {t: n for n, t in enumerate(dict.fromkeys(items))}
    group = torch.tensor([group_ids[e.group] for e in examples])
    text = torch.tensor([text_ids[t] for t in items])
    click_text = torch.tensor([text_ids[e.items[0]] for e in examples])
    own = owner[None, :] == torch.arange(len(examples))[:, None]
    same_group = group[:, None] == group[owner][None, :]
    copy_of_click = text[None, :] == click_text[:, None]
    return own | ~(same_group | copy_of_click)
