"""Text-relevance models: a bi-encoder and a cross-encoder behind one interface.

Each architecture is a :class:`~recsys.model.relevance_model.RelevanceModel`: it tokenizes (query, items) lists into
a batch, returns one logit per (query, item) pair for that batch, scores pairs for serving, and saves and loads
itself. Training, scoring and saving call that interface and never ask which model they hold; :data:`MODELS` maps
each architecture name of ``recsys.model.artifact`` to its class.

A saved model also loads without ClickTune. A bi-encoder's folder is a sentence-transformers model
(``SentenceTransformer(dir).encode`` gives the same normalised, mean-pooled embeddings; logit =
scale * cosine + bias from ``clicktune.json``) and plain transformers' ``AutoModel``; a
cross-encoder's folder loads with sentence-transformers' ``CrossEncoder`` (``predict`` gives the text
logits) and with ``AutoModelForSequenceClassification``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedTokenizerBase

from recsys.model.artifact import ARCHITECTURES, BI, CROSS, ModelMetadata, resolve_model_path
from recsys.model.checks import check_model_folder, check_vocabulary
from recsys.model.relevance_model import (
    SCORING,
    Batch,
    Pair,
    Progress,
    RelevanceModel,
    length_sorted_batches,
    load_weights,
    mean_pool,
    tokenize,
)
from recsys.model.st_format import ST_IDENTITY, write_sentence_transformers_files


class BiEncoder(RelevanceModel):
    """Mean-pooled, normalised embeddings; logit = scale * cos(query, item) + bias."""

    architecture, title, pipeline_tag = BI, "bi-encoder", "sentence-similarity"
    hub_tags = ("sentence-similarity", "feature-extraction")
    plain_load = (
        "`AutoModel.from_pretrained(dir)`, mean-pool and normalise; logit = scale * cosine + bias "
        "with scale and bias from `clicktune.json`."
    )
    sentence_transformers_load = """from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{model}")  # mean-pooled, normalised embeddings, as ClickTune computes them
query = model.encode(["nba playoffs | lakers trade"])
items = model.encode(["warriors win game 7", "new iphone released"])
logits = {scale} * model.similarity(query, items) {bias}  # cosine; scale and bias from clicktune.json"""
    supports_adapters = supports_in_batch_negatives = embeds_texts = True
    scalars = ("scale", "bias")

    def __init__(self, encoder: nn.Module, scale: float = 10.0, bias: float = -5.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.bias = nn.Parameter(torch.tensor(float(bias)))

    @staticmethod
    def batch(
        tokenizer: PreTrainedTokenizerBase, queries: Sequence[str], items: Sequence[Sequence[str]], max_length: int
    ) -> Batch:
        # Each distinct query is encoded once: a group's lists share their context.
        distinct = list(dict.fromkeys(queries))
        row = {q: n for n, q in enumerate(distinct)}
        q = tokenize(tokenizer, max_length, distinct)
        i = tokenize(tokenizer, max_length, [item for list_ in items for item in list_])
        return {
            "query_input_ids": q["input_ids"],
            "query_attention_mask": q["attention_mask"],
            "item_input_ids": i["input_ids"],
            "item_attention_mask": i["attention_mask"],
            "query_index": torch.tensor(
                [row[query] for query, list_ in zip(queries, items, strict=True) for _ in list_]
            ),
        }

    def start_scale(self, scale: float) -> None:
        self.scale.data.fill_(scale)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

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

    @torch.inference_mode()
    def encode(
        self,
        tokenizer: PreTrainedTokenizerBase,
        texts: Sequence[str],
        max_length: int,
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """Normalised embeddings of ``texts``, in input order; ``progress`` gets the count after each batch."""
        out = torch.zeros(len(texts), self.encoder.config.hidden_size)
        for index in length_sorted_batches(texts, batch_size):
            batch = tokenize(tokenizer, max_length, [texts[i] for i in index])
            out[index] = self.embed(batch["input_ids"], batch["attention_mask"]).float()
            if progress is not None:
                progress(len(index))
        return out

    def save(self, output_dir: str | Path, metadata: ModelMetadata) -> None:
        metadata.scale, metadata.bias = self.scale.item(), self.bias.item()
        super().save(output_dir, metadata)
        write_sentence_transformers_files(output_dir, self.encoder.config.hidden_size, metadata.max_length)

    @classmethod
    def from_pretrained(cls, path: str, metadata: ModelMetadata | None) -> BiEncoder:
        saved = metadata or ModelMetadata()
        return cls(load_weights(cls, AutoModel, path, metadata), scale=saved.scale, bias=saved.bias)


class SentenceEncoder(nn.Module):
    """What the ONNX graph computes: a bi-encoder's token states and its sentence vector, as ``BiEncoder.embed``."""

    def __init__(self, model: BiEncoder) -> None:
        super().__init__()
        self.encoder = model.encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return hidden, mean_pool(hidden, attention_mask)


class CrossEncoder(RelevanceModel):
    """One logit over the concatenated (query, item) pair: a sequence-classification head with one label."""

    architecture, title, pipeline_tag = CROSS, "cross-encoder", "text-ranking"
    hub_tags = ("cross-encoder", "reranker")
    plain_load = "`AutoModelForSequenceClassification.from_pretrained(dir)`; one logit per (query, item) pair."
    sentence_transformers_load = """from sentence_transformers import CrossEncoder

model = CrossEncoder("{model}")  # its config names the identity as the activation: predict gives the text logits
logits = model.predict([("nba playoffs | lakers trade", "warriors win game 7"),
                        ("nba playoffs | lakers trade", "new iphone released")])"""
    supports_adapters = False  # its new head must train with all its weights
    supports_in_batch_negatives = False  # each logit needs its own forward pass over the pair

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    @staticmethod
    def batch(
        tokenizer: PreTrainedTokenizerBase, queries: Sequence[str], items: Sequence[Sequence[str]], max_length: int
    ) -> Batch:
        pairs = [(query, item) for query, list_ in zip(queries, items, strict=True) for item in list_]
        return dict(tokenize(tokenizer, max_length, [q for q, _ in pairs], [i for _, i in pairs]))

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        return self.encoder(**inputs).logits.view(-1)

    @torch.inference_mode()
    def score_pairs(
        self,
        tokenizer: PreTrainedTokenizerBase,
        pairs: Sequence[Pair],
        max_length: int,
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        out, done = np.zeros(len(pairs), dtype=np.float32), 0
        for index in length_sorted_batches([q + " " + i for q, i in pairs], batch_size):
            batch = tokenize(tokenizer, max_length, [pairs[i][0] for i in index], [pairs[i][1] for i in index])
            out[index] = self(**batch).float().numpy()
            done += len(index)
            if progress is not None:
                progress(done, len(pairs), SCORING)
        return out

    def save(self, output_dir: str | Path, metadata: ModelMetadata) -> None:
        # sentence-transformers' CrossEncoder.predict applies this activation to the logit (by default a
        # sigmoid for one label, which is no click probability here): the identity returns the text logit
        # that ClickTune blends with the item priors and calibrates.
        self.encoder.config.sentence_transformers = {"activation_fn": ST_IDENTITY}
        super().save(output_dir, metadata)

    @classmethod
    def from_pretrained(cls, path: str, metadata: ModelMetadata | None) -> CrossEncoder:
        return cls(load_weights(cls, AutoModelForSequenceClassification, path, metadata, num_labels=1))


MODELS: dict[str, type[RelevanceModel]] = {model.architecture: model for model in (BiEncoder, CrossEncoder)}
assert tuple(MODELS) == ARCHITECTURES, "every architecture that recsys.model.artifact names has a class here"


def model_class(architecture: str) -> type[RelevanceModel]:
    if architecture not in MODELS:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(MODELS)}")
    return MODELS[architecture]


def load_model(architecture: str, name_or_path: str | None) -> tuple[RelevanceModel, PreTrainedTokenizerBase]:
    """A trainable model of ``architecture`` and its tokenizer, from a base model or a saved folder (checked first)."""
    path = resolve_model_path(name_or_path)
    saved = check_model_folder(path) if Path(path).is_dir() else None  # a damaged folder is refused before it loads
    return load_checked_model(architecture, path, saved)


def load_checked_model(
    architecture: str, path: str, saved: ModelMetadata | None
) -> tuple[RelevanceModel, PreTrainedTokenizerBase]:
    """:func:`load_model` of a resolved ``path`` that, where it is a folder, :func:`check_model_folder` has passed
    (``saved``: what it returned), so that a caller loads the metadata that the check read."""
    cls = model_class(architecture)
    local = Path(path).is_dir()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = cls.from_pretrained(path, saved)
    if local:  # a sentencepiece tokenizer is only counted once loaded
        check_vocabulary(path, len(tokenizer), model.encoder.get_input_embeddings().num_embeddings)
    config = model.encoder.config
    if getattr(config, "pad_token_id", None) is None:  # padded batches need one (GPT-style tokenizers lack it)
        config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def save_model(
    model: RelevanceModel, tokenizer: PreTrainedTokenizerBase, output_dir: str | Path, metadata: ModelMetadata
) -> None:
    """Write weights (safetensors), tokenizer and ``clicktune.json`` into ``output_dir``.

    The tokenizer is saved truncating at the trained ``max_length``, so that sentence-transformers'
    ``CrossEncoder`` (and a plain ``tokenizer(...)`` call) cut texts where ClickTune does.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save(output_dir, metadata)
    longest = tokenizer.model_max_length
    tokenizer.model_max_length = metadata.max_length
    try:
        tokenizer.save_pretrained(output_dir)
    finally:  # the caller's tokenizer is unchanged
        tokenizer.model_max_length = longest
    metadata.save(output_dir)
