"""Serving a saved model: final scores, click probabilities and rankings of (query, item) pairs.

A model's *text logit* comes from its :class:`~recsys.model.relevance_model.RelevanceModel`; its *final score*
adds what it learned about the items from its click log (``recsys.model.priors``), and probabilities
are the calibrated final score (``clicktune.json``'s calibration, fitted on the eval set).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recsys.data.contract import CORPUS_ID, ITEM, PROBABILITY, QUERY, RANK, SCORE
from recsys.errors import UserError
from recsys.model.artifact import (
    DEFAULT_MODEL,
    PRIORS_FILE,
    ModelMetadata,
    is_hub_id,
    model_version,
    resolve_model_path,
)
from recsys.model.priors import Blend, ItemPriors
from recsys.model.text_lengths import choose_max_length
from recsys.scoring.onnx_runtime import serving_encoder
from recsys.scoring.vectors import TextEncoder, TorchEncoder, VectorCache, vectors_of

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from recsys.model.relevance_model import Pair, Progress, RelevanceModel

logger = logging.getLogger(__name__)

SCORE_BATCH = 64  # texts (bi-encoder) or pairs (cross-encoder) per forward pass


class Scorer:
    """Scores (query, item) pairs with a model, its metadata and its item priors.

    ``score_pairs`` gives the text logits; ``final_scores`` adds what the model learned about the
    items from its click log, and ``score``, ``rank`` and ``predict_proba`` work on that final
    score, the one that calibration and the threshold were fitted on.

    A bi-encoder (a model that ``embeds_texts``) is scored from one vector per distinct text, computed
    by ``encoder`` (the model itself unless told otherwise, e.g. its ONNX export) and kept in ``cache``
    under ``version``: ranking a seen list for a new context encodes only the context.
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
        if metadata.blend and priors is None:
            raise ValueError(
                f"the model blends item priors into its score ({', '.join(metadata.blend)}) but its "
                f"{PRIORS_FILE} is missing: copy the whole model folder, or retrain"
            )
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
            raise TypeError(f"a {self.model.title} scores (query, item) pairs together: it has no text vectors")
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

    def rank(self, query: str, items: Sequence[str], top_k: int | None = None) -> list[dict[str, Any]]:
        """Items ranked by score, high to low; ties keep input order. Records carry rank from 1."""
        scores = self.score(query, items)
        records = rank_scores(items, scores, top_k)
        probabilities = self.probabilities(scores)
        return [{**record, PROBABILITY: float(probabilities[record[CORPUS_ID]])} for record in records]


def rank_scores(items: Sequence[str], scores: np.ndarray, top_k: int | None = None) -> list[dict[str, Any]]:
    """Ranked records from scores, as sentence-transformers' ``CrossEncoder.rank``: a stable sort, so
    equal scores stay in input order."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    if top_k is not None:
        order = order[: max(int(top_k), 0)]
    return [
        {RANK: rank, CORPUS_ID: int(i), ITEM: items[i], SCORE: float(scores[i])}
        for rank, i in enumerate(order, start=1)
    ]


def load_scorer(
    name_or_path: str | None = None, *, max_length: int | None = None, log: pd.DataFrame | None = None
) -> Scorer:
    """Load a saved ClickTune model, or a base model as a zero-shot bi-encoder.

    A saved model reads texts up to the ``max_length`` it was trained with. A base model reads up to
    ``max_length`` where given (a fine-tuned model's, so that the two compare like for like), else up to the
    length chosen from ``log``'s texts as training would choose it (``recsys.model.text_lengths``), else 128 tokens.

    A local folder is checked before anything loads (``load_model`` runs
    ``recsys.model.checks.check_model_folder``): a damaged or unfinished one is refused with a message
    that names the file and the fix, never served.
    """
    from recsys.model.architectures import load_model  # imported here: a command's --help loads no torch

    path = resolve_model_path(name_or_path)
    check_model_name(path)
    local = Path(path).is_dir()
    saved = ModelMetadata.load(path) if local else None  # which architecture to load; the check comes with it
    metadata = saved or ModelMetadata(base_model=str(name_or_path or DEFAULT_MODEL))
    model, tokenizer = load_model(metadata.architecture, path)
    if saved is None and (max_length or log is not None):
        metadata.max_length = max_length or choose_max_length(log, tokenizer, metadata.architecture).max_length
    priors = ItemPriors.load(path) if local else None
    # The folder's ONNX export where it was checked to rank as the model does (recsys.scoring.onnx_runtime), else
    # PyTorch.
    encoder = serving_encoder(path, metadata, SCORE_BATCH) if local else None
    kind = "fine-tuned" if metadata.fine_tuned else "zero-shot"
    how = f", encoded with {encoder.name}" if encoder else ""
    logger.info(
        "loaded %s %s model from %s (texts up to %d tokens)%s",
        kind,
        metadata.architecture,
        path,
        metadata.max_length,
        how,
    )
    version = model_version(path if local else None, metadata)
    return Scorer(model, tokenizer, metadata, priors, version=version, encoder=encoder)


def check_model_name(name: str) -> None:
    """Refuse a model name that is neither a folder here nor a Hub id: a mistyped path (``models/clicktun``, whose
    ``models/`` is a folder here) would otherwise go to the Hub, and end a minute later in a network error."""
    parts = Path(name).parts
    if Path(name).is_dir() or len(parts) < 2:  # a bare name: a Hub id of old (bert-base-uncased)
        return
    if is_hub_id(name) and not Path(parts[0]).is_dir():
        return
    here = Path(name).parent
    beside = sorted(p.name for p in here.iterdir() if p.is_dir()) if here.is_dir() else []
    hint = f" ({here} holds {', '.join(beside[:8])})" if beside else ""
    raise UserError(f"{name}: no such model folder{hint}; give a saved model's folder, or a Hub id as OWNER/NAME")


def zero_shot_of(scorer: Scorer) -> Scorer:
    """The zero-shot base model of a fine-tuned scorer, reading texts as long as the fine-tuned model reads them;
    a zero-shot scorer is its own."""
    metadata = scorer.metadata
    return load_scorer(metadata.base_model, max_length=metadata.max_length) if metadata.fine_tuned else scorer
