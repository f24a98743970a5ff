"""Scoring (query, item) pairs with a model: text logits, final scores and click probabilities.

A model's *text logit* comes from its :class:`~recsys.model.relevance_model.RelevanceModel`; its *final score*
adds what it learned about the items from its click log (``recsys.model.priors``), and probabilities
are the calibrated final score (``clicktune.json``'s calibration, fitted on the eval set). :class:`Scorer` scores;
:func:`require_bi_encoder` refuses what needs text vectors of a model that has none. ``recsys.scoring.loading`` loads
a scorer, ``recsys.scoring.ranking`` ranks with one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys.data.contract import ITEM, QUERY
from recsys.errors import UserError
from recsys.model.artifact import BI, ModelMetadata, model_version
from recsys.model.priors import Blend, ItemPriors
from recsys.scoring.vectors import TextEncoder, TorchEncoder, VectorCache, vectors_of

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from recsys.model.relevance_model import Pair, Progress, RelevanceModel

SCORE_BATCH = 64  # texts (bi-encoder) or pairs (cross-encoder) per forward pass


class Scorer:
    """Scores (query, item) pairs with a model, its metadata and its item priors.

    ``score_pairs`` gives the text logits; ``final_scores`` adds what the model learned about the
    items from its click log, and ``score``, ``score_frame`` and ``predict_proba`` work on that final
    score, the one that calibration and the threshold were fitted on (``recsys.scoring.ranking`` ranks by it).

    A bi-encoder (a model that ``embeds_texts``) is scored from one vector per distinct text, computed
    by ``encoder`` (the model itself unless told otherwise, e.g. its ONNX export) and kept in ``cache``
    under ``version``: ranking a seen list for a new context encodes only the context.

    ``priors`` are the item priors that ``metadata.blend`` blends (``recsys.model.checks`` refuses a folder that
    lacks them); without them the score is the text logit.
    """

    def __init__(
        self,
        model: RelevanceModel,
        tokenizer: PreTrainedTokenizerBase,
        metadata: ModelMetadata,
        priors: ItemPriors | None = None,
        *,
        version: str | None = None,
        encoder: TextEncoder | None = None,
        cache: VectorCache | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.metadata = metadata
        self.version = version or model_version(None, metadata)
        self.encoder: TextEncoder | None = None
        if model.embeds_texts:
            self.encoder = encoder or TorchEncoder(model, tokenizer, metadata.max_length, SCORE_BATCH)
            self.cache = cache if cache is not None else VectorCache()
        self.priors = priors if metadata.blend else None
        self.blend = Blend(metadata.blend) if self.priors else None

    def score_pairs(
        self, pairs: Sequence[Pair], batch_size: int = SCORE_BATCH, progress: Progress | None = None
    ) -> np.ndarray:
        """Relevance logits of the text alone, in input order.

        ``batch_size`` is pairs per forward pass of a cross-encoder; a bi-encoder encodes in its encoder's batches.
        """
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        if self.encoder is None:
            return self.model.score_pairs(self.tokenizer, pairs, self.metadata.max_length, batch_size, progress)
        from recsys.model.relevance_model import SCORING  # imported here: --help loads no torch

        texts = [q for q, _ in pairs] + [i for _, i in pairs]
        total, done = len(set(texts)), 0

        def advance(count: int) -> None:  # reported in pairs, which is what the caller asked to score
            nonlocal done
            done += count
            if progress is not None:
                progress(round(len(pairs) * done / total), len(pairs), SCORING)

        vectors = self.embed(texts, advance)
        if progress is not None and done < total:  # cached texts were not encoded: the list is done all the same
            progress(len(pairs), len(pairs), SCORING)
        return self.logits(vectors[: len(pairs)], vectors[len(pairs) :])

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Normalised float32 vectors of a bi-encoder's texts, in input order; cached texts are not encoded again."""
        if self.encoder is None:
            require_bi_encoder(self.model.architecture, self.version, "text vectors")
        return self.cache.encode(self.vector_version, self.encoder, texts, progress)

    @property
    def vector_version(self) -> str:
        """What made this scorer's text vectors (``recsys.scoring.vectors.vectors_of``)."""
        return vectors_of(self.version, self.encoder.name if self.encoder else "pairs")

    def logits(self, queries: np.ndarray, items: np.ndarray) -> np.ndarray:
        """A bi-encoder's text logits of query vectors against item vectors (row by row, or broadcast)."""
        import torch  # imported here: a command's --help loads no torch

        with torch.inference_mode():
            return self.model.logits(torch.from_numpy(queries), torch.from_numpy(items)).numpy()

    def final_scores(self, logits: np.ndarray, items: pd.DataFrame) -> np.ndarray:
        """The ranking score: text logits plus the learned blend of ``items``' priors (by ``item_id`` or text hash).

        A model without item priors ranks by its text logits; an item the training log never showed
        has zero prior features, so it is ranked by its text alone.
        """
        if self.priors is None:
            return np.asarray(logits, dtype=np.float64)
        return self.blend.final(logits, self.priors.features(items))

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated click probabilities of final scores."""
        return self.metadata.calibration.probabilities(scores)

    def text_alone_probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated click probabilities from text logits alone: the model's for items the training log never
        showed (zero prior features), so a text-alone log-loss uses the calibration that the model serves with."""
        scores = self.blend.final(logits, pd.DataFrame()) if self.blend else np.asarray(logits, dtype=np.float64)
        return self.probabilities(scores)

    def frame_logits(self, frame: pd.DataFrame, progress: Progress | None = None) -> np.ndarray:
        """Text logits of a click log's or candidate list's rows."""
        return self.score_pairs(list(zip(frame[QUERY], frame[ITEM], strict=True)), progress=progress)

    def score_frame(self, frame: pd.DataFrame, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Final scores and click probabilities of a click log's or candidate list's rows."""
        scores = self.final_scores(self.frame_logits(frame, progress), frame)
        return scores, self.probabilities(scores)

    def predict_proba(self, pairs: Sequence[Pair], batch_size: int = SCORE_BATCH) -> np.ndarray:
        """Click probabilities of (query, item) pairs, from their final scores."""
        items = pd.DataFrame({ITEM: [item for _, item in pairs]})
        return self.probabilities(self.final_scores(self.score_pairs(pairs, batch_size), items))

    def score(self, query: str, items: Sequence[str]) -> np.ndarray:
        """Final scores of each item for one query (items known by their text, so by its hash)."""
        logits = self.score_pairs([(query, item) for item in items])
        return self.final_scores(logits, pd.DataFrame({ITEM: list(items)}))


def require_bi_encoder(architecture: str, model: str, needs: str) -> None:
    """Refuse what ``needs`` text vectors (a catalog index, an ONNX export) for a ``model`` that is not a bi-encoder:
    only a bi-encoder encodes a text apart from the other."""
    if architecture != BI:
        raise UserError(
            f"{model}: {needs} needs a bi-encoder, which encodes each text apart; this model is a "
            f"{architecture}-encoder, which reads each (context, item) pair together. Rank lists with it, served "
            "with PyTorch, or train a bi-encoder (`python -m finetune.train --architecture bi`)"
        )
