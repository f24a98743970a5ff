"""Feedback mirrored to a Hub dataset repo, and restored from it after a restart (offline: a recording stand-in)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from huggingface_hub import CommitOperationAdd

from recsys.errors import UserError
from recsys.feedback.hub_mirror import PATH_IN_REPO, HubMirror, restore
from recsys.feedback.interleave import CHALLENGER, CHAMPION, SHARED
from recsys.feedback.ranked_lists import Interleaving
from recsys.feedback.store import STORED_COLUMNS, FeedbackStore

REPO_ID = "me/clicktune-feedback"


def shown(items: list[str], clicked: set[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": items,
            "item_id": [f"id-{item}" for item in items],
            "position": range(1, len(items) + 1),
            "clicked": [int(i + 1 in clicked) for i in range(len(items))],
        }
    )


@pytest.fixture
def mirror(tmp_path: Path, recording_hf_api) -> Iterator[HubMirror]:
    mirror = HubMirror(tmp_path / "feedback", REPO_ID, every_minutes=60, api=recording_hf_api)
    yield mirror
    mirror.scheduler.stop()


def test_each_saved_list_is_committed_to_a_private_dataset_repo(mirror: HubMirror, recording_hf_api) -> None:
    [create] = recording_hf_api.called("create_repo")
    assert (create["repo_id"], create["repo_type"], create["private"]) == (REPO_ID, "dataset", True)
    store = FeedbackStore(mirror.file.parent.parent, mirror=mirror)
    first = store.record("nba playoffs", shown(["warriors win", "new iphone"], {1}), "clicktune@abc")
    store.record("stock market", shown(["dow falls", 'pasta, with "quotes"\rrecipe'], {2}), "clicktune@abc")
    store.record("nba playoffs", shown(["warriors win", "new iphone"], {2}), "clicktune@abc", list_id=first)

    mirror.scheduler.push_to_hub()
    [commit] = recording_hf_api.called("create_commit")
    assert commit["repo_id"] == REPO_ID and commit["repo_type"] == "dataset"
    [operation] = commit["operations"]
    assert isinstance(operation, CommitOperationAdd)
    assert operation.path_in_repo == f"{PATH_IN_REPO}/{mirror.file.name}"
    lines = pd.read_json(mirror.file, lines=True, dtype=False)
    assert len(lines) == 6  # every save, the corrected list again too
    mirror.scheduler.push_to_hub()
    assert len(recording_hf_api.called("create_commit")) == 1  # nothing new: no empty commit


def test_a_restarted_store_is_filled_back_from_the_repo(mirror: HubMirror, tmp_path: Path, recording_hf_api) -> None:
    store = FeedbackStore(mirror.file.parent.parent, mirror=mirror)
    first = store.record("nba playoffs", shown(["warriors win", "new iphone"], {1}), "v1")
    store.record("stock market", shown(["dow falls", "a\rb"], {2}), "v1")
    store.record("nba playoffs", shown(["warriors win", "new iphone"], {2}), "v1", list_id=first)
    # The repo as the scheduler left it, and a Space that restarted with an empty disk.
    snapshot = tmp_path / "snapshot"
    (snapshot / PATH_IN_REPO).mkdir(parents=True)
    shutil.copy(mirror.file, snapshot / PATH_IN_REPO / mirror.file.name)
    recording_hf_api.snapshot = snapshot
    restarted = FeedbackStore(tmp_path / "after-restart")
    assert restore(restarted, REPO_ID, api=recording_hf_api) == 2
    pd.testing.assert_frame_equal(restarted.read().drop(columns="id"), store.read().drop(columns="id"))
    [download] = recording_hf_api.called("snapshot_download")
    assert download["repo_type"] == "dataset" and download["repo_id"] == REPO_ID
    # A store that holds feedback already is left alone.
    assert restore(restarted, REPO_ID, api=recording_hf_api) == 0
    assert len(recording_hf_api.called("snapshot_download")) == 1


@pytest.mark.slow
def test_interleaved_lists_come_back_with_their_teams_and_outcomes(
    mirror: HubMirror, tmp_path: Path, recording_hf_api
) -> None:
    store = FeedbackStore(mirror.file.parent.parent, mirror=mirror)
    teams = Interleaving("next@b", (SHARED, CHALLENGER, CHAMPION))
    items = ["warriors win", "new iphone", "dow falls"]
    won = store.record("nba", shown(items, {2}), "champ@a", interleaving=teams)
    store.record("dow", shown(items, {3}), "champ@a", interleaving=teams)
    store.record("nba", shown(items, {3}), "champ@a", list_id=won, interleaving=teams)  # corrected: now lost
    store.record("plain", shown(items[:2], {1}), "champ@a")
    snapshot = tmp_path / "snapshot"
    (snapshot / PATH_IN_REPO).mkdir(parents=True)
    shutil.copy(mirror.file, snapshot / PATH_IN_REPO / mirror.file.name)
    old = pd.read_json(mirror.file, lines=True, dtype=False).iloc[-2:][list(STORED_COLUMNS)]  # an older mirror's
    old.assign(list_id="old-list").to_json(snapshot / PATH_IN_REPO / "feedback-old.jsonl", orient="records", lines=True)
    recording_hf_api.snapshot = snapshot

    restarted = FeedbackStore(tmp_path / "after-restart")
    assert restore(restarted, REPO_ID, api=recording_hf_api) == 4
    comparison = restarted.comparison("champ@a", "next@b")
    assert (comparison.wins, comparison.losses, comparison.ties) == (0, 2, 0)
    assert comparison == store.comparison("champ@a", "next@b")
    before, after = (s.read().drop(columns="id").set_index(["list_id", "position"]) for s in (store, restarted))
    pd.testing.assert_frame_equal(after.drop(index="old-list"), before)
    assert after.loc["old-list", "team"].isna().all()  # mirrored without teams: one model's, as it was
    pd.testing.assert_frame_equal(
        restarted.interleaved_lists("champ@a", "next@b"), store.interleaved_lists("champ@a", "next@b")
    )


@pytest.mark.parametrize(("column", "value"), [("team", "referee"), ("outcome", "draw")])
def test_a_mirrored_row_with_an_unknown_team_or_outcome_is_refused_and_nothing_restored(
    tmp_path: Path, column: str, value: str
) -> None:
    store = FeedbackStore(tmp_path / "before")
    store.record("nba", shown(["a", "b"], {1}), "champ@a", interleaving=Interleaving("next@b", (CHAMPION, CHALLENGER)))
    rows = store.read().drop(columns="id").assign(challenger_version="next@b", outcome="champion")
    restarted = FeedbackStore(tmp_path / "after")
    with pytest.raises(UserError, match=f"unknown {column} value.s. {value}; .*Nothing was restored"):
        restarted.restore(rows.assign(**{column: value}))
    assert restarted.summary()["rows"] == 0
