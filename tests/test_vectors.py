"""The item-vector cache: a seen list is not encoded again, and cached scores are the fresh ones."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from recsys.errors import UserError
from recsys.scoring.scorer import Scorer
from recsys.scoring.vectors import TorchEncoder, VectorCache

CONTEXT = "nba playoffs | lakers trade"
ITEMS = [f"headline {n}: warriors win game {n}" for n in range(40)]


class CountingEncoder:
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self, encoder: TorchEncoder) -> None:
        self.encoder, self.texts, self.name = encoder, [], encoder.name

    def encode(self, texts, progress=None):
        self.texts += list(texts)
        return self.encoder.encode(texts, progress)


@pytest.fixture
def counted(bi_scorer: Scorer) -> tuple[Scorer, CountingEncoder]:
    encoder = CountingEncoder(TorchEncoder(bi_scorer.model, bi_scorer.tokenizer, bi_scorer.metadata.max_length))
    scorer = Scorer(bi_scorer.model, bi_scorer.tokenizer, bi_scorer.metadata, version="v1", encoder=encoder)
    return scorer, encoder


def test_a_seen_list_for_a_new_context_encodes_only_the_context(counted) -> None:
    scorer, encoder = counted
    first = scorer.score(CONTEXT, ITEMS)
    assert sorted(encoder.texts) == sorted([CONTEXT, *ITEMS])
    encoder.texts.clear()
    scorer.score("nokia phones", ITEMS)
    assert encoder.texts == ["nokia phones"]
    encoder.texts.clear()
    np.testing.assert_array_equal(scorer.score(CONTEXT, ITEMS), first)
    assert encoder.texts == []


def test_cached_scores_are_the_fresh_scores(counted, bi_scorer: Scorer) -> None:
    scorer, _ = counted
    scorer.score(CONTEXT, ITEMS[::2])  # half the list seen before, encoded in other batches
    fresh = Scorer(bi_scorer.model, bi_scorer.tokenizer, bi_scorer.metadata, version="fresh")
    np.testing.assert_allclose(scorer.score(CONTEXT, ITEMS), fresh.score(CONTEXT, ITEMS), rtol=1e-5, atol=1e-5)


def test_the_cache_keeps_models_apart_and_drops_the_least_recently_used(bi_scorer: Scorer) -> None:
    encoder = CountingEncoder(TorchEncoder(bi_scorer.model, bi_scorer.tokenizer, bi_scorer.metadata.max_length))
    cache = VectorCache(max_items=3)
    cache.encode("a", encoder, ["x", "y", "z"])
    cache.encode("b", encoder, ["x"])  # another model's x: encoded again; a's x is now least recently used
    assert encoder.texts == ["x", "y", "z", "x"] and len(cache) == 3
    encoder.texts.clear()
    cache.encode("a", encoder, ["z", "y", "x"])
    assert encoder.texts == ["x"]  # dropped when b's x came in


def test_a_cache_of_no_vectors_still_scores(bi_scorer: Scorer) -> None:
    scorer = Scorer(bi_scorer.model, bi_scorer.tokenizer, bi_scorer.metadata, cache=VectorCache(max_items=0))
    np.testing.assert_allclose(scorer.score(CONTEXT, ITEMS[:5]), bi_scorer.score(CONTEXT, ITEMS[:5]), atol=1e-5)
    assert len(scorer.cache) == 0
    with pytest.raises(ValueError, match="0 or more"):
        VectorCache(max_items=-1)


def test_threads_sharing_one_cache_get_the_same_vectors(counted) -> None:
    scorer, _ = counted
    expected = scorer.score(CONTEXT, ITEMS)
    scorer.cache.clear()
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(scorer.score(CONTEXT, ITEMS))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_a_cross_encoder_has_no_text_vectors(cross_scorer: Scorer) -> None:
    assert cross_scorer.encoder is None
    with pytest.raises(UserError, match=r"\(zero-shot\): text vectors needs a bi-encoder"):
        cross_scorer.embed(["a"])
