"""The model card of a folder that training wrote: YAML front matter that the Hub's tools parse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from finetune.train import main as train
from recsys.evaluation.evaluator import main as evaluate
from recsys.evaluation.metrics import CALIBRATION_METRICS, RANKING_METRICS, Metrics, threshold_summary
from recsys.evaluation.results import Evaluation
from recsys.model.architectures import CrossEncoder
from recsys.model.artifact import CARD_FILE, CROSS, DEFAULT_MODEL, EVALUATION_FILE, ModelMetadata
from recsys.publish.card import NO_HUB_DATASET, build_model_card, metric_type, write_model_card
from recsys.scoring.loading import load_scorer


@pytest.fixture
def trained_folder(reset_accelerate, tiny_model_dir: Path, clicks_path: Path, tmp_path: Path) -> Path:
    """The tiny BERT after two training steps, saved by ``finetune.train`` as a real run saves it."""
    output_dir = tmp_path / "clicktune"
    data = ["--train-file", str(clicks_path), "--eval-file", str(clicks_path)]
    args = ["--model-name-or-path", str(tiny_model_dir), *data, "--output-dir", str(output_dir)]
    train([*args, "--report-to", "none", "--max-length", "32", "--batch-size", "8", "--max-steps", "2"])
    return output_dir


def from_hub_base(folder: Path) -> None:
    """Record the base model as a run from the default Hub model does; the tiny BERT is a local folder."""
    metadata = ModelMetadata.load(folder)
    metadata.base_model = DEFAULT_MODEL
    metadata.save(folder)


@pytest.mark.slow
def test_card_front_matter_parses_with_base_model_and_license(trained_folder: Path) -> None:
    from_hub_base(trained_folder)
    path = write_model_card(trained_folder)

    metadata = metadata_load(path)
    assert metadata["base_model"] == DEFAULT_MODEL
    assert metadata["license"] == "apache-2.0"
    assert metadata["library_name"] == "sentence-transformers"
    assert metadata["pipeline_tag"] == "sentence-similarity"
    assert {"clicktune", "sentence-transformers", "sentence-similarity", "feature-extraction"} <= set(metadata["tags"])
    assert "datasets" not in metadata  # a local click log is no Hub dataset: the text names it
    card = ModelCard.load(path)
    assert card.data.base_model == DEFAULT_MODEL
    assert card.data.license == "apache-2.0"
    assert "bi-encoder" in card.text


@pytest.mark.slow
def test_card_written_by_training_parses(trained_folder: Path, tiny_model_dir: Path) -> None:
    metadata = metadata_load(trained_folder / CARD_FILE)
    assert metadata["license"] == "apache-2.0"
    text = ModelCard.load(trained_folder / CARD_FILE).text
    # The base model is named in the text even where it is a local folder rather than a Hub id: by its name.
    assert f"**Base model:** `{tiny_model_dir.name}` (a local folder)" in text
    assert "clicks.csv" in text
    assert 'load_scorer("path/to/clicktune")' in text


def test_card_holds_no_path_of_this_machine(trained_folder: Path, tiny_model_dir: Path, clicks_path: Path) -> None:
    text = (trained_folder / CARD_FILE).read_text()
    for local in (trained_folder, tiny_model_dir, clicks_path.parent, Path(__file__).resolve().parents[1]):
        assert str(local) not in text


@pytest.mark.slow
def test_card_model_index_holds_the_evaluation(trained_folder: Path, clicks_path: Path) -> None:
    data = ["--data", str(clicks_path), "--train-file", str(clicks_path)]
    result = evaluate(["--model", str(trained_folder), *data, "--json", str(trained_folder / EVALUATION_FILE)])
    from_hub_base(trained_folder)
    card = build_model_card(trained_folder)
    path = trained_folder / CARD_FILE
    card.save(path)

    model_name, parsed = model_index_to_eval_results(metadata_load(path)["model-index"])
    assert model_name == trained_folder.name
    results = ModelCard.load(path).data.eval_results
    assert parsed == results
    own = {r.metric_type: r.metric_value for r in results if r.metric_config is None}
    assert set(own) == {"auc", "mrr", "ndcg_at_5", "ndcg_at_10"}
    for name in RANKING_METRICS:
        assert own[metric_type(name)] == pytest.approx(result.model.values[name], abs=1e-4)
    # The data is named for people (by the training log's folder: `recsys.evaluation.evaluator --json` records no file
    # name), and its type is no invented dataset id.
    assert {(r.dataset_type, r.dataset_name) for r in results} == {(NO_HUB_DATASET, "data click log")}
    for name in json.loads((trained_folder / EVALUATION_FILE).read_text())["baselines"]:
        assert name in card.text


def test_card_states_the_threshold_its_criterion_and_how_it_does(tmp_path: Path) -> None:
    summary = threshold_summary([0, 0, 1, 1, 1], [0.1, 0.6, 0.4, 0.7, 0.9], 0.7)
    training = {"train_file": "data/bing_news/train.csv", "eval_file": "data/bing_news/validation.csv"}
    ModelMetadata(threshold=0.7, fine_tuned=True, training=training, metrics={"threshold": summary}).save(tmp_path)
    line = next(line for line in build_model_card(tmp_path).text.splitlines() if "Decision threshold" in line)
    assert "0.700" in line and "Youden's J" in line
    assert "precision 1.000" in line and "recall 0.667" in line  # hand-computed in test_metrics
    assert "base rate 60.0%" in line and "40.0% of rows" in line


def test_card_of_a_zero_shot_model_says_its_threshold_is_the_default(tmp_path: Path) -> None:
    ModelMetadata().save(tmp_path)
    line = next(line for line in build_model_card(tmp_path).text.splitlines() if "Decision threshold" in line)
    assert "0.500" in line and "default" in line and "precision" not in line


def metrics(value: float) -> Metrics:
    return Metrics({name: value for name in (*RANKING_METRICS, *CALIBRATION_METRICS)}, groups=4, rows=20)


def test_card_of_a_cross_encoder_names_its_architecture_and_task(tmp_path: Path) -> None:
    ModelMetadata(architecture=CROSS, fine_tuned=True).save(tmp_path)
    card = build_model_card(tmp_path)
    assert card.data.pipeline_tag == CrossEncoder.pipeline_tag == "text-ranking"
    assert card.data.library_name == "sentence-transformers"  # CrossEncoder(dir) loads it
    assert {"cross-encoder", "reranker"} <= set(card.data.tags)
    assert f'CrossEncoder("path/to/{tmp_path.name}")' in card.text
    assert "**Architecture:** cross-encoder" in card.text
    assert CrossEncoder.plain_load in card.text


def test_card_without_an_evaluation_falls_back_to_trainings_eval_metrics(tmp_path: Path) -> None:
    training = {"train_file": "data/bing_news/train.csv", "eval_file": "data/bing_news/valid.csv"}
    recorded = {**metrics(0.625).to_dict(), "step": 40}
    ModelMetadata(fine_tuned=True, training=training, metrics={"eval": recorded}).save(tmp_path)
    card = build_model_card(tmp_path)
    assert {r.metric_type for r in card.data.eval_results} == {metric_type(name) for name in RANKING_METRICS}
    assert all(r.metric_value == 0.625 and r.dataset_split == "validation" for r in card.data.eval_results)
    assert card.data.eval_results[0].dataset_name == "bing_news click log (valid.csv)"
    assert card.data.eval_results[0].dataset_type == NO_HUB_DATASET
    assert "no baselines were evaluated" in card.text and "`valid.csv`" in card.text


def test_card_says_when_the_evaluation_is_on_the_selection_set(tmp_path: Path) -> None:
    ModelMetadata(fine_tuned=True).save(tmp_path)
    evaluation = Evaluation(metrics(0.7), data_file="valid.csv", data_split="validation")
    evaluation.save(tmp_path / EVALUATION_FILE)
    text = build_model_card(tmp_path).text
    assert "`valid.csv` (the eval set that training selected the model on" in text and "optimistic" in text

    Evaluation(metrics(0.7), data_file="test_users.csv").save(tmp_path / EVALUATION_FILE)
    text = build_model_card(tmp_path).text
    assert "`test_users.csv`" in text and "optimistic" not in text


def test_card_names_a_hub_dataset_by_its_id(tmp_path: Path) -> None:
    training = {"train_file": "data/mind/train.csv", "eval_file": "data/mind/valid.csv"}
    ModelMetadata(fine_tuned=True, training=training, metrics={"eval": metrics(0.6).to_dict()}).save(tmp_path)
    path = write_model_card(tmp_path, dataset="me/mind-clicks")
    assert metadata_load(path)["datasets"] == ["me/mind-clicks"]
    assert {r.dataset_type for r in ModelCard.load(path).data.eval_results} == {"me/mind-clicks"}


@pytest.mark.slow
def test_cards_sentence_transformers_code_gives_the_text_logits(trained_folder: Path) -> None:
    text = build_model_card(trained_folder).text
    code = text.split("With sentence-transformers")[1].split("```python\n")[1].split("```")[0]
    namespace: dict = {}
    exec(code.replace(f"path/to/{trained_folder.name}", str(trained_folder)), namespace)
    scorer = load_scorer(str(trained_folder))
    query, items = "nba playoffs | lakers trade", ["warriors win game 7", "new iphone released"]
    np.testing.assert_allclose(
        namespace["logits"][0].numpy(), scorer.score_pairs([(query, i) for i in items]), atol=1e-4
    )
