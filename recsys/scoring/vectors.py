"""Text vectors for a bi-encoder: the encoders that compute them and a cache that keeps them.

A bi-encoder scores a (context, item) pair from two vectors computed apart, so an item's vector
serves every context it is ranked for. :class:`VectorCache` keeps them keyed by model version and
text: ranking an already-seen list for a new context encodes only the context. An encoder is
anything with ``encode(texts, progress) -> float32 [n, dim]``: :class:`TorchEncoder` runs the
model itself, ``recsys.scoring.onnx_runtime`` runs its ONNX export.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Advance = Callable[[int], None]  # how many texts were encoded since the last call

# 100,000 vectors of 384 floats: about 150 MiB, and a catalog's worth of items for the Rank tab.
CACHED_VECTORS = 100_000


def vectors_of(version: str, encoder: str) -> str:
    """What made a set of vectors, which cached vectors and a catalog's index are kept under: the model version
    and the encoder (an ONNX export's vectors are close to PyTorch's, not the same)."""
    return f"{version} [{encoder}]"


class TextEncoder(Protocol):
    """Normalised vectors of texts, one float32 row per text, in input order."""

    name: str  # what computes them, as logs and reports say it ("torch fp32", "onnx int8")

    def encode(self, texts: Sequence[str], progress: Advance | None = None) -> np.ndarray: ...


class TorchEncoder:
    """A bi-encoder's own PyTorch forward pass, in length-sorted batches of ``batch_size`` texts."""

    name = "torch fp32"

    def __init__(self, model, tokenizer: PreTrainedTokenizerBase, max_length: int, batch_size: int = 64) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.batch_size = max_length, batch_size

    def encode(self, texts: Sequence[str], progress: Advance | None = None) -> np.ndarray:
        vectors = self.model.encode(self.tokenizer, texts, self.max_length, self.batch_size, progress)
        return vectors.numpy().astype(np.float32, copy=False)


class VectorCache:
    """The vectors of up to ``max_items`` texts, keyed by (model version, text); least recently used go first.

    Safe to share between threads and between models: each model's vectors live under its own version.
    """

    def __init__(self, max_items: int = CACHED_VECTORS) -> None:
        if max_items < 0:
            raise ValueError(f"a vector cache holds 0 or more vectors, got {max_items}")
        self.max_items = max_items
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def encode(
        self, version: str, encoder: TextEncoder, texts: Sequence[str], progress: Advance | None = None
    ) -> np.ndarray:
        """Vectors of ``texts`` in input order; only the texts not cached for ``version`` are encoded."""
        distinct = list(dict.fromkeys(texts))
        with self._lock:
            known = {text: self._vectors.get((version, text)) for text in distinct}
            for text, vector in known.items():
                if vector is not None:
                    self._vectors.move_to_end((version, text))
        missing = [text for text, vector in known.items() if vector is None]
        if missing:
            fresh = encoder.encode(missing, progress)
            for text, vector in zip(missing, fresh, strict=True):
                known[text] = vector
            self._store(version, missing, fresh)
        if not distinct:
            return np.zeros((0, 0), dtype=np.float32)
        rows = {text: n for n, text in enumerate(distinct)}
        table = np.stack([known[text] for text in distinct])
        return table[[rows[text] for text in texts]]

    def _store(self, version: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._vectors[(version, text)] = vector.copy()  # not a view that keeps its whole batch alive
                self._vectors.move_to_end((version, text))
            while len(self._vectors) > self.max_items:
                self._vectors.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()
