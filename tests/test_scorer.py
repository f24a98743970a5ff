"""The scorer over a model: text logits, final scores and click probabilities, and what needs text vectors, on the
tiny BERT. Loading is tests/test_loading.py's; ranking tests/test_ranking.py's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import ITEM
from recsys.errors import UserError
from recsys.model.artifact import BI, CROSS
from recsys.scoring.scorer import Scorer, require_bi_encoder

HEADLINES = json.loads((Path(__file__).parent / "data" / "headlines.json").read_text(encoding="utf-8"))
QUERY, ITEMS = HEADLINES["query"], HEADLINES["items"]  # a query, the one relevant headline first, then others


def test_predict_proba_is_a_monotone_probability(scorer: Scorer) -> None:
    pairs = [(QUERY, item) for item in ITEMS]
    logits, probabilities = scorer.score_pairs(pairs), scorer.predict_proba(pairs)
    assert ((probabilities > 0) & (probabilities < 1)).all()
    assert (np.argsort(logits, kind="stable") == np.argsort(probabilities, kind="stable")).all()


def test_score_is_the_final_score_of_the_text_logits(scorer: Scorer) -> None:
    logits = scorer.score_pairs([(QUERY, item) for item in ITEMS])
    final = scorer.final_scores(logits, pd.DataFrame({ITEM: ITEMS}))
    np.testing.assert_allclose(scorer.score(QUERY, ITEMS), final, rtol=1e-6)
    assert scorer.score(QUERY, []).shape == (0,)


def test_what_needs_text_vectors_refuses_a_cross_encoder_naming_the_model_and_the_fix() -> None:
    with pytest.raises(
        UserError,
        match=r"^models/x: an ONNX export needs a bi-encoder, which encodes each text apart; this model is a "
        r"cross-encoder, which reads each \(context, item\) pair together\. .*--architecture bi",
    ):
        require_bi_encoder(CROSS, "models/x", "an ONNX export")
    require_bi_encoder(BI, "models/x", "an ONNX export")  # a bi-encoder passes
