"""How many tokens a model reads, chosen from a click log's own texts.

Contexts are long (a user's recent titles) and items short (a title), and both differ from log to log, so a
fixed ``max_length`` either cuts most contexts or pads for nothing. :func:`choose_max_length` measures each
side's 95th percentile in tokens (a cross-encoder's: the (context, item) pairs it reads together), rounds the
longer up to a multiple of 8 and caps it at 256 tokens and at what the tokenizer takes.

One length serves both sides of a bi-encoder: each side is padded only to its own batch's longest text
(``recsys.model.relevance_model.tokenize``), so the short items cost nothing for the long contexts' limit. Training
records the choice in ``clicktune.json`` (``max_length``, and the percentiles under ``training.text_lengths``); serving
and the zero-shot baseline read texts at that same length, so that the two are compared like for like.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys.data.contract import ITEM, QUERY
from recsys.model.artifact import BI

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PERCENTILE = 95
CAP = 256  # tokens: sentence-transformers' limit for MiniLM, and attention's cost grows with the square beyond
MULTIPLE = 8  # a length the matrix kernels like
SAMPLE = 20_000  # distinct texts (or pairs) measured per side at most: a percentile, not a census


@dataclass(frozen=True)
class TextLengths:
    """Each side's 95th percentile in tokens, special tokens included, and the ``max_length`` chosen from them."""

    query: int
    item: int
    pair: int  # a (context, item) pair read together, as a cross-encoder reads it
    max_length: int
    architecture: str

    def measured(self) -> str:
        if self.architecture == BI:
            return f"{PERCENTILE}% of its contexts fit in {self.query} tokens and of its items in {self.item}"
        return f"{PERCENTILE}% of its (context, item) pairs fit in {self.pair} tokens"

    def describe(self, chosen: int = 0) -> str:
        """In words, for the run's first lines: the length the run reads (``chosen``, else this one) and why."""
        if chosen:
            return f"texts are read up to {chosen} tokens (--max-length); of the train file, {self.measured()}"
        return f"texts are read up to {self.max_length} tokens, chosen from the train file: {self.measured()}"

    def to_dict(self) -> dict:
        return asdict(self)


def choose_max_length(
    frame: pd.DataFrame, tokenizer: PreTrainedTokenizerBase, architecture: str, positions: int = CAP
) -> TextLengths:
    """The ``max_length`` for a model of ``architecture`` trained or evaluated on ``frame`` (a click log), within
    the model's ``positions``."""
    rows = frame if len(frame) <= SAMPLE else frame.sample(SAMPLE, random_state=0)
    query = _percentile(tokenizer, _distinct(frame[QUERY]))
    item = _percentile(tokenizer, _distinct(frame[ITEM]))
    pair = _percentile(tokenizer, rows[QUERY].tolist(), rows[ITEM].tolist())
    longest = max(query, item) if architecture == BI else pair
    rounded = -(-longest // MULTIPLE) * MULTIPLE
    limit = min(CAP, positions, _tokenizer_limit(tokenizer))
    return TextLengths(query, item, pair, min(rounded, limit), architecture)


def _distinct(texts: pd.Series) -> list[str]:
    unique = texts.drop_duplicates()
    return (unique if len(unique) <= SAMPLE else unique.sample(SAMPLE, random_state=0)).tolist()


def _percentile(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], pairs: Sequence[str] | None = None) -> int:
    if not texts:
        return 1
    encoded = tokenizer(list(texts), *([list(pairs)] if pairs is not None else []), truncation=False)
    lengths = np.fromiter((len(ids) for ids in encoded["input_ids"]), dtype=np.int64)
    return int(np.ceil(np.percentile(lengths, PERCENTILE)))


def _tokenizer_limit(tokenizer: PreTrainedTokenizerBase) -> int:
    """The tokenizer's own limit; transformers gives a huge number where a tokenizer records none."""
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 1_000_000 else CAP
