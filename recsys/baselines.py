"""What a team already has: random, popularity, keyword match (TF-IDF) and a zero-shot bi-encoder.

Each baseline maps a validated click log to ``(scores, probabilities)`` for its rows. Scores that
are not probabilities are Platt-calibrated on the training log where one is given, so that
log-loss and calibration error compare like with like; no baseline ever sees evaluation labels.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer

from recsys.contract import CLICKED, ITEM, ITEM_ID, QUERY
from recsys.models import Scorer, fit_calibration, sigmoid

logger = logging.getLogger(__name__)

CALIBRATION_ROWS = 2000  # enough rows to fit two Platt parameters, cheap to score


def _base_rate(train: pd.DataFrame | None) -> float:
    return float(train[CLICKED].mean()) if train is not None else 0.5


def random_baseline(frame: pd.DataFrame, train: pd.DataFrame | None = None, seed: int = 0) -> tuple:
    scores = np.random.default_rng(seed).random(len(frame))
    return scores, np.full(len(frame), _base_rate(train))


def popularity_baseline(frame: pd.DataFrame, train: pd.DataFrame, smoothing: float = 5.0) -> tuple:
    """Each item's click rate in ``train``, shrunk toward the overall rate by ``smoothing`` pseudo-views."""
    prior = _base_rate(train)
    key = ITEM_ID if ITEM_ID in frame.columns and ITEM_ID in train.columns else ITEM
    stats = train.groupby(train[key].astype(str))[CLICKED].agg(["sum", "count"])
    rate = (stats["sum"] + smoothing * prior) / (stats["count"] + smoothing)
    # An item never shown in training gets the overall rate: that is what popularity knows of it.
    scores = frame[key].astype(str).map(rate).fillna(prior).to_numpy(dtype=np.float64)
    return scores, scores


def _calibrated(score_fn, frame: pd.DataFrame, train: pd.DataFrame | None) -> tuple:
    scores = score_fn(frame)
    if train is None:
        return scores, sigmoid(scores)
    sample = train.sample(min(len(train), CALIBRATION_ROWS), random_state=0)
    a, b = fit_calibration(score_fn(sample), sample[CLICKED].to_numpy())
    return scores, sigmoid(a * scores + b)


def tfidf_baseline(frame: pd.DataFrame, train: pd.DataFrame | None = None) -> tuple:
    """Keyword match: cosine of TF-IDF vectors, the vocabulary fitted on text only (never labels)."""
    corpus = pd.concat([frame[QUERY], frame[ITEM]] + ([train[QUERY], train[ITEM]] if train is not None else []))
    vectorizer = TfidfVectorizer(sublinear_tf=True).fit(corpus.drop_duplicates())

    def score(rows: pd.DataFrame) -> np.ndarray:
        q = vectorizer.transform(rows[QUERY])
        i = vectorizer.transform(rows[ITEM])
        return np.asarray(q.multiply(i).sum(axis=1)).ravel()  # rows are L2-normalised: dot = cosine

    return _calibrated(score, frame, train)


def zero_shot_baseline(frame: pd.DataFrame, scorer: Scorer, train: pd.DataFrame | None = None) -> tuple:
    """The pretrained bi-encoder's cosine similarity, before any fine-tuning."""

    def score(rows: pd.DataFrame) -> np.ndarray:
        return scorer.score_pairs(list(zip(rows[QUERY], rows[ITEM], strict=True)))

    return _calibrated(score, frame, train)
