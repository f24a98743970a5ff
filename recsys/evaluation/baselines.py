"""What a team already has: random, popularity, keyword match (TF-IDF, BM25) and a zero-shot bi-encoder.

Each baseline maps a validated click log to ``(scores, probabilities)`` for its rows. Scores that
are not probabilities are Platt-calibrated on the training log where one is given, so that
log-loss and calibration error compare like with like; no baseline ever sees evaluation labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from recsys.data.contract import CLICKED, ITEM, QUERY
from recsys.model.calibration import Calibration, sigmoid
from recsys.model.priors import ItemPriors
from recsys.scoring.scorer import Scorer

CALIBRATION_ROWS = 2000  # enough rows to fit two Platt parameters, cheap to score
BM25_K1 = 1.5  # term-frequency saturation: the (k1 + 1) ceiling on what repeating a term can add
BM25_B = 0.75  # length normalisation: 0 ignores item length, 1 divides by it fully
# Both keyword baselines tokenise alike: sklearn's default word pattern, lower-cased.
TOKENS = {"lowercase": True, "token_pattern": r"(?u)\b\w\w+\b"}

Scored = tuple[np.ndarray, np.ndarray]  # a scorer's (scores, click probabilities) for each row of a click log


def _base_rate(train: pd.DataFrame | None) -> float:
    return float(train[CLICKED].mean()) if train is not None else 0.5


def random_baseline(frame: pd.DataFrame, train: pd.DataFrame | None = None, seed: int = 0) -> Scored:
    scores = np.random.default_rng(seed).random(len(frame))
    return scores, np.full(len(frame), _base_rate(train))


def popularity_baseline(frame: pd.DataFrame, train: pd.DataFrame) -> Scored:
    """Each item's click rate in ``train``, shrunk toward the overall rate: the prior that models blend in.

    An item never shown in training gets the overall rate: that is what popularity knows of it.
    """
    scores = ItemPriors.fit(train).click_rate(frame)
    return scores, scores


def _calibrated(
    score_fn: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame, train: pd.DataFrame | None
) -> Scored:
    scores = score_fn(frame)
    if train is None:
        return scores, sigmoid(scores)
    sample = train.sample(min(len(train), CALIBRATION_ROWS), random_state=0)
    return scores, Calibration.fit(score_fn(sample), sample[CLICKED].to_numpy()).probabilities(scores)


def has_words(texts: pd.Series) -> bool:
    """Whether any text has a token of the keyword baselines (a word of two or more letters or digits)."""
    word = re.compile(TOKENS["token_pattern"])
    return any(word.search(str(text)) for text in texts)


def no_keywords(frame: pd.DataFrame, train: pd.DataFrame | None) -> Scored:
    """What keyword match says where no text has a word to match: nothing (all ties), at the base rate."""
    return np.zeros(len(frame)), np.full(len(frame), _base_rate(train))


def tfidf_baseline(frame: pd.DataFrame, train: pd.DataFrame | None = None) -> Scored:
    """Keyword match: cosine of TF-IDF vectors, the vocabulary fitted on text only (never labels)."""
    corpus = pd.concat([frame[QUERY], frame[ITEM]] + ([train[QUERY], train[ITEM]] if train is not None else []))
    if not has_words(corpus):
        return no_keywords(frame, train)
    from sklearn.feature_extraction.text import TfidfVectorizer  # imported here: --help loads no sklearn

    vectorizer = TfidfVectorizer(sublinear_tf=True, **TOKENS).fit(corpus.drop_duplicates())

    def score(rows: pd.DataFrame) -> np.ndarray:
        q = vectorizer.transform(rows[QUERY])
        i = vectorizer.transform(rows[ITEM])
        return np.asarray(q.multiply(i).sum(axis=1)).ravel()  # rows are L2-normalised: dot = cosine

    return _calibrated(score, frame, train)


def bm25_baseline(frame: pd.DataFrame, train: pd.DataFrame | None = None) -> Scored:
    """Keyword match: Okapi BM25 of the query against the item text, the items being the documents.

    score = sum over query tokens t (repeats count again) of
    idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average length)),
    with idf(t) = log(1 + (N - df + 0.5) / (df + 0.5)). N, df and the average length come from the
    distinct item texts of ``train`` and ``frame`` (text only, never labels); tokens are those of the
    TF-IDF baseline (sklearn's default pattern, lower-cased).
    """
    items = pd.concat([frame[ITEM]] + ([train[ITEM]] if train is not None else [])).drop_duplicates()
    if not has_words(items):
        return no_keywords(frame, train)
    from scipy import sparse  # imported here, as sklearn: --help loads neither
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(**TOKENS)
    documents = vectorizer.fit_transform(items)
    df = np.asarray((documents > 0).sum(axis=0)).ravel()
    idf = np.log1p((documents.shape[0] - df + 0.5) / (df + 0.5))
    average_length = documents.sum() / documents.shape[0]  # > 0: fitting refuses items without a single token

    def score(rows: pd.DataFrame) -> np.ndarray:
        tf = sparse.csr_matrix(vectorizer.transform(rows[ITEM]), dtype=np.float64)
        length = np.asarray(tf.sum(axis=1)).ravel()
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / average_length)
        # One weight per stored (row, term) entry: only terms the item contains can score.
        row_of_entry = np.repeat(np.arange(tf.shape[0]), np.diff(tf.indptr))
        weights = tf.copy()
        weights.data = idf[tf.indices] * tf.data * (BM25_K1 + 1) / (tf.data + norm[row_of_entry])
        queries = vectorizer.transform(rows[QUERY])
        return np.asarray(queries.multiply(weights).sum(axis=1), dtype=np.float64).ravel()

    return _calibrated(score, frame, train)


def zero_shot_baseline(frame: pd.DataFrame, scorer: Scorer, train: pd.DataFrame | None = None) -> Scored:
    """The pretrained bi-encoder's cosine similarity, before any fine-tuning."""

    def score(rows: pd.DataFrame) -> np.ndarray:
        return scorer.score_pairs(list(zip(rows[QUERY], rows[ITEM], strict=True)))

    return _calibrated(score, frame, train)
