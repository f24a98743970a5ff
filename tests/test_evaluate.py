"""The evaluator end to end: the CLI on the real click fixture with the tiny model, and its table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys.contract import CLICKED, GROUP, read_clicks
from recsys.evaluate import evaluate, format_table, main
from recsys.metrics import METRIC_KEYS, RANKING_METRICS
from recsys.models import BI, ModelMetadata, load_encoder, load_scorer, save_model

BASELINES = {"random", "popularity", "tfidf", "bm25", "zero_shot"}


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
def report(tiny_model_dir: Path, clicks_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("evaluate") / "nested" / "evaluation.json"
    argv = ["--model", str(tiny_model_dir), "--data", str(clicks_path), "--train-file", str(clicks_path)]
    return main([*argv, "--json", str(out)]), out


def test_main_writes_the_metrics_json(report: tuple[dict, Path], clicks_path: Path) -> None:
    result, out = report
    written = json.loads(out.read_text(encoding="utf-8"))
    assert set(written) == {*METRIC_KEYS, "ci", "baselines"}
    assert set(written["baselines"]) == BASELINES
    rows, groups = len(read_clicks(clicks_path)), rankable_groups(clicks_path)
    assert_metrics({k: v for k, v in written.items() if k != "baselines"}, rows, groups)
    for name in BASELINES:
        baseline = dict(written["baselines"][name])
        paired = baseline.pop("model_minus_baseline")
        assert_metrics(baseline, rows, groups)
        assert set(paired) == set(RANKING_METRICS)
        for metric, (difference, low, high) in paired.items():
            assert low <= difference <= high
            assert difference == pytest.approx(written[metric] - baseline[metric])  # same groups, so means subtract
    assert written == json.loads(json.dumps(result))  # the returned dict is what was written


def test_a_model_compared_with_itself_differs_by_nothing(report: tuple[dict, Path]) -> None:
    result, _ = report
    paired = result["baselines"]["zero_shot"]["model_minus_baseline"]  # the tiny base model is its own zero-shot
    for metric in RANKING_METRICS:
        assert paired[metric] == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)


def test_zero_shot_baseline_of_a_base_model_is_the_model(report: tuple[dict, Path]) -> None:
    result, _ = report
    for name in RANKING_METRICS:
        assert result["baselines"]["zero_shot"][name] == pytest.approx(result[name])


def test_format_table_lists_every_scorer(report: tuple[dict, Path]) -> None:
    result, _ = report
    table = format_table(result, model_name="tiny")
    lines = table.splitlines()
    assert lines[0] == "| scorer | auc | mrr | ndcg@5 | ndcg@10 | logloss | ece |"
    assert [line.split("|")[1].strip() for line in lines[2 : 3 + len(BASELINES)]] == ["tiny", *result["baselines"]]
    assert f"{result['groups']} groups" in table
    assert "paired bootstrap" in table and "| Δ auc |" in table


def test_without_train_file_popularity_is_left_out(tiny_model_dir: Path, clicks_path: Path) -> None:
    result = main(["--model", str(tiny_model_dir), "--data", str(clicks_path)])
    assert set(result["baselines"]) == BASELINES - {"popularity"}


def test_no_baselines(tiny_model_dir: Path, clicks_path: Path) -> None:
    result = main(["--model", str(tiny_model_dir), "--data", str(clicks_path), "--no-baselines"])
    assert "baselines" not in result
    assert set(result) == {*METRIC_KEYS, "ci"}


def test_fine_tuned_model_is_compared_with_its_base(tiny_model_dir: Path, clicks_path: Path, tmp_path: Path) -> None:
    # A "fine-tuned" model whose bi-encoder scale is flipped ranks in reverse; its zero-shot baseline must not.
    model, tokenizer = load_encoder(BI, str(tiny_model_dir))
    model.scale.data.neg_()
    save_model(model, tokenizer, tmp_path, ModelMetadata(base_model=str(tiny_model_dir), fine_tuned=True))
    frame = read_clicks(clicks_path)
    result = evaluate(load_scorer(str(tmp_path)), frame, frame)
    base = evaluate(load_scorer(str(tiny_model_dir)), frame, baselines=False)
    assert result["baselines"]["zero_shot"]["auc"] == pytest.approx(base["auc"])
    assert result["auc"] != pytest.approx(base["auc"])


def test_bad_data_fails_before_loading_a_model(tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("query,item\nq,a\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing required column"):
        main(["--model", str(tmp_path / "no-such-model"), "--data", str(path)])


def test_the_model_tab_and_the_cli_share_one_evaluator(
    trained_model_dir: Path, tiny_model_dir: Path, clicks_path: Path
):
    from recsys.report import evaluate_model

    frame = read_clicks(clicks_path)
    scorer, base = load_scorer(str(trained_model_dir)), load_scorer(str(tiny_model_dir))
    from_cli = evaluate(scorer, frame, frame, zero_shot=base)
    from_tab = evaluate_model(scorer, frame, frame, base_scorer=base).metrics
    assert from_tab == from_cli
    assert set(from_tab["baselines"]) == BASELINES
    # The paired advantage over each baseline reaches the Model tab's table.
    assert all("model_minus_baseline" in m for m in from_tab["baselines"].values())
    assert "minus each baseline" in format_table(from_tab)
