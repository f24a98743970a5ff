"""The scorer over a saved model: loading, final scores, click probabilities and rankings (sentence-transformers'
``rank`` contract: rank from 1, score high to low, stable ties, top_k), on the tiny BERT and the packaged MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recsys.model.architectures import BiEncoder, CrossEncoder
from recsys.model.artifact import BI, CROSS, DEFAULT_MODEL
from recsys.scoring.scorer import Scorer, load_scorer, rank_scores

HEADLINES = json.loads((Path(__file__).parent / "data" / "headlines.json").read_text(encoding="utf-8"))
QUERY, ITEMS = HEADLINES["query"], HEADLINES["items"]  # a query, the one relevant headline first, then others


def test_load_scorer_on_a_base_model_is_zero_shot_bi_encoder(tiny_model_dir: Path, bi_scorer: Scorer) -> None:
    assert bi_scorer.metadata.architecture == BI
    assert isinstance(bi_scorer.model, BiEncoder)
    assert not bi_scorer.metadata.fine_tuned
    assert bi_scorer.metadata.base_model == str(tiny_model_dir)
    assert not bi_scorer.model.training
    assert not bi_scorer.model.encoder.training
    assert "[UNK]" not in bi_scorer.tokenizer.tokenize(ITEMS[0])


def test_load_scorer_reads_the_saved_architecture(cross_scorer: Scorer) -> None:
    assert cross_scorer.metadata.architecture == CROSS
    assert isinstance(cross_scorer.model, CrossEncoder)
    assert cross_scorer.model.encoder.config.num_labels == 1


def test_predict_proba_is_a_monotone_probability(scorer: Scorer) -> None:
    pairs = [(QUERY, item) for item in ITEMS]
    logits, probabilities = scorer.score_pairs(pairs), scorer.predict_proba(pairs)
    assert ((probabilities > 0) & (probabilities < 1)).all()
    assert (np.argsort(logits, kind="stable") == np.argsort(probabilities, kind="stable")).all()


def test_rank_orders_by_score(scorer: Scorer) -> None:
    ranked = scorer.rank(QUERY, ITEMS)
    assert [r["rank"] for r in ranked] == list(range(1, len(ITEMS) + 1))
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert sorted(r["corpus_id"] for r in ranked) == list(range(len(ITEMS)))
    assert all(ITEMS[r["corpus_id"]] == r["item"] for r in ranked)
    assert all(0 < r["probability"] < 1 for r in ranked)
    np.testing.assert_allclose(
        [r["score"] for r in sorted(ranked, key=lambda r: r["corpus_id"])], scorer.score(QUERY, ITEMS), rtol=1e-6
    )
    np.testing.assert_allclose([r["probability"] for r in ranked], scorer.probabilities(np.array(scores)), rtol=1e-12)


def test_rank_top_k_is_a_prefix(scorer: Scorer) -> None:
    full = scorer.rank(QUERY, ITEMS)
    assert [r["corpus_id"] for r in scorer.rank(QUERY, ITEMS, top_k=2)] == [r["corpus_id"] for r in full[:2]]
    assert len(scorer.rank(QUERY, ITEMS, top_k=100)) == len(ITEMS)
    assert scorer.rank(QUERY, ITEMS, top_k=0) == []


def test_rank_empty_in_empty_out(scorer: Scorer) -> None:
    assert scorer.rank(QUERY, []) == []


def test_rank_equal_items_keep_input_order(bi_scorer: Scorer) -> None:
    items = [ITEMS[2], ITEMS[0], ITEMS[2], ITEMS[0], ITEMS[2]]
    ranked = bi_scorer.rank(QUERY, items)
    for text in (ITEMS[0], ITEMS[2]):
        ids = [r["corpus_id"] for r in ranked if r["item"] == text]
        assert ids == sorted(ids)
        assert len({r["score"] for r in ranked if r["item"] == text}) == 1


def test_rank_scores_is_a_stable_sort() -> None:
    ranked = rank_scores(["a", "b", "c", "d", "e"], np.array([1.0, 2.0, 1.0, 2.0, 1.0]))
    assert [r["corpus_id"] for r in ranked] == [1, 3, 0, 2, 4]
    assert [r["rank"] for r in ranked] == [1, 2, 3, 4, 5]
    assert "probability" not in ranked[0]
    assert rank_scores([], np.array([])) == []


def test_rank_scores_top_k() -> None:
    items, scores = ["a", "b", "c"], np.array([0.1, 0.3, 0.2])
    assert [r["item"] for r in rank_scores(items, scores, top_k=2)] == ["b", "c"]
    assert rank_scores(items, scores, top_k=0) == []
    assert rank_scores(items, scores, top_k=-1) == []
    assert len(rank_scores(items, scores, top_k=10)) == 3


@pytest.mark.slow
def test_packaged_minilm_ranks_the_relevant_item_first() -> None:
    scorer = load_scorer(None)
    assert scorer.metadata.base_model == DEFAULT_MODEL
    assert scorer.model.encoder.config.hidden_size == 384
    relevant = "Lakers beat the Celtics in overtime to reach the NBA finals"
    irrelevant = ["Easy sourdough bread recipe for beginners", "Stock markets fall as interest rates rise"]
    ranked = scorer.rank("nba basketball playoffs", [*irrelevant, relevant])
    assert ranked[0]["item"] == relevant
    assert ranked[0]["score"] > ranked[1]["score"]
