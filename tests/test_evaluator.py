"""The evaluator end to end: the CLI on the real click fixture with the tiny model, its JSON and its table."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import recsys.evaluation.evaluator
from recsys.data.contract import CLICKED, GROUP, read_clicks
from recsys.errors import ContractError, UserError
from recsys.evaluation.evaluator import baseline_scores, compare, evaluate, format_table, main
from recsys.evaluation.metrics import (
    METRIC_KEYS,
    RANKING_METRICS,
    Difference,
    Metrics,
    evaluate_scores,
    paired_difference,
)
from recsys.evaluation.results import Evaluation
from recsys.model.architectures import load_model, save_model
from recsys.model.artifact import BI, ModelMetadata, model_digest
from recsys.model.priors import ItemPriors
from recsys.scoring.loading import load_scorer
from recsys.scoring.scorer import Scorer

BASELINES = {"random", "popularity", "tfidf", "bm25", "zero_shot"}
CLI_BASELINES = BASELINES - {"zero_shot"}  # the command line on a zero-shot model: it is its own zero-shot
# The keys of `python -m recsys.evaluation.evaluator --json` that the module docstring documents.
DOCUMENTED_KEYS = {*METRIC_KEYS, "ci", "baselines", "data_file", "data_split"}
DOCUMENTED_BASELINE_KEYS = {*METRIC_KEYS, "ci", "model_minus_baseline"}


def rankable_groups(clicks_path: Path) -> int:
    clicks = read_clicks(clicks_path)
    per_group = clicks.groupby(GROUP)[CLICKED].agg(["sum", "count"])
    return int(((per_group["sum"] > 0) & (per_group["sum"] < per_group["count"])).sum())


def assert_metrics(metrics: dict, rows: int, groups: int) -> None:
    assert set(metrics) == {*METRIC_KEYS, "ci"}
    assert set(metrics["ci"]) == set(RANKING_METRICS)
    assert metrics["rows"] == rows
    assert metrics["groups"] == groups
    for name in (*RANKING_METRICS, "ece"):
        assert 0 <= metrics[name] <= 1
    assert metrics["logloss"] > 0


@pytest.fixture(scope="module")
def tiny_scorer(tiny_model_dir: Path) -> Scorer:
    return load_scorer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def prior_scorer(tiny_model_dir: Path, clicks_path: Path) -> Scorer:
    """The tiny bi-encoder, untouched, with the click log's item priors weighed in: its text logits are its base's."""
    model, tokenizer = load_model(BI, str(tiny_model_dir))
    blend = {"text": 0.7, "prior": 3.0, "log_views": 0.5}
    metadata = ModelMetadata(base_model=str(tiny_model_dir), fine_tuned=True, blend=blend)
    return Scorer(model, tokenizer, metadata, ItemPriors.fit(read_clicks(clicks_path)), version="with-priors@test")


@pytest.fixture(scope="module")
def report(
    tiny_model_dir: Path, clicks_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Evaluation, Path]:
    out = tmp_path_factory.mktemp("evaluate") / "nested" / "evaluation.json"
    argv = ["--model", str(tiny_model_dir), "--data", str(clicks_path), "--train-file", str(clicks_path)]
    return main([*argv, "--json", str(out)]), out


@pytest.mark.slow
def test_main_writes_the_metrics_json(report: tuple[Evaluation, Path], clicks_path: Path, tiny_model_dir: Path) -> None:
    result, out = report
    written = json.loads(out.read_text(encoding="utf-8"))
    assert set(written) == {*METRIC_KEYS, "ci", "baselines", "model_sha256"}
    assert written["model_sha256"] == model_digest(tiny_model_dir)  # which model folder this evaluation is of
    assert set(written["baselines"]) == CLI_BASELINES
    rows, groups = len(read_clicks(clicks_path)), rankable_groups(clicks_path)
    assert_metrics({k: v for k, v in written.items() if k not in ("baselines", "model_sha256")}, rows, groups)
    for name in CLI_BASELINES:
        baseline = dict(written["baselines"][name])
        paired = baseline.pop("model_minus_baseline")
        assert_metrics(baseline, rows, groups)
        assert set(paired) == set(RANKING_METRICS)
        for metric, (difference, low, high) in paired.items():
            assert low <= difference <= high
            assert difference == pytest.approx(written[metric] - baseline[metric])  # same groups, so means subtract
    assert written == json.loads(json.dumps(result.to_json()))  # the returned evaluation is what was written


def test_a_model_compared_with_itself_differs_by_nothing(tiny_scorer: Scorer, clicks_path: Path) -> None:
    result = evaluate(tiny_scorer, read_clicks(clicks_path))  # the tiny base model is its own zero-shot
    paired = result.baselines["zero_shot"].model_minus_baseline
    for metric in RANKING_METRICS:
        assert tuple(paired[metric]) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
        assert result.baselines["zero_shot"].metrics.values[metric] == pytest.approx(result.model.values[metric])


def test_the_command_line_calls_a_zero_shot_model_so_and_leaves_out_its_copy(
    report: tuple[Evaluation, Path], tiny_model_dir: Path, clicks_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Without a fine-tuned --model, the row was "fine-tuned model", and zero_shot a copy of it at Δ +0.000."""
    result, _ = report
    assert "zero_shot" not in result.baselines
    main(["--model", str(tiny_model_dir), "--data", str(clicks_path), "--no-baselines"])
    table = capsys.readouterr().out
    assert table.splitlines()[2].startswith("| zero-shot base model |") and "fine-tuned" not in table


def test_format_table_lists_every_scorer(report: tuple[Evaluation, Path]) -> None:
    result, _ = report
    table = format_table(result, model_name="tiny")
    lines = table.splitlines()
    assert lines[0] == "| scorer | auc | mrr | ndcg@5 | ndcg@10 | logloss | ece |"
    assert [line.split("|")[1].strip() for line in lines[2 : 3 + len(result.baselines)]] == ["tiny", *result.baselines]
    assert f"{result.model.groups} groups" in table
    assert "paired bootstrap" in table and "| Δ auc |" in table


def test_without_train_file_popularity_is_left_out(tiny_model_dir: Path, clicks_path: Path) -> None:
    result = main(["--model", str(tiny_model_dir), "--data", str(clicks_path)])
    assert set(result.baselines) == CLI_BASELINES - {"popularity"}


def test_no_baselines(tiny_model_dir: Path, clicks_path: Path) -> None:
    result = main(["--model", str(tiny_model_dir), "--data", str(clicks_path), "--no-baselines"])
    assert result.baselines == {}
    assert set(result.to_json()) == {*METRIC_KEYS, "ci"}
    assert "minus each baseline" not in format_table(result)


@pytest.mark.slow
def test_fine_tuned_model_is_compared_with_its_base(tiny_model_dir: Path, clicks_path: Path, tmp_path: Path) -> None:
    # A "fine-tuned" model whose bi-encoder scale is flipped ranks in reverse; its zero-shot baseline must not.
    model, tokenizer = load_model(BI, str(tiny_model_dir))
    model.scale.data.neg_()
    save_model(model, tokenizer, tmp_path, ModelMetadata(base_model=str(tiny_model_dir), fine_tuned=True))
    (tmp_path / "metrics.json").write_text("{}")  # a finished run's completion marker
    frame = read_clicks(clicks_path)
    result = evaluate(load_scorer(str(tmp_path)), frame, frame)
    base = evaluate(load_scorer(str(tiny_model_dir)), frame, baselines=False)
    assert result.baselines["zero_shot"].metrics.values["auc"] == pytest.approx(base.model.values["auc"])
    assert result.model.values["auc"] != pytest.approx(base.model.values["auc"])


def test_bad_data_fails_before_loading_a_model(tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("query,item\nq,a\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing required column"):
        main(["--model", str(tmp_path / "no-such-model"), "--data", str(path)])


@pytest.mark.slow
def test_the_model_tab_and_the_cli_share_one_evaluator(
    trained_model_dir: Path, tiny_model_dir: Path, clicks_path: Path, tmp_path: Path
) -> None:
    from recsys.serving.evaluations import Evaluations
    from recsys.serving.service import ServedModels

    frame = read_clicks(clicks_path)
    scorer, base = load_scorer(str(trained_model_dir)), load_scorer(str(tiny_model_dir))
    from_cli = evaluate(scorer, frame, frame, zero_shot=base, data_file=clicks_path.name)
    models = ServedModels(scorer, base, model_dir=str(trained_model_dir))
    evaluations = Evaluations(models, tmp_path, eval_file=str(clicks_path), train_file=str(clicks_path))
    from_tab = evaluations.run(None)
    assert from_tab.to_json(per_row=True) == from_cli.to_json(per_row=True)
    assert set(from_tab.baselines) == BASELINES
    # The paired advantage over each baseline reaches the Model tab's table.
    assert all(b.model_minus_baseline for b in from_tab.baselines.values())
    assert "minus each baseline" in format_table(from_tab)
    # The tab caches what it showed, per row included, for its plots.
    assert evaluations.cached().to_json(per_row=True) == from_cli.to_json(per_row=True)


# The Evaluation and its JSON


def test_json_keys_are_the_documented_ones(report: tuple[Evaluation, Path]) -> None:
    result, _ = report
    for key in DOCUMENTED_KEYS | DOCUMENTED_BASELINE_KEYS:
        assert f"``{key}``" in recsys.evaluation.evaluator.__doc__, key
    published = Evaluation(result.model, result.baselines, data_file="clicks.csv", data_split="validation")
    data = published.to_json()
    assert set(data) == DOCUMENTED_KEYS
    assert (data["data_file"], data["data_split"]) == ("clicks.csv", "validation")
    for baseline in data["baselines"].values():
        assert set(baseline) == DOCUMENTED_BASELINE_KEYS
        assert all(len(d) == 3 for d in baseline["model_minus_baseline"].values())
    # per_row adds exactly the per-row arrays; the documented keys stay as they are.
    assert set(result.to_json(per_row=True)) == {*result.to_json(), "per_row"}
    assert set(result.to_json(per_row=True)["per_row"]) == {"labels", "scores", "probabilities"}


def test_from_json_round_trip_with_per_row(report: tuple[Evaluation, Path], clicks_path: Path) -> None:
    result = dataclasses.replace(report[0], data_file="clicks.csv", data_split="validation")
    data = json.loads(json.dumps(result.to_json(per_row=True)))
    back = Evaluation.from_json(data)
    assert back.to_json(per_row=True) == data
    assert (back.data_file, back.data_split) == ("clicks.csv", "validation")
    assert back.model == result.model
    assert back.baselines == result.baselines
    assert all(isinstance(d, Difference) for b in back.baselines.values() for d in b.model_minus_baseline.values())
    np.testing.assert_array_equal(back.labels, read_clicks(clicks_path)[CLICKED].to_numpy())
    np.testing.assert_allclose(back.scores, result.scores)
    np.testing.assert_allclose(back.probabilities, result.probabilities)


def test_save_and_load(report: tuple[Evaluation, Path], tmp_path: Path) -> None:
    result, _ = report
    result.save(tmp_path / "deep" / "evaluation.json")
    loaded = Evaluation.load(tmp_path / "deep" / "evaluation.json")
    assert loaded.to_json() == json.loads(json.dumps(result.to_json()))
    assert loaded.labels is None and loaded.scores is None  # saved without per_row
    result.save(tmp_path / "with-rows.json", per_row=True)
    assert len(Evaluation.load(tmp_path / "with-rows.json").scores) == result.model.rows
    assert Evaluation.load(tmp_path / "absent.json") is None


def test_compare_with_no_baselines_keeps_the_per_row_scores() -> None:
    frame = pd.DataFrame({GROUP: ["a", "a", "b", "b", "b"], CLICKED: [1, 0, 0, 1, 0]})
    scores = np.array([0.9, 0.1, 0.2, 0.8, 0.3])
    evaluation = compare(frame, (scores, scores), {}, data_file="x.csv")
    assert evaluation.baselines == {} and evaluation.data_file == "x.csv"
    assert isinstance(evaluation.model, Metrics) and evaluation.model.values["auc"] == 1.0
    np.testing.assert_array_equal(evaluation.labels, frame[CLICKED])
    np.testing.assert_array_equal(evaluation.scores, scores)
    reversed_scores = 1 - scores
    against = compare(frame, (scores, scores), {"reversed": (reversed_scores, reversed_scores)})
    assert against.baselines["reversed"].metrics.values["auc"] == 0.0
    assert against.baselines["reversed"].model_minus_baseline["auc"].value == pytest.approx(1.0)


def test_baseline_scores_need_a_training_log_for_popularity_and_a_scorer_for_zero_shot(
    tiny_scorer: Scorer, clicks_path: Path
) -> None:
    frame = read_clicks(clicks_path)
    assert set(baseline_scores(frame)) == {"random", "tfidf", "bm25"}
    every = baseline_scores(frame, frame, tiny_scorer)
    assert set(every) == BASELINES
    for scores, probabilities in every.values():
        assert scores.shape == probabilities.shape == (len(frame),)


def test_evaluate_reports_progress_up_to_done(tiny_scorer: Scorer, clicks_path: Path) -> None:
    frame = read_clicks(clicks_path)
    steps: list[tuple[int, int, str]] = []
    evaluation = evaluate(tiny_scorer, frame, baselines=False, progress=lambda *step: steps.append(step))
    done = [d for d, _, _ in steps]
    assert done == sorted(done) and steps[-1][0] == steps[-1][1] and len({total for _, total, _ in steps}) == 1
    assert all(re.fullmatch(r"[a-z ]+", what) for _, _, what in steps)
    assert evaluation.baselines == {}


# A model with item priors: its text alone beside it


@pytest.mark.slow
def test_a_model_with_priors_is_also_evaluated_on_its_text_alone_from_one_pass(
    prior_scorer: Scorer, tiny_scorer: Scorer, clicks_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = read_clicks(clicks_path)
    passes = []
    score_pairs = prior_scorer.score_pairs

    def counted(*args, **kwargs) -> np.ndarray:
        passes.append(args)
        return score_pairs(*args, **kwargs)

    monkeypatch.setattr(prior_scorer, "score_pairs", counted)
    result = evaluate(prior_scorer, frame, frame, zero_shot=tiny_scorer)
    assert len(passes) == 1  # the text alone comes from the logits that the final scores were made of
    monkeypatch.undo()

    logits = prior_scorer.frame_logits(frame)
    text_alone = result.text_alone
    assert text_alone.metrics == evaluate_scores(frame, logits, prior_scorer.text_alone_probabilities(logits))
    assert text_alone.metrics.values["auc"] != pytest.approx(result.model.values["auc"])  # the priors move it
    assert text_alone.model_minus_text_alone == paired_difference(frame, result.scores, logits)
    assert set(text_alone.text_minus_baseline) == BASELINES
    for name, baseline in result.baselines.items():
        for metric, (difference, low, high) in text_alone.text_minus_baseline[name].items():
            assert low <= difference <= high
            assert difference == pytest.approx(text_alone.metrics.values[metric] - baseline.metrics.values[metric])
    # The untouched tiny BERT's text logits are its zero-shot base's: the text alone adds nothing over it.
    assert tuple(text_alone.text_minus_baseline["zero_shot"]["auc"]) == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)


def test_the_text_alone_reaches_the_json_and_the_table(
    prior_scorer: Scorer, tiny_scorer: Scorer, clicks_path: Path
) -> None:
    frame = read_clicks(clicks_path)
    result = evaluate(prior_scorer, frame, frame, zero_shot=tiny_scorer)
    data = json.loads(json.dumps(result.to_json()))
    assert set(data) == {*METRIC_KEYS, "ci", "baselines", "text_alone"}
    assert set(data["text_alone"]) == {*METRIC_KEYS, "ci", "text_minus_baseline", "model_minus_text_alone"}
    for key in ("text_alone", "text_minus_baseline", "model_minus_text_alone"):
        assert f"``{key}``" in recsys.evaluation.evaluator.__doc__, key
    back = Evaluation.from_json(data)
    assert back.text_alone == result.text_alone and back.to_json() == data
    assert Evaluation.from_json({k: v for k, v in data.items() if k != "text_alone"}).text_alone is None

    lines = format_table(result, model_name="tiny").splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:5]] == ["tiny", "tiny: text alone", "random"]
    priors_row = next(line for line in lines if line.startswith("| text alone (what the item priors add) |"))
    assert priors_row.split("|")[2].startswith(f" {result.text_alone.model_minus_text_alone['auc'].value:+.3f} [")


def test_the_json_never_overwrites_the_click_log_it_evaluates(tmp_path: Path, clicks_path: Path) -> None:
    data = tmp_path / "v.csv"
    data.write_bytes(clicks_path.read_bytes())
    before = data.read_bytes()
    with pytest.raises(ContractError, match=r"is the input file; write the metrics to another file"):
        main(["--data", str(data), "--json", str(data), "--no-baselines"])
    link = tmp_path / "metrics.json"
    link.symlink_to(data)
    with pytest.raises(ContractError, match=r"through a link; write the metrics to another file"):
        main(["--data", str(data), "--json", str(link), "--no-baselines"])
    assert data.read_bytes() == before


def test_a_mistyped_model_folder_is_named_at_once_not_looked_up_on_the_hub(
    models_folder_here: Path, clicks_path: Path
) -> None:
    """``models/clicktun`` looks like a Hub id (OWNER/NAME): it ended a minute later in a network error."""
    for typo in ("models/clicktun", "./models/clicktun", str(models_folder_here / "models" / "clicktun")):
        with pytest.raises(UserError, match=r"clicktun: no such model folder \(.*models holds clicktune\)"):
            main(["--model", typo, "--data", str(clicks_path)])
