"""recsys.evaluation.metrics cross-checked by trec_eval (pytrec_eval) on the bundled Bing News logs.

Where the definitions are the same, they agree to 1e-6:

- nDCG@k: trec_eval's ``ndcg_cut`` takes the gain of a document as its relevance, MIND as
  2^relevance - 1; with 0/1 clicks both are the click. Both discount by log2(rank + 1) and divide
  by the DCG of the ideal order of the same labels.
- MRR: trec_eval's ``recip_rank`` is 1 / the rank of the *first* click; MIND's MRR is the mean of
  1 / rank over *all* clicks of the group. They agree on groups with one click only. MIND's is
  trec_eval's averaged over one query per click, in which that click is the only relevant item
  and the other clicks count as non-clicks: that is what is compared.
- Ties: trec_eval breaks them by document name, descending; ``mrr`` and ``ndcg`` keep the input
  order. Named so that the two orders coincide, the per-group functions agree on TF-IDF scores,
  ties and all. ``group_metrics`` shuffles each log's rows (seeded) before ranking, so its ties
  fall in an order no document naming reproduces: it is compared on scores without ties.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytrec_eval

from recsys.data.contract import CLICKED, GROUP, read_clicks
from recsys.evaluation.baselines import tfidf_baseline
from recsys.evaluation.metrics import evaluate_scores, group_metrics, mrr, ndcg

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "bing_news"
NDCG = {"ndcg_cut_5": "ndcg@5", "ndcg_cut_10": "ndcg@10"}  # trec_eval's name: ours
TOLERANCE = 1e-6

Judged = dict[str, dict[str, int]]  # trec_eval's qrels: query -> document -> relevance
Run = dict[str, dict[str, float]]  # trec_eval's run: query -> document -> score


@pytest.fixture(scope="module", params=["valid.csv", "test_users.csv"])
def log(request: pytest.FixtureRequest) -> pd.DataFrame:
    return read_clicks(BUNDLED / request.param)


def trec_eval(qrels: Judged, run: Run, measures: set[str]) -> dict[str, dict[str, float]]:
    return pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)


def ranked_groups(frame: pd.DataFrame, scores: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each group's (labels, scores) in row order, for the groups the ranking metrics average over."""
    scored = frame.assign(_score=scores)
    return {
        str(group): (part[CLICKED].to_numpy(), part["_score"].to_numpy())
        for group, part in scored.groupby(GROUP, sort=False)
        if 0 < part[CLICKED].sum() < len(part)
    }


def documents(n: int) -> list[str]:
    """Names whose descending order, trec_eval's tie-break, is the input order: ours."""
    return [f"d{n - i:06d}" for i in range(n)]


def as_trec(groups: dict[str, tuple[np.ndarray, np.ndarray]], names=documents) -> tuple[Judged, Run]:
    qrels, run = {}, {}
    for group, (labels, scores) in groups.items():
        docs = names(len(labels))
        qrels[group] = {d: int(label) for d, label in zip(docs, labels, strict=True)}
        run[group] = {d: float(s) for d, s in zip(docs, scores, strict=True)}
    return qrels, run


def one_query_per_click(groups: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[Judged, Run, dict[str, str]]:
    """For MIND's MRR: a query per click in which that click alone is relevant; the other clicks count as
    non-clicks, still ranked where they are. Returns the queries and the group of each."""
    qrels, run, group_of = {}, {}, {}
    for group, (labels, scores) in groups.items():
        docs = documents(len(labels))
        for click in np.flatnonzero(labels):
            query = f"{group}/{docs[click]}"
            qrels[query] = {d: int(i == click) for i, d in enumerate(docs)}
            run[query] = {d: float(s) for d, s in zip(docs, scores, strict=True)}
            group_of[query] = group
    return qrels, run, group_of


def mind_mrr_by_trec_eval(groups: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    qrels, run, group_of = one_query_per_click(groups)
    reciprocal_ranks = pd.Series({q: r["recip_rank"] for q, r in trec_eval(qrels, run, {"recip_rank"}).items()})
    return reciprocal_ranks.groupby(pd.Series(group_of)).mean().to_dict()


def tie_free(scores: np.ndarray, seed: int = 0) -> np.ndarray:
    """The ranks of ``scores`` with ties broken at random: the same order where scores differ, no ties."""
    jitter = np.random.default_rng(seed).random(len(scores))
    return np.lexsort((jitter, scores)).argsort().astype(np.float64)


def test_per_group_ndcg_and_single_click_mrr_agree_with_trec_eval_ties_included(log: pd.DataFrame) -> None:
    scores, _ = tfidf_baseline(log)
    groups = ranked_groups(log, scores)
    assert sum(len(np.unique(s)) < len(s) for _, s in groups.values()) > len(groups) / 2  # ties are tested
    qrels, run = as_trec(groups)
    theirs = trec_eval(qrels, run, {"recip_rank", "ndcg_cut.5,10"})
    for group, (labels, s) in groups.items():
        assert theirs[group]["ndcg_cut_5"] == pytest.approx(ndcg(labels, s, 5), abs=TOLERANCE)
        assert theirs[group]["ndcg_cut_10"] == pytest.approx(ndcg(labels, s, 10), abs=TOLERANCE)
        if labels.sum() == 1:
            assert theirs[group]["recip_rank"] == pytest.approx(mrr(labels, s), abs=TOLERANCE)


def test_the_tie_break_is_what_makes_them_agree(log: pd.DataFrame) -> None:
    """Named the other way round, trec_eval orders ties against the input order and disagrees."""
    scores, _ = tfidf_baseline(log)
    groups = ranked_groups(log, scores)
    qrels, run = as_trec(groups, names=lambda n: documents(n)[::-1])
    theirs = trec_eval(qrels, run, {"ndcg_cut.10"})
    assert any(abs(theirs[g]["ndcg_cut_10"] - ndcg(labels, s, 10)) > TOLERANCE for g, (labels, s) in groups.items())


def test_mind_mrr_is_trec_eval_recip_rank_averaged_over_each_click(log: pd.DataFrame) -> None:
    scores, _ = tfidf_baseline(log)
    groups = ranked_groups(log, scores)
    by_trec_eval = mind_mrr_by_trec_eval(groups)
    for group, (labels, s) in groups.items():
        assert by_trec_eval[group] == pytest.approx(mrr(labels, s), abs=TOLERANCE)


def test_trec_eval_recip_rank_counts_the_first_click_only(log: pd.DataFrame) -> None:
    """Why recip_rank alone is not MIND's MRR: on a group with several clicks it is 1 / the first one's rank."""
    scores, _ = tfidf_baseline(log)
    groups = {g: v for g, v in ranked_groups(log, scores).items() if v[0].sum() > 1}
    assert groups, "the bundled log has groups with several clicks"
    qrels, run = as_trec(groups)
    theirs = trec_eval(qrels, run, {"recip_rank"})
    for group, (labels, s) in groups.items():
        first_click = np.flatnonzero(labels[np.argsort(-s, kind="stable")])[0] + 1
        assert theirs[group]["recip_rank"] == pytest.approx(1 / first_click)
    assert any(theirs[g]["recip_rank"] > mrr(labels, s) + TOLERANCE for g, (labels, s) in groups.items())


@pytest.mark.parametrize("scorer", ["random", "tfidf"])
@pytest.mark.slow
def test_evaluate_scores_agrees_with_trec_eval_on_scores_without_ties(log: pd.DataFrame, scorer: str) -> None:
    scores = np.random.default_rng(0).random(len(log)) if scorer == "random" else tie_free(tfidf_baseline(log)[0])
    assert len(np.unique(scores)) == len(scores)
    ours = evaluate_scores(log, scores, np.full(len(log), 0.5), intervals=False)
    per_group = group_metrics(log, scores).set_index(GROUP)
    groups = ranked_groups(log, scores)
    assert set(groups) == set(per_group.index.astype(str)) and ours.groups == len(groups)

    qrels, run = as_trec(groups)
    theirs = pd.DataFrame(trec_eval(qrels, run, {"ndcg_cut.5,10"})).T
    for trec_name, name in NDCG.items():
        assert theirs[trec_name].mean() == pytest.approx(ours.values[name], abs=TOLERANCE)
    assert np.mean(list(mind_mrr_by_trec_eval(groups).values())) == pytest.approx(ours.values["mrr"], abs=TOLERANCE)
