"""recsys/model/st_format.py: a saved folder loads in sentence-transformers and scores as ClickTune does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_architectures import ITEMS, QUERY  # a query, the one relevant headline first, then others

from recsys.model.architectures import load_model, save_model
from recsys.model.artifact import (
    BI,
    CROSS,
    POOLING_CONFIG_FILE,
    ST_CONFIG_FILE,
    ST_MODULES_FILE,
    ST_TRANSFORMER_FILE,
    ModelMetadata,
)
from recsys.scoring.loading import load_scorer
from recsys.scoring.ranking import ranked_order

# Longer than the 12 tokens the models below are saved with: what is cut, and where, must agree too.
LONG = "microsoft windows revenue " * 8


@pytest.mark.slow
def test_a_saved_bi_encoder_is_a_sentence_transformers_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model, tokenizer = load_model(BI, str(tiny_model_dir))
    save_model(model, tokenizer, tmp_path, ModelMetadata(base_model=str(tiny_model_dir), max_length=12))
    assert {ST_MODULES_FILE, ST_TRANSFORMER_FILE, ST_CONFIG_FILE, POOLING_CONFIG_FILE} <= {
        p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()
    }

    loaded = SentenceTransformer(str(tmp_path), device="cpu")
    assert [type(module).__name__ for module in loaded] == ["Transformer", "Pooling", "Normalize"]
    assert loaded.max_seq_length == 12  # the trained max_length, not the tokenizer's 512
    texts = [QUERY, *ITEMS, LONG]
    expected = model.encode(tokenizer, texts, max_length=12)
    np.testing.assert_allclose(loaded.encode(texts), expected.numpy(), atol=1e-5)
    # Its similarity is the cosine that the logit scales: logit = scale * cosine + bias.
    scorer = load_scorer(str(tmp_path))
    cosine = loaded.similarity(loaded.encode([QUERY]), loaded.encode(ITEMS))[0].numpy()
    np.testing.assert_allclose(
        scorer.model.scale.item() * cosine + scorer.model.bias.item(), scorer.score(QUERY, ITEMS), atol=1e-5
    )


@pytest.mark.slow
def test_a_bi_encoder_saved_from_the_packaged_minilm_encodes_alike_in_sentence_transformers(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model, tokenizer = load_model(BI, None)
    save_model(model, tokenizer, tmp_path, ModelMetadata(max_length=12))
    loaded = SentenceTransformer(str(tmp_path), device="cpu")
    assert loaded.max_seq_length == 12
    texts = [QUERY, *ITEMS, LONG]
    np.testing.assert_allclose(loaded.encode(texts), model.encode(tokenizer, texts, max_length=12).numpy(), atol=1e-5)


def test_a_saved_cross_encoder_loads_with_sentence_transformers_cross_encoder(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from sentence_transformers import CrossEncoder as SentenceTransformersCrossEncoder

    torch.manual_seed(0)
    model, tokenizer = load_model(CROSS, str(tiny_model_dir))
    save_model(
        model, tokenizer, tmp_path, ModelMetadata(architecture=CROSS, base_model=str(tiny_model_dir), max_length=12)
    )
    assert not (tmp_path / ST_MODULES_FILE).exists()  # a plain sequence-classification folder, as CrossEncoder saves

    loaded = SentenceTransformersCrossEncoder(str(tmp_path), device="cpu")
    # Its default activation for one label is a sigmoid; the saved config names the identity instead.
    assert isinstance(loaded.activation_fn, torch.nn.Identity)
    pairs = [(QUERY, item) for item in [*ITEMS, LONG]]
    logits = load_scorer(str(tmp_path)).score_pairs(pairs)
    np.testing.assert_allclose(loaded.predict(pairs), logits, atol=1e-5)
    np.testing.assert_allclose(
        loaded.predict(pairs, activation_fn=torch.nn.Sigmoid()), 1 / (1 + np.exp(-logits)), atol=1e-5
    )
    ranked = loaded.rank(QUERY, ITEMS)
    assert [r["corpus_id"] for r in ranked] == ranked_order(logits[: len(ITEMS)]).tolist()
