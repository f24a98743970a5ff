"""The model tab's evaluations, run and cached per model version (recsys.serving.evaluations)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from recsys.defaults import HELD_OUT_FILES, TRAIN_FILE, VALID_FILE
from recsys.model.artifact import ModelMetadata
from recsys.scoring.loading import load_scorer
from recsys.scoring.scorer import Scorer
from recsys.serving.evaluations import Evaluations, own_tokenizer
from recsys.serving.service import InputError, ServedModels


@pytest.fixture(scope="module")
def scorer(tiny_model_dir: Path) -> Scorer:
    return load_scorer(str(tiny_model_dir))


def test_evaluations_offer_the_configured_log_then_the_bundled_splits(scorer: Scorer, tmp_path: Path) -> None:
    bundled = [f.name for f in (*HELD_OUT_FILES, VALID_FILE) if f.is_file()]  # names only: no server path
    models = ServedModels(scorer)
    assert Evaluations(models, tmp_path, "/no/such/eval.csv", None).files == bundled
    assert Evaluations(models, tmp_path, str(HELD_OUT_FILES[0]), None).files == bundled  # never twice
    empty = Evaluations(models, tmp_path, None, None)
    assert empty.files == [] and empty.cached() is None
    with pytest.raises(InputError, match="No click log to evaluate on: set EVAL_FILE"):
        empty.run(None)


@pytest.mark.slow
def test_evaluations_run_and_are_cached_per_model_version(
    scorer: Scorer, tmp_path: Path, clicks_path: Path, tiny_model_dir: Path, trained_model_dir: Path
) -> None:
    models = ServedModels(scorer, model_dir=str(tiny_model_dir))
    evaluations = Evaluations(models, tmp_path, str(clicks_path), str(clicks_path))
    assert evaluations.files[0] == clicks_path.name and evaluations.cached() is None
    steps: list[tuple[int, int, str]] = []
    evaluation = evaluations.run(None, lambda *step: steps.append(step))
    assert evaluation.data_file == clicks_path.name
    assert set(evaluation.baselines) == {"random", "popularity", "tfidf", "bm25", "zero_shot"}
    assert len(evaluation.labels) == len(evaluation.scores) == len(evaluation.probabilities) == 141
    assert [done for done, _, _ in steps] == sorted(done for done, _, _ in steps) and steps[-1][0] == steps[-1][1]

    # A restart over the same model finds it; the cached one has the per-row scores for the plots.
    cached = Evaluations(models, tmp_path, str(clicks_path), str(clicks_path)).cached()
    assert cached is not None and cached.to_json() == evaluation.to_json()
    assert np.allclose(cached.scores, evaluation.scores) and np.array_equal(cached.labels, evaluation.labels)
    # Another model version (a retrained folder) has none yet.
    tuned = Scorer(scorer.model, scorer.tokenizer, ModelMetadata.load(trained_model_dir))
    retrained = ServedModels(tuned, scorer, model_dir=str(trained_model_dir))
    assert retrained.version != models.version
    assert Evaluations(retrained, tmp_path, str(clicks_path), str(clicks_path)).cached() is None


def test_evaluations_refuse_a_file_that_is_not_offered(scorer: Scorer, tmp_path: Path, clicks_path: Path) -> None:
    evaluations = Evaluations(ServedModels(scorer), tmp_path, str(clicks_path), None)
    for path in ("/etc/passwd", str(TRAIN_FILE)):  # a secret, and a real click log the app does not offer
        with pytest.raises(InputError, match=r"Pick one of the app's click logs: clicks\.csv, test_users\.csv"):
            evaluations.run(path)
    assert not (tmp_path / "evaluations").exists()  # nothing was evaluated


@pytest.mark.slow
def test_a_cached_evaluation_that_does_not_read_back_is_evaluated_again(
    scorer: Scorer, tmp_path: Path, clicks_path: Path, tiny_model_dir: Path
) -> None:
    models = ServedModels(scorer, model_dir=str(tiny_model_dir))
    evaluations = Evaluations(models, tmp_path, str(clicks_path), str(clicks_path))
    evaluations.run(None)
    (cache,) = (tmp_path / "evaluations").rglob("*.json")
    for damaged in ('{"eval_file": "clicks.csv", "metrics": {}}', '{"auc": 0.5', ""):  # another version, cut short
        cache.write_text(damaged, encoding="utf-8")
        assert evaluations.cached() is None
    assert not list(cache.parent.glob(".*partial"))  # saving leaves no temporary file behind


def test_an_evaluation_run_before_is_read_back_not_run_again(
    scorer: Scorer, tmp_path: Path, clicks_path: Path, tiny_model_dir: Path
) -> None:
    evaluations = Evaluations(ServedModels(scorer, model_dir=str(tiny_model_dir)), tmp_path, str(clicks_path), None)
    first = evaluations.run(clicks_path.name)
    (cache,) = (tmp_path / "evaluations").rglob("*.json")
    written = cache.stat().st_mtime_ns
    time.sleep(0.01)
    again = evaluations.run(clicks_path.name)
    assert cache.stat().st_mtime_ns == written  # not written again: nothing was run
    assert again.to_json(per_row=True) == first.to_json(per_row=True)


def test_an_evaluation_scores_with_its_own_tokenizer(scorer: Scorer) -> None:
    copy = own_tokenizer(scorer)
    assert copy.tokenizer is not scorer.tokenizer and copy.model is scorer.model  # no second model in memory
    pairs = [("nba playoffs", "lakers win game 7"), ("stock market", "pasta recipe")]
    assert np.array_equal(copy.score_pairs(pairs), scorer.score_pairs(pairs))
