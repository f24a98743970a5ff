"""The feedback store: marks in SQLite (WAL), the export as a click log, and the loop back into training."""

from __future__ import annotations

import itertools
import logging
import os
import shlex
import shutil
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from unittest.mock import patch

import pandas as pd
import pytest

from recsys.data.candidates import read_candidates
from recsys.data.contract import (
    CLICKED,
    GROUP,
    ITEM,
    ITEM_ID,
    MARK,
    POSITION,
    QUERY,
    TIMESTAMP,
    read_clicks,
    validate_marks,
)
from recsys.defaults import DB_FILE, EXAMPLES_DIR, ROOT
from recsys.errors import ContractError, UserError
from recsys.feedback.interleave import CHALLENGER, CHAMPION, SHARED, Comparison
from recsys.feedback.ranked_lists import Interleaving
from recsys.feedback.store import (
    MODEL_VERSION,
    SCHEMA_VERSION,
    FeedbackStore,
    main,
    retrain_commands,
    train_command,
)
from recsys.model.artifact import model_version
from recsys.scoring.loading import load_scorer
from recsys.scoring.ranking import rank_candidates


def shown(items: list[str], clicked: set[int]) -> pd.DataFrame:
    """A marked list as ``recsys.data.contract.validate_marks`` gives it: ids id1, id2, …, positions from 1."""
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


def test_an_empty_store_is_not_exported(tmp_path: Path) -> None:
    # A list without items or without a context never reaches the store: validate_marks and the ranking's check of
    # the context refuse them first (test_contract.py, test_inputs.py).
    store = FeedbackStore(tmp_path)
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


@pytest.mark.slow
def test_marks_export_and_retrain(
    tmp_path: Path, tiny_model_dir: Path, reset_accelerate: None, caplog: pytest.LogCaptureFixture
) -> None:
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
    export, output = tmp_path / "feedback.csv", tmp_path / "retrained"
    # The two commands the app's Feedback tab shows, run as they read.
    commands = retrain_commands(str(tiny_model_dir), export, tmp_path / "feedback", output).splitlines()
    exporting, training = (shlex.split(command) for command in commands)
    assert exporting[:3] == ["python", "-m", "recsys.feedback.store"]
    with caplog.at_level(logging.INFO, logger="recsys.feedback.store"):
        main(exporting[3:])
    assert train_command(export, "$MODEL_DIR") in caplog.text  # the export names the command that trains on it
    assert training[:3] == ["python", "-m", "finetune.train"]
    short = ["--eval-file", str(export), "--max-steps", "2", "--batch-size", "2", "--max-length", "32"]
    summary = train([*training[3:], *short, "--report-to", "none"])
    assert summary["steps"] == 2
    assert summary["config"]["train_file"] == str(export)
    retrained = load_scorer(str(output))
    assert retrained.metadata.fine_tuned
    assert retrained.metadata.training["train_rows"] == len(read_clicks(export))
    assert model_version(output, retrained.metadata) != version  # the next round of feedback is told apart


def test_the_docs_show_the_retrain_commands_as_they_are_built() -> None:
    assert retrain_commands("models/clicktune") in (ROOT / "docs" / "app.md").read_text(encoding="utf-8")


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


# -- interleaved lists: teams, outcomes, the schema migration and kills ------------------------------------------

# The schema as ClickTune wrote it before interleaving (user_version 1), to migrate from.
SCHEMA_V1 = """
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY, list_id TEXT NOT NULL, context TEXT NOT NULL, item TEXT NOT NULL, item_id TEXT NOT NULL,
    position INTEGER NOT NULL CHECK (position >= 1), clicked INTEGER NOT NULL CHECK (clicked IN (0, 1)),
    model_version TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE INDEX feedback_list ON feedback (list_id);
PRAGMA user_version = 1;
"""
TEAMS = Interleaving("next@b", (SHARED, CHALLENGER, CHAMPION, CHAMPION))


def schema(database: Path) -> tuple[int, list[str], list[str]]:
    """The database's user_version, its feedback table's columns and its tables, read without migrating."""
    with closing(sqlite3.connect(database)) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        columns = [row[1] for row in db.execute("PRAGMA table_info(feedback)")]
        tables = sorted(row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    return version, columns, tables


def old_store(folder: Path) -> Path:
    """A store as ClickTune wrote it before interleaving, holding one list of two items."""
    folder.mkdir(parents=True)
    with closing(sqlite3.connect(folder / DB_FILE)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA_V1)
        db.executemany(
            "INSERT INTO feedback (list_id, context, item, item_id, position, clicked, model_version, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [("old", "nba", "a", "id1", 1, 1, "v1", "2024-01-01T00:00:00+00:00"),
             ("old", "nba", "b", "id2", 2, 0, "v1", "2024-01-01T00:00:00+00:00")],
        )  # fmt: skip
        db.commit()
    return folder / DB_FILE


def test_an_interleaved_list_is_stored_with_its_teams_and_the_outcome_its_marks_give(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    list_id = store.record("nba", shown(["a", "b", "c", "d"], {2}), "champ@a", interleaving=TEAMS)
    rows = store.read()
    assert rows["team"].tolist() == list(TEAMS.teams) and set(rows["model_version"]) == {"champ@a"}
    assert store.comparison("champ@a", "next@b") == Comparison(1, 0, 0)  # its one mark is the challenger's item
    store.record("nba", shown(["a", "b", "c", "d"], {1, 3}), "champ@a", list_id=list_id, interleaving=TEAMS)
    assert store.comparison("champ@a", "next@b") == Comparison(0, 1, 0)  # marks saved again: the outcome follows
    assert store.comparison("champ@a", "other@c") == Comparison(0, 0, 0)  # another pair's lists are its own
    plain = store.record("nba", shown(["a"], {1}), "champ@a")
    assert pd.isna(store.read().set_index("list_id").loc[plain, "team"])  # one model ranked it
    lists = store.interleaved_lists("champ@a", "next@b")
    assert lists[["items", "champion_clicks", "challenger_clicks", "shared_clicks", "outcome"]].values.tolist() == [
        [4, 1, 0, 1, CHAMPION]
    ]
    with pytest.raises(ValueError, match="needs its items at positions 1 to that"):
        store.record("nba", shown(["a", "b"], {1}), "champ@a", interleaving=TEAMS)
    with pytest.raises(ValueError, match=r"unknown team\(s\) \['nobody'\]"):
        store.record("nba", shown(["a"], {1}), "champ@a", interleaving=Interleaving("next@b", ("nobody",)))
    assert store.summary()["lists"] == 2  # neither refused list was stored


def test_the_migration_keeps_the_rows_of_an_older_store(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    database = old_store(folder)
    before = pd.read_sql_query("SELECT * FROM feedback", sqlite3.connect(database))
    store = FeedbackStore(folder)
    assert schema(database) == (SCHEMA_VERSION, [*before.columns, "team"], ["feedback", "interleaved"])
    after = store.read()
    assert after[list(before.columns)].equals(before) and after["team"].isna().all()
    store.export(tmp_path / "clicks.csv")
    assert read_clicks(tmp_path / "clicks.csv")[CLICKED].tolist() == [1, 0]  # the export reads the old rows
    store.record("nba", shown(["a", "b", "c", "d"], {2}), "champ@a", interleaving=TEAMS)
    # Opened again, and after an older ClickTune set user_version back to 1: nothing is added twice.
    with closing(sqlite3.connect(database)) as db:
        db.execute("PRAGMA user_version = 1")
        db.commit()
    assert FeedbackStore(folder).summary() == {"lists": 2, "rows": 6, "clicks": 2}
    assert schema(database)[0] == SCHEMA_VERSION


KILLED = 137  # a child's exit status where the kill landed
CONNECT = sqlite3.connect


def stepping(on_step: Callable[[], None], on_statement: Callable[[], None] = lambda: None) -> Callable:
    """``sqlite3.connect``, whose connections call ``on_step`` at each step of SQLite's virtual machine and
    ``on_statement`` as each statement begins (those that sqlite3 issues itself, BEGIN and COMMIT, too)."""

    def connect(*args: object, **kwargs: object) -> sqlite3.Connection:
        db = CONNECT(*args, **kwargs)
        db.set_progress_handler(lambda: on_step() or 0, 1)
        db.set_trace_callback(lambda _: on_statement())
        return db

    return connect


def kill_points(write: Callable[[], object]) -> list[int]:
    """Where to kill ``write``: the SQLite step at which each of its statements begins, and one halfway through each
    (counted while ``write`` runs whole here)."""
    count, starts = 0, []

    def step() -> None:
        nonlocal count
        count += 1

    with patch.object(sqlite3, "connect", stepping(step, lambda: starts.append(count + 1))):
        write()
    ends = [*starts[1:], count + 1]
    return sorted({*starts, *((a + b) // 2 for a, b in zip(starts, ends, strict=True))})


def killed_at(step: int, write: Callable[[], object]) -> bool:
    """Run ``write`` in a forked child that dies at SQLite's ``step``-th virtual-machine step of it (``os._exit``: no
    rollback, no cleanup, as a SIGKILL); True where it died before ``write`` returned."""
    pid = os.fork()
    if pid == 0:  # the child never returns to pytest
        status = 1
        try:
            steps = itertools.count(1)
            sqlite3.connect = stepping(lambda: next(steps) == step and os._exit(KILLED))
            write()
            status = 0
        finally:
            os._exit(status)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    assert code in (0, KILLED), f"the child failed at step {step} (exit status {code})"
    return code == KILLED


def kill_at_every_statement(
    template: Path, tmp_path: Path, write: Callable[[Path], object], check: Callable[[Path], str]
) -> dict[str, int]:
    """Kill ``write`` on a copy of ``template`` at each of its :func:`kill_points`; ``check`` says what each copy holds
    afterwards ("new": what a whole write leaves). Returns how many kills left each state."""
    whole = tmp_path / "whole"
    shutil.copytree(template, whole)
    points = kill_points(lambda: write(whole))
    assert check(whole) == "new" and len(points) > 10
    seen: dict[str, int] = {}
    for step in points:
        folder = tmp_path / f"killed-{step}"
        shutil.copytree(template, folder)
        assert killed_at(step, lambda folder=folder: write(folder)), f"the write ended before step {step}"
        state = check(folder)
        seen[state] = seen.get(state, 0) + 1
    return seen


@pytest.mark.slow
def test_a_kill_at_any_point_of_saving_leaves_the_whole_list_with_its_teams_or_the_list_before(
    tmp_path: Path,
) -> None:
    template = tmp_path / "template"
    store = FeedbackStore(template)
    list_id = store.record("nba", shown(["a", "b", "c", "d"], {2}), "champ@a", interleaving=TEAMS)  # a challenger win
    old = ([0, 1, 0, 0], Comparison(1, 0, 0))
    new = ([1, 0, 1, 0], Comparison(0, 1, 0))  # saved again: a shared and a champion's item marked

    def write(folder: Path) -> None:
        FeedbackStore(folder).record(
            "nba", shown(["a", "b", "c", "d"], {1, 3}), "champ@a", list_id=list_id, interleaving=TEAMS
        )

    def check(folder: Path) -> str:
        store = FeedbackStore(folder)
        rows = store.read()
        assert rows["list_id"].eq(list_id).all() and rows["team"].tolist() == list(TEAMS.teams)
        state = (rows["clicked"].tolist(), store.comparison("champ@a", "next@b"))
        assert state in (old, new), f"a mix: {state}"
        return "new" if state == new else "old"

    seen = kill_at_every_statement(template, tmp_path, write, check)
    assert set(seen) == {"old"}  # a kill before the commit leaves the list as it was


@pytest.mark.slow
def test_a_kill_at_any_point_of_a_first_save_leaves_the_list_with_its_teams_or_nothing(tmp_path: Path) -> None:
    template = tmp_path / "template"
    FeedbackStore(template)

    def write(folder: Path) -> None:
        FeedbackStore(folder).record("nba", shown(["a", "b", "c", "d"], {2}), "champ@a", "l1", interleaving=TEAMS)

    def check(folder: Path) -> str:
        store = FeedbackStore(folder)
        rows, compared = store.read(), store.comparison("champ@a", "next@b")
        if rows.empty and compared.lists == 0:
            return "nothing"
        assert rows["team"].tolist() == list(TEAMS.teams) and compared == Comparison(1, 0, 0), "a part of the list"
        return "new"

    assert set(kill_at_every_statement(template, tmp_path, write, check)) == {"nothing"}


@pytest.mark.slow
def test_a_kill_at_any_point_of_the_migration_leaves_the_old_schema_or_the_new_one(tmp_path: Path) -> None:
    old_store(tmp_path / "template")

    def check(folder: Path) -> str:
        state = schema(folder / DB_FILE)
        rows = pd.read_sql_query("SELECT item, clicked FROM feedback", sqlite3.connect(folder / DB_FILE))
        assert rows.values.tolist() == [["a", 1], ["b", 0]], "rows lost"
        if state[0] == 1 and "team" not in state[1] and state[2] == ["feedback"]:
            return "old"
        assert state[0] == SCHEMA_VERSION and state[1][-1] == "team" and state[2] == ["feedback", "interleaved"], state
        return "new"

    assert set(kill_at_every_statement(tmp_path / "template", tmp_path, FeedbackStore, check)) == {"old"}
