"""The interface every architecture implements (:class:`RelevanceModel`: a batch of (query, items) lists in, one
logit per pair out, pairs scored for serving, saved and loaded), and what the architectures share: tokenizing,
length-sorted batches, mean pooling, and loading a folder's weights so that a saved model never lacks one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from recsys.model.artifact import ModelFolderError, ModelMetadata
from recsys.model.config_checks import pickle_allowed

Pair = tuple[str, str]
Batch = dict[str, torch.Tensor]
# The one progress report, of scoring and of evaluating alike: (steps done, steps in all, what is being done).
Progress = Callable[[int, int, str], None]
SCORING = "scoring"  # what a model's progress says while it scores pairs (steps: pairs)


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> Iterator[list[int]]:
    """Indices in batches of similar length, so that padding wastes little work."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def tokenize(tokenizer: PreTrainedTokenizerBase, max_length: int, *texts: Sequence[str]) -> Batch:
    """Padded to the batch's longest text (dynamic padding), truncated to ``max_length`` tokens."""
    return tokenizer(
        *[list(t) for t in texts], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The normalised mean of each text's token states (padding left out): a bi-encoder's text vector."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return F.normalize(pooled, dim=-1)


class RelevanceModel(nn.Module):
    """One logit per (query, item) pair; ``encoder`` is the transformers model that training adapts."""

    architecture: ClassVar[str]
    title: ClassVar[str]  # how the model card names the architecture
    pipeline_tag: ClassVar[str]  # the Hub's task for it
    hub_tags: ClassVar[tuple[str, ...]]  # the tags that sentence-transformers gives such a model on the Hub
    plain_load: ClassVar[str]  # how to use the saved folder with plain transformers
    sentence_transformers_load: ClassVar[str]  # Python that uses the folder {model} with sentence-transformers
    supports_adapters: ClassVar[bool]  # LoRA adapters apply to it
    supports_in_batch_negatives: ClassVar[bool]  # its logits can score a query against another list's items
    embeds_texts: ClassVar[bool] = False  # scored from one vector per text (``encode`` and ``logits``), not per pair
    scalars: ClassVar[tuple[str, ...]] = ()  # parameters beside the encoder, trained at their own rate or fixed

    encoder: nn.Module

    def start_scale(self, scale: float) -> None:
        """Set the temperature that training from a base model starts with (a no-op for a model without one)."""

    @staticmethod
    def batch(
        tokenizer: PreTrainedTokenizerBase, queries: Sequence[str], items: Sequence[Sequence[str]], max_length: int
    ) -> Batch:
        """Model inputs for each query's items; ``forward`` returns their logits in the same order, flattened."""
        raise NotImplementedError

    def score_pairs(
        self,
        tokenizer: PreTrainedTokenizerBase,
        pairs: Sequence[Pair],
        max_length: int,
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Logits of (query, item) pairs, in input order, scored in batches of ``batch_size``.

        A model that ``embeds_texts`` is scored from its vectors instead (``recsys.scoring.scorer.Scorer``), which
        encodes each distinct text once and keeps item vectors for the next list.
        """
        raise NotImplementedError

    def save(self, output_dir: str | Path, metadata: ModelMetadata) -> None:
        """Write the weights (safetensors) and record in ``metadata`` what they need beside them."""
        self.encoder.save_pretrained(output_dir)

    @classmethod
    def from_pretrained(cls, path: str, metadata: ModelMetadata | None) -> RelevanceModel:
        raise NotImplementedError


def load_weights(
    cls: type[RelevanceModel], auto_class: type, path: str, metadata: ModelMetadata | None, **kwargs: int
) -> nn.Module:
    """The transformers model of a folder; a folder that ClickTune saved as ``cls`` must hold every weight.

    From a base model, transformers starts what the checkpoint lacks (a cross-encoder's head) at
    random, which training then learns; a saved model lacking a weight would serve that randomness.
    Only safetensors load, unless the operator allows pickles (``recsys.model.config_checks.pickle_allowed``).
    """
    # None: safetensors where the folder has them, else its pickle
    safetensors = None if pickle_allowed() else True
    encoder, loading = auto_class.from_pretrained(path, output_loading_info=True, use_safetensors=safetensors, **kwargs)
    missing = sorted(loading["missing_keys"])
    if metadata is not None and metadata.architecture == cls.architecture and missing:
        raise ModelFolderError(
            path,
            f"the saved {cls.title} lacks {len(missing)} weights ({', '.join(missing[:3])}), "
            "which would start at random",
        )
    return encoder
