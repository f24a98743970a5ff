"""Relevance models: the registry, loading, batching, scoring pairs and saving, on the tiny BERT and the packaged
MiniLM. The scorer over them: tests/test_scorer.py; a saved folder in sentence-transformers: tests/test_st_format.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification

from recsys.model.architectures import MODELS, BiEncoder, CrossEncoder, load_model, model_class, save_model
from recsys.model.artifact import (
    ARCHITECTURES,
    BI,
    CROSS,
    METADATA_FILE,
    TRAINING_METRICS_FILE,
    ModelMetadata,
)
from recsys.model.relevance_model import RelevanceModel
from recsys.scoring.loading import load_scorer
from recsys.scoring.scorer import Scorer

HEADLINES = json.loads((Path(__file__).parent / "data" / "headlines.json").read_text(encoding="utf-8"))
QUERY, ITEMS = HEADLINES["query"], HEADLINES["items"]  # a query, the one relevant headline first, then others


# The registry and loading


def test_models_registry_has_one_class_per_architecture() -> None:
    assert tuple(MODELS) == ARCHITECTURES
    for architecture, cls in MODELS.items():
        assert issubclass(cls, RelevanceModel)
        assert cls.architecture == architecture
        assert model_class(architecture) is cls
        assert cls.title and cls.pipeline_tag and cls.plain_load and cls.hub_tags
        assert "{model}" in cls.sentence_transformers_load
    assert MODELS[BI] is BiEncoder and MODELS[CROSS] is CrossEncoder
    assert BiEncoder.scalars == ("scale", "bias") and CrossEncoder.scalars == ()
    assert BiEncoder.supports_adapters and not CrossEncoder.supports_adapters


def test_load_model_rejects_an_unknown_architecture(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown architecture 'poly'; choose one of bi, cross"):
        load_model("poly", str(tiny_model_dir))


def test_model_class_rejects_an_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'poly'; choose one of bi, cross"):
        model_class("poly")


# Batches for training: batch() + forward give one logit per pair, as scoring does

LISTS = [(QUERY, [ITEMS[0], ITEMS[1]]), ("nokia phones", [ITEMS[3]]), (QUERY, [ITEMS[2], ITEMS[4], ITEMS[0]])]


def test_batch_and_forward_give_one_logit_per_pair_that_score_pairs_agrees_with(scorer: Scorer) -> None:
    queries, items = [q for q, _ in LISTS], [list_ for _, list_ in LISTS]
    pairs = [(q, item) for q, list_ in LISTS for item in list_]
    batch = type(scorer.model).batch(scorer.tokenizer, queries, items, scorer.metadata.max_length)
    with torch.no_grad():
        logits = scorer.model(**batch)
    assert logits.shape == (len(pairs),)
    np.testing.assert_allclose(logits.numpy(), scorer.score_pairs(pairs), rtol=1e-4, atol=1e-5)


def test_bi_encoder_batch_encodes_each_distinct_query_once(bi_scorer: Scorer) -> None:
    queries, items = [q for q, _ in LISTS], [list_ for _, list_ in LISTS]
    batch = BiEncoder.batch(bi_scorer.tokenizer, queries, items, 32)
    assert len(batch["query_input_ids"]) == 2  # QUERY twice, "nokia phones" once
    assert len(batch["item_input_ids"]) == sum(len(list_) for list_ in items)
    assert batch["query_index"].tolist() == [0, 0, 1, 0, 0, 0]


# Scoring


def test_score_pairs_shape_and_order(scorer: Scorer) -> None:
    pairs = [(QUERY, item) for item in ITEMS] + [("nokia phones", item) for item in ITEMS]
    scores = scorer.score_pairs(pairs)
    assert scores.shape == (len(pairs),)
    assert np.isfinite(scores).all()
    # Pairs are batched by length internally; output order must still be input order.
    np.testing.assert_allclose(scorer.score_pairs(pairs[::-1]), scores[::-1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scorer.score_pairs(pairs, batch_size=3), scores, rtol=1e-4, atol=1e-5)


def test_score_pairs_empty(scorer: Scorer) -> None:
    assert scorer.score_pairs([]).shape == (0,)


def test_score_pairs_progress_counts_pairs_up_to_all_of_them(scorer: Scorer, monkeypatch) -> None:
    if scorer.encoder is not None:  # nothing cached, two texts per forward pass
        scorer.cache.clear()
        monkeypatch.setattr(scorer.encoder, "batch_size", 2)
    pairs = [(QUERY, item) for item in ITEMS] + [("nokia phones", item) for item in ITEMS[:3]]
    calls: list[tuple[int, int]] = []
    scorer.score_pairs(pairs, batch_size=2, progress=lambda done, total, what: calls.append((done, total)))
    assert len(calls) > 1
    assert {total for _, total in calls} == {len(pairs)}
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[0] >= 0
    assert calls[-1] == (len(pairs), len(pairs))


def test_bi_encoder_dedupe_matches_scoring_one_pair_at_a_time(bi_scorer: Scorer) -> None:
    # Repeated queries and items are embedded once; that must not change any score.
    pairs = [(QUERY, ITEMS[0]), ("nokia phones", ITEMS[3]), (QUERY, ITEMS[3]), (QUERY, ITEMS[0]), ("x", ITEMS[1])]
    together = bi_scorer.score_pairs(pairs)
    one_by_one = np.array([bi_scorer.score_pairs([pair])[0] for pair in pairs])
    np.testing.assert_allclose(together, one_by_one, rtol=1e-5, atol=1e-5)
    assert together[0] == together[3]


def test_bi_encoder_logit_is_scaled_cosine(bi_scorer: Scorer) -> None:
    model, tokenizer, max_length = bi_scorer.model, bi_scorer.tokenizer, bi_scorer.metadata.max_length
    query, items = model.encode(tokenizer, [QUERY], max_length), model.encode(tokenizer, ITEMS, max_length)
    assert items.shape == (len(ITEMS), model.encoder.config.hidden_size)
    torch.testing.assert_close(items.norm(dim=-1), torch.ones(len(ITEMS)))
    cosine = (query * items).sum(-1).numpy()
    expected = model.scale.item() * cosine + model.bias.item()
    np.testing.assert_allclose(bi_scorer.score(QUERY, ITEMS), expected, rtol=1e-5, atol=1e-5)


def test_bi_encoder_encode_keeps_input_order_across_batches(bi_scorer: Scorer) -> None:
    model, tokenizer = bi_scorer.model, bi_scorer.tokenizer
    together = model.encode(tokenizer, ITEMS, 32)
    torch.testing.assert_close(model.encode(tokenizer, ITEMS, 32, batch_size=2), together, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model.encode(tokenizer, ITEMS[::-1], 32), together.flip(0), rtol=1e-4, atol=1e-5)


# Ranking


# Saving and reloading


def test_bi_encoder_round_trip(tiny_model_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = load_model(BI, str(tiny_model_dir))
    with torch.no_grad():
        model.scale.fill_(7.5)
        model.bias.fill_(-2.25)
    metadata = ModelMetadata(architecture=BI, base_model=str(tiny_model_dir), threshold=0.3, fine_tuned=True)
    save_model(model, tokenizer, tmp_path, metadata)
    (tmp_path / TRAINING_METRICS_FILE).write_text("{}")  # what a finished run writes last

    assert (tmp_path / "model.safetensors").is_file()
    assert (tmp_path / METADATA_FILE).is_file()
    plain = AutoModel.from_pretrained(tmp_path)
    for name, tensor in model.encoder.state_dict().items():
        torch.testing.assert_close(plain.state_dict()[name], tensor)

    reloaded = load_scorer(str(tmp_path))
    assert reloaded.model.scale.item() == 7.5
    assert reloaded.model.bias.item() == -2.25
    assert reloaded.metadata.fine_tuned
    assert reloaded.metadata.threshold == 0.3
    assert (reloaded.metadata.scale, reloaded.metadata.bias) == (7.5, -2.25)  # save_model recorded them
    original = Scorer(model, tokenizer, metadata)
    np.testing.assert_allclose(reloaded.score(QUERY, ITEMS), original.score(QUERY, ITEMS), rtol=1e-5, atol=1e-5)


def test_cross_encoder_round_trip(cross_dir: Path, cross_scorer: Scorer) -> None:
    plain = AutoModelForSequenceClassification.from_pretrained(cross_dir)
    assert plain.config.num_labels == 1
    for name, tensor in cross_scorer.model.encoder.state_dict().items():
        torch.testing.assert_close(plain.state_dict()[name], tensor)
    pairs = [(QUERY, item) for item in ITEMS]
    batch = cross_scorer.tokenizer([q for q, _ in pairs], [i for _, i in pairs], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = plain.eval()(**batch).logits.view(-1).numpy()
    np.testing.assert_allclose(cross_scorer.score_pairs(pairs), logits, rtol=1e-5, atol=1e-5)
