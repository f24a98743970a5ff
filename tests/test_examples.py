"""data/examples: held-out users' real lists with their real clicks, drawn by a recorded seed and reproducible."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from recsys.data.candidates import read_candidates
from recsys.data.contract import CLICKED, GROUP, ITEM, ITEM_ID, QUERY, ground_truth, numeric_columns
from recsys.defaults import EXAMPLES_DIR, ROOT

_spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES_DIR / "make_examples.py")
make_examples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_examples)

LOGS = [log.name for log in make_examples.LOGS]


def examples_of(log: str) -> dict:
    return json.loads((EXAMPLES_DIR / log / "examples.json").read_text(encoding="utf-8"))


def files_of(log: str) -> list[Path]:
    return [EXAMPLES_DIR / log / example["file"] for example in examples_of(log)["rank"]]


def test_both_bundled_logs_have_examples() -> None:
    assert LOGS == ["bing_news", "movielens"]


@pytest.mark.parametrize("log", LOGS)
def test_examples_json_records_the_seed_the_source_and_the_draw(log: str) -> None:
    examples = examples_of(log)
    assert examples["seed"] == make_examples.SEED
    assert (ROOT / examples["source"]).is_file() and examples["source"].startswith(f"data/{log}/")
    assert "default_rng(seed)" in examples["drawn"]
    assert len(examples["rank"]) >= 6
    assert {path.suffix for path in files_of(log)} == {".csv", ".tsv", ".jsonl"}
    on_disk = {path.name for path in (EXAMPLES_DIR / log).iterdir() if path.name != "examples.json"}
    assert on_disk == {path.name for path in files_of(log)}, "every list is named in examples.json, and no other"


@pytest.mark.parametrize("log", LOGS)
def test_every_example_list_reads_with_its_real_clicks_and_non_clicks(log: str) -> None:
    for path in files_of(log):
        candidates = read_candidates(path)
        clicked = ground_truth(candidates, path.name)
        assert set(clicked) == {0, 1}, f"{path.name} needs a click and a non-click"
        assert CLICKED not in numeric_columns(candidates)
        assert "rating" not in candidates.columns, "a MovieLens row's rating is what its click is made of"


@pytest.mark.parametrize("log", LOGS)
def test_each_list_is_its_groups_rows_in_the_held_out_log_with_their_labels(log: str) -> None:
    examples = examples_of(log)
    source = pd.read_csv(ROOT / examples["source"], dtype=str, keep_default_na=False)
    for example in examples["rank"]:
        rows = source[source[GROUP] == example["group"]]
        assert example["context"] == rows[QUERY].iloc[0]
        candidates = read_candidates(EXAMPLES_DIR / log / example["file"])
        shown = candidates.assign(**{CLICKED: ground_truth(candidates)})[[ITEM_ID, ITEM, CLICKED]]
        expected = rows[[ITEM_ID, ITEM, CLICKED]].astype({CLICKED: int})
        assert sorted(shown.itertuples(index=False)) == sorted(expected.itertuples(index=False))


@pytest.mark.parametrize("log", LOGS)
def test_classify_examples_are_a_click_and_a_non_click_of_each_list(log: str) -> None:
    examples = examples_of(log)
    assert len(examples["classify"]) == 2 * len(examples["rank"])
    for example, (click, non_click) in zip(
        examples["rank"], zip(examples["classify"][::2], examples["classify"][1::2], strict=True), strict=True
    ):
        candidates = read_candidates(EXAMPLES_DIR / log / example["file"])
        labels = dict(zip(candidates[ITEM], ground_truth(candidates), strict=True))
        assert click["context"] == non_click["context"] == example["context"]
        assert (click["clicked"], labels[click["item"]]) == (1, 1)
        assert (non_click["clicked"], labels[non_click["item"]]) == (0, 0)


def test_running_the_script_again_reproduces_the_bundled_examples(tmp_path: Path) -> None:
    make_examples.main(["--out-dir", str(tmp_path)])
    for log in LOGS:
        written = sorted(path.name for path in (tmp_path / log).iterdir())
        assert written == sorted(path.name for path in (EXAMPLES_DIR / log).iterdir())
        for name in written:
            assert (tmp_path / log / name).read_bytes() == (EXAMPLES_DIR / log / name).read_bytes(), f"{log}/{name}"


def test_another_seed_draws_other_lists(tmp_path: Path) -> None:
    make_examples.main(["--seed", "1", "--out-dir", str(tmp_path)])
    again = json.loads((tmp_path / "bing_news" / "examples.json").read_text(encoding="utf-8"))
    assert again["seed"] == 1
    assert {e["group"] for e in again["rank"]} != {e["group"] for e in examples_of("bing_news")["rank"]}
