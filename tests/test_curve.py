"""bench.curve and its modules: nested whole-user subsets, the MovieLens all-ratings pool, and the report drawn from
its JSON."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest

from bench import curve, curve_logs, curve_points, curve_report
from bench.common import DATA
from recsys.model.artifact import METADATA_FILE, TRAINING_METRICS_FILE

MOVIELENS = DATA / "movielens"
ROW = ("query", "item", "clicked", "item_id", "rating", "timestamp")  # a contract row, without its group's name


def read_text_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def user_of(group: str) -> str:
    return group.rsplit("-", 1)[0]


@pytest.fixture
def clicks() -> pd.DataFrame:
    """Ten users with 1 to 10 rows each, their rows interleaved."""
    rows = [{"user": f"u{u}", "query": "q", "item": f"i{r}", "clicked": r % 2} for u in range(10) for r in range(u + 1)]
    return pd.DataFrame(rows).sample(frac=1, random_state=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_subsets_hold_whole_users_nested_across_fractions(clicks: pd.DataFrame, seed: int) -> None:
    fractions = (0.1, 0.3, 0.5, 1.0)
    subsets = curve_logs.user_subsets(clicks, "user", fractions, seed)

    rows_per_user = clicks["user"].value_counts()
    users = [set(subsets[f]["user"]) for f in fractions]
    assert [len(u) for u in users] == [1, 3, 5, 10]  # ceil(f × 10)
    for f, subset in subsets.items():
        drawn = subset["user"].value_counts().to_dict()
        assert drawn == {user: rows_per_user[user] for user in drawn}, f"fraction {f}: a user's rows are split"
    assert all(smaller <= larger for smaller, larger in pairwise(users))
    assert subsets[1.0].sort_index().equals(clicks.sort_index())


def test_seeds_draw_different_users(clicks: pd.DataFrame) -> None:
    first, second = (set(curve_logs.user_subsets(clicks, "user", [0.5], seed)[0.5]["user"]) for seed in (0, 1))
    assert first != second
    assert first == set(curve_logs.user_subsets(clicks, "user", [0.5], 0)[0.5]["user"])


def test_subset_sizes_round_up_without_float_noise() -> None:
    assert [curve_logs.subset_size(f, 302) for f in curve_logs.FRACTIONS] == [31, 76, 151, 302]
    assert 0.07 * 100 > 7 and curve_logs.subset_size(0.07, 100) == 7


@pytest.fixture(scope="module")
def pool_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MovieLens pool, built the way bench.curve builds it where its cache file is missing."""
    path = tmp_path_factory.mktemp("curve-data") / "cache" / "movielens_train_all.csv"
    build = curve_logs.build_movielens_pool
    log = curve_logs.Log(path, "user", MOVIELENS / "valid.csv", MOVIELENS / "test.csv", (1.0,), build)
    assert log.pool_file() == path
    return path


@pytest.fixture(scope="module")
def pool(pool_file: Path) -> pd.DataFrame:
    return read_text_csv(pool_file)


@pytest.mark.slow
def test_movielens_pool_is_every_chunk_of_the_training_users_only(pool: pd.DataFrame) -> None:
    bundled = {name: read_text_csv(MOVIELENS / f"{name}.csv") for name in ("train", "valid", "test")}
    users = {name: set(frame["group"].map(user_of)) for name, frame in bundled.items()}
    assert set(pool["user"]) == users["train"]
    assert not set(pool["user"]) & (users["valid"] | users["test"])
    assert (pool["user"] == pool["group"].map(user_of)).all()
    assert (pool["query"] != "").all()
    assert pool["group"].nunique() > 2 * bundled["train"]["group"].nunique()  # more than each user's last 2 chunks

    pooled = defaultdict(set)  # user -> the row contents of each of its groups
    for group, rows in pool.groupby("group", sort=False):
        pooled[user_of(group)].add(tuple(map(tuple, rows[list(ROW)].to_numpy())))
    for group, rows in bundled["train"].groupby("group", sort=False):
        assert tuple(map(tuple, rows[list(ROW)].to_numpy())) in pooled[user_of(group)], f"train.csv {group}"


@pytest.mark.slow
def test_movielens_pool_is_built_whole_where_missing(pool_file: Path, pool: pd.DataFrame) -> None:
    assert pool.columns.tolist() == ["group", *ROW, "user"]
    assert [p.name for p in pool_file.parent.iterdir()] == [pool_file.name]  # no .partial left beside it


def point(log: str, seed: int, fraction: float, clicks: int, fine_tuned: float, ending: str) -> dict:
    return {
        "log": log,
        "seed": seed,
        "fraction": fraction,
        "time_budget": 30.0,
        "users": round(100 * fraction),
        "rows": 4 * clicks,
        "clicks": clicks,
        "auc": {"fine_tuned": fine_tuned, "popularity": 0.55, "zero_shot": 0.5 + seed / 100},
        "steps": 50,
        "best_step": 25,
        "ending": ending,
        "seconds": 120.0,
        "trained_by": "bench.curve",
    }


def test_report_is_drawn_from_the_json(tmp_path: Path) -> None:
    early = "stopped early at step 50: no better validation AUC in 2 evaluations; the best model is step 25's"
    budget = "stopped by the time budget (30 min) at step 50, not by convergence: the best model is step 25's"
    points = [
        point("bing_news", 0, 0.5, 100, 0.60, early),
        point("bing_news", 1, 0.5, 110, 0.62, early),
        point("bing_news", 0, 1.0, 200, 0.64, budget),
        point("bing_news", 1, 1.0, 200, 0.66, early) | {"trained_by": "bench.results"},
    ]
    run = {
        "command": "python -m bench.curve --logs bing_news",
        "date": "2025-01-01",
        "machine": "a test",
        "threads": 2,
        "device": "CPU only",
        "time_budget": 30.0,
        "pools": {"bing_news": "data/bing_news/train.csv"},
        "held_out": {"bing_news": "data/bing_news/test_users.csv"},
    }
    results = tmp_path / "in.json"
    results.write_text(json.dumps({"run": run, "points": points}))
    out = tmp_path / "out"
    curve.main(["--from-json", str(results), "--out-dir", str(out)])

    report = (out / "curve.md").read_text()
    assert "Command: `python -m bench.curve --logs bing_news`" in report
    assert "| 0.5 | 50 | 105 | 0.610 ± 0.014 | 0.550 ± 0.000 | 0.505 ± 0.007 |" in report
    assert "| 1 | 100 | 200 | 0.650 ± 0.014 | 0.550 ± 0.000 | 0.505 ± 0.007 |" in report
    assert "- fraction 1, seed 0: 200 clicks; stopped by the time budget (30 min) at step 50, not by convergence;" in (
        report
    )
    assert "- fraction 1, seed 1: 200 clicks; stopped early at step 50; best step 25 of 50; make results' model, " in (
        report
    )
    assert "- fraction 0.5, seed 1: 110 clicks; stopped early at step 50; best step 25 of 50; 2.0 min" in report
    assert "![Held-out group AUC against training clicks](curve.png)" in report
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "curve.json").exists()  # drawing from a JSON never rewrites it


def test_finished_only_draws_the_finished_points_of_the_logs_and_seeds_asked_and_trains_none(tmp_path: Path) -> None:
    points = [point("movielens", 1, 0.1, 30, 0.7, "stopped early")]
    points += [point("bing_news", seed, f, 100, 0.6, "stopped early") for seed in (1, 0) for f in (1.0, 0.5)]
    runs = tmp_path / "curve_runs.jsonl"
    runs.write_text("".join(json.dumps(p) + "\n" for p in points))
    before = runs.read_text()

    results = curve.main(["--finished-only", "--logs", "bing_news", "--seeds", "0", "1", "--out-dir", str(tmp_path)])
    drawn = [(p["log"], p["seed"], p["fraction"]) for p in results["points"]]
    assert drawn == [("bing_news", 0, 0.5), ("bing_news", 0, 1.0), ("bing_news", 1, 0.5), ("bing_news", 1, 1.0)]
    assert json.loads((tmp_path / "curve.json").read_text())["points"] == results["points"]
    assert runs.read_text() == before
    with pytest.raises(SystemExit, match="no finished point of movielens"):
        curve.main(["--finished-only", "--logs", "movielens", "--seeds", "0", "--out-dir", str(tmp_path)])


def test_summary_is_mean_and_sample_sd_over_seeds() -> None:
    points = [point("movielens", s, 0.1, 10 * (s + 1), auc, "") for s, auc in enumerate((0.6, 0.7, 0.8))]
    (summary,) = curve_report.summarize(points)
    assert summary["n"] == 3
    assert summary["clicks"]["mean"] == pytest.approx(20)
    assert summary["auc"]["fine_tuned"]["mean"] == pytest.approx(0.7)
    assert summary["auc"]["fine_tuned"]["sd"] == pytest.approx(0.1)  # ddof=1; the population sd is 0.0816
    assert curve_report.summarize(points[:1])[0]["auc"]["fine_tuned"]["sd"] is None


def test_the_whole_pool_is_taken_from_bench_results_only_where_it_is_the_same_run(tmp_path: Path) -> None:
    bing = curve_logs.LOGS["bing_news"]

    def results_model(seed: int, train_file: Path = bing.pool) -> None:
        folder = tmp_path / f"bing_news-seed{seed}"
        folder.mkdir(exist_ok=True)
        training = {"train_file": str(train_file), "eval_file": str(bing.valid), "seed": seed}
        (folder / METADATA_FILE).write_text(json.dumps({"training": training}))
        (folder / TRAINING_METRICS_FILE).write_text("{}")

    args = argparse.Namespace(full_models=tmp_path, time_budget=curve_points.TIME_BUDGET)
    results_model(42)
    assert curve_points.full_model("bing_news", 42, 1.0, args) == tmp_path / "bing_news-seed42"
    assert curve_points.full_model("bing_news", 42, 0.5, args) is None  # a subset is trained
    assert curve_points.full_model("bing_news", 43, 1.0, args) is None  # no such run
    results_model(44, train_file=tmp_path / "other.csv")
    assert curve_points.full_model("bing_news", 44, 1.0, args) is None  # another train file
    other_budget = argparse.Namespace(full_models=tmp_path, time_budget=5)
    assert curve_points.full_model("bing_news", 42, 1.0, other_budget) is None
    assert curve_points.full_model("bing_news", 42, 1.0, argparse.Namespace(full_models=None, time_budget=30)) is None
