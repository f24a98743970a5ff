"""The feedback store: marks in SQLite (WAL), the export as a click log, and the loop back into training."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pytest

from recsys.artifact import model_version
from recsys.contract import (
    CLICKED,
    GROUP,
    ITEM,
    ITEM_ID,
    MARK,
    POSITION,
    QUERY,
    TIMESTAMP,
    read_candidates,
    read_clicks,
    validate_marks,
)
from recsys.defaults import EXAMPLES_DIR
from recsys.errors import ContractError, UserError
from recsys.feedback import DB_FILE, MODEL_VERSION, FeedbackStore, main
from recsys.ranking import rank_candidates
from recsys.scoring import load_scorer


def shown(items: list[str], clicked: set[int]) -> pd.DataFrame:
    """A marked list as ``recsys.contract.validate_marks`` gives it: ids id1, id2, …, positions from 1."""
    positions = range(1, len(items) + 1)
    return pd.DataFrame(
        {
            ITEM: items,
            ITEM_ID: [f"id{n}" for n in positions],
            POSITION: list(positions),
            CLICKED: [int(n in clicked) for n in positions],
        }
    )


def test_store_uses_wal_and_keeps_every_field(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    list_id = store.record("nba playoffs", shown(["warriors win", "new iphone"], {1}), "clicktune@abc")
    with sqlite3.connect(tmp_path / DB_FILE) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = store.read()
    assert rows[["list_id", "context", "item", "item_id", "position", "clicked", "model_version"]].values.tolist() == [
        [list_id, "nba playoffs", "warriors win", "id1", 1, 1, "clicktune@abc"],
        [list_id, "nba playoffs", "new iphone", "id2", 2, 0, "clicktune@abc"],
    ]
    assert pd.to_datetime(rows["created_at"]).notna().all()
    assert store.summary() == {"lists": 1, "rows": 2, "clicks": 1}


def test_recording_a_list_again_replaces_its_marks(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    list_id = store.record("ctx", shown(["a", "b", "c"], {1}), "v1")
    assert store.record("ctx", shown(["a", "b", "c"], {2, 3}), "v1", list_id=list_id) == list_id
    assert store.summary() == {"lists": 1, "rows": 3, "clicks": 2}
    other = store.record("ctx", shown(["a", "b"], {2}), "v1")
    assert store.summary() == {"lists": 2, "rows": 5, "clicks": 3}
    assert store.summary(list_id) == {"lists": 1, "rows": 3, "clicks": 2}
    assert store.summary(other) == {"lists": 1, "rows": 2, "clicks": 1}


def test_store_refuses_empty_feedback(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    with pytest.raises(ValueError, match="needs the items"):
        store.record("ctx", shown([], set()), "v1")
    with pytest.raises(ValueError, match="needs the context"):
        store.record("  ", shown(["a"], {1}), "v1")
    with pytest.raises(ValueError, match=r"no feedback is stored yet; mark some items"):
        store.export(tmp_path / "out.csv")


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)

    def write(worker: int) -> None:
        for n in range(10):
            store.record(f"context {worker}", shown([f"item {n}", "other"], {1}), "v1")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.summary() == {"lists": 40, "rows": 80, "clicks": 40}


def test_export_writes_the_click_log_contract(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "data")
    first = store.record("nba playoffs", shown(["warriors win", "new iphone", "lakers trade"], {1, 3}), "v1")
    store.record("apple news", shown(["new iphone", "warriors win"], {1}), "v2")
    out = tmp_path / "clicks.csv"
    exported = store.export(out)
    clicks = read_clicks(out)  # the contract's own reader accepts it
    assert list(pd.read_csv(out).columns) == [GROUP, QUERY, ITEM, CLICKED, ITEM_ID, POSITION, TIMESTAMP, MODEL_VERSION]
    assert len(clicks) == len(exported) == 5
    one_list = clicks[clicks[GROUP] == first]
    assert one_list[POSITION].tolist() == [1, 2, 3]
    assert one_list[CLICKED].tolist() == [1, 0, 1]
    assert set(one_list[QUERY]) == {"nba playoffs"}
    assert clicks.groupby(GROUP)[MODEL_VERSION].nunique().eq(1).all()


def test_export_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FeedbackStore(tmp_path).record("ctx", shown(["a", "b"], {2}), "v1")
    out = tmp_path / "sub" / "clicks.csv"
    main(["export", "--out", str(out), "--data-dir", str(tmp_path)])
    assert read_clicks(out)[CLICKED].tolist() == [0, 1]
    monkeypatch.setenv("FEEDBACK_DIR", str(tmp_path))  # the app's setting is the CLI's default
    main(["export", "--out", str(tmp_path / "again.csv")])
    assert (tmp_path / "again.csv").is_file()
    with pytest.raises(SystemExit):
        main(["export", "--out", str(out), "--data-dir", str(tmp_path / "nowhere")])


def test_marks_export_and_retrain(tmp_path: Path, tiny_model_dir: Path, reset_accelerate: None) -> None:
    """Deploy, collect feedback, iterate: marks on ranked lists → export → a training run that reads the export."""
    from finetune.train import main as train

    scorer = load_scorer(str(tiny_model_dir))
    version = model_version(tiny_model_dir, scorer.metadata)
    store = FeedbackStore(tmp_path / "feedback")
    examples = pd.read_json(EXAMPLES_DIR / "bing_news" / "examples.json", typ="series")["rank"]
    for example in examples[:3]:
        candidates = read_candidates(EXAMPLES_DIR / "bing_news" / example["file"])
        ranked = rank_candidates(scorer, example["context"], candidates, top_k=6)
        # The user marks the items whose words overlap the context's most: a stand-in for a person's judgement.
        words = set(example["context"].split())
        overlap = pd.Series([len(words & set(item.split())) for item in ranked[ITEM]], index=ranked.index)
        marked = ranked.assign(**{MARK: ranked.index.isin(overlap.nlargest(2).index)})
        store.record(example["context"], validate_marks(marked), version)
    assert store.summary() == {"lists": 3, "rows": 18, "clicks": 6}
    export = tmp_path / "feedback.csv"
    main(["export", "--out", str(export), "--data-dir", str(tmp_path / "feedback")])

    output = tmp_path / "retrained"
    summary = train(
        [
            "--train-file", str(export),
            "--eval-file", str(export),
            "--model-name-or-path", str(tiny_model_dir),
            "--output-dir", str(output),
            "--max-steps", "2",
            "--batch-size", "2",
            "--max-length", "32",
            "--report-to", "none",
        ]
    )  # fmt: skip
    assert summary["steps"] == 2
    assert summary["config"]["train_file"] == str(export)
    retrained = load_scorer(str(output))
    assert retrained.metadata.fine_tuned
    assert retrained.metadata.training["train_rows"] == len(read_clicks(export))
    assert model_version(output, retrained.metadata) != version  # the next round of feedback is told apart


def test_the_training_export_round_trips_every_item_exactly(tmp_path: Path) -> None:
    # Formulas, a lone carriage return, quotes, commas and newlines: training reads each back as stored.
    items = [
        '=HYPERLINK("http://x","y")',
        "+cmd|' /C calc'!A0",
        "-1+1",
        "@SUM(A1)",
        "\ttab",
        "a\rb",
        'say "hi", ok',
        "x\ny",
    ]
    store = FeedbackStore(tmp_path)
    store.record("=1+1 context", shown(items, {1, 3}), "v1")
    store.export(tmp_path / "clicks.csv")
    exported = read_clicks(tmp_path / "clicks.csv")
    assert exported[ITEM].tolist() == items
    assert exported[QUERY].tolist() == ["=1+1 context"] * len(items)
    assert exported[CLICKED].tolist() == [1, 0, 1, 0, 0, 0, 0, 0]


def test_export_never_writes_over_the_feedback_database(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    store.record("nba", shown(["a", "b"], {1}), "v1")
    database = tmp_path / DB_FILE
    before = database.read_bytes()
    link = tmp_path / "clicks.csv"
    link.symlink_to(database)
    for out in (database, link):
        with pytest.raises(ContractError, match=r"is the input file.*write the click log to another file"):
            main(["export", "--out", str(out), "--data-dir", str(tmp_path)])
    assert database.read_bytes() == before and store.summary()["clicks"] == 1


def test_a_file_that_is_no_database_is_refused_in_one_line_and_kept(tmp_path: Path) -> None:
    database = tmp_path / DB_FILE
    database.write_bytes(b"this is not sqlite\n" * 100)
    with pytest.raises(UserError, match=r"not a readable feedback database .*nothing was changed. Move it aside"):
        main(["export", "--out", str(tmp_path / "clicks.csv"), "--data-dir", str(tmp_path)])
    assert database.read_bytes() == b"this is not sqlite\n" * 100 and not (tmp_path / "clicks.csv").exists()
