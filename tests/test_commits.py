"""recsys/model/commits.py: writing a model folder as one change, and its journal."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from recsys.errors import UserError
from recsys.model.artifact import COMMIT_DIR, COMMIT_MANIFEST, METADATA_FILE
from recsys.model.checks import check_model_folder
from recsys.model.commits import begin_commit, commit, recover_commit


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).write_text(text)


def _files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.iterdir() if p.is_file()}


OLD = {"model.safetensors": "old", METADATA_FILE: "old", "item_priors.csv": "old", "metrics.json": "old"}


OLD_EXTRA = {"evaluation.json": "of the old model", "notes.txt": "the user's"}


NEW = {"model.safetensors": "new", METADATA_FILE: "new", "metrics.json": "new", "README.md": "new"}


def test_commit_moves_the_new_files_in_and_the_old_models_files_out(tmp_path: Path) -> None:
    _write(tmp_path, OLD | OLD_EXTRA)
    staging = begin_commit(tmp_path)
    _write(staging, NEW)
    commit(tmp_path)
    # The old evaluation and priors were the old model's; a file that is no model file stays.
    assert _files(tmp_path) == NEW | {"notes.txt": "the user's"}
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []


def test_a_commit_killed_at_any_rename_leaves_the_old_model_or_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rename, renamed = os.replace, []

    def killed_at(k: int):
        def replace(source: str, target: str) -> None:
            if len(renamed) == k:
                raise KeyboardInterrupt(f"killed before rename {k}")
            renamed.append(Path(target).name)
            rename(source, target)

        return replace

    def killed_commit(folder: Path, k: int) -> None:
        folder.mkdir()
        _write(folder, OLD)
        _write(begin_commit(folder), NEW)
        renamed.clear()
        monkeypatch.setattr(os, "replace", killed_at(k))
        try:
            commit(folder)
        finally:
            monkeypatch.setattr(os, "replace", rename)

    killed_commit(tmp_path / "whole", k=-1)  # not killed: count the renames
    assert renamed[0] == COMMIT_MANIFEST and renamed[-1] == "metrics.json"  # the commit point first, the marker last

    outcomes = []
    for k in range(len(renamed)):
        folder = tmp_path / f"killed-{k}"
        with pytest.raises(KeyboardInterrupt):
            killed_commit(folder, k)
        recover_commit(folder)  # what every reader does first
        found = _files(folder)
        outcomes.append("old" if found == OLD else "new" if found == NEW else found)
    assert outcomes == ["old"] + ["new"] * (len(outcomes) - 1)

    # Killed before the commit point, the staged files wait beside the old model, and the next save discards them.
    assert (tmp_path / "killed-0" / COMMIT_DIR).is_dir()
    assert list(begin_commit(tmp_path / "killed-0").iterdir()) == []


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()}


def test_commit_moves_module_folders_in_and_out_with_the_model(tmp_path: Path) -> None:
    bi = {"model.safetensors": "bi", "modules.json": "bi", "1_Pooling/config.json": "bi", "metrics.json": "bi"}
    cross = {"model.safetensors": "cross", "metrics.json": "cross"}
    users = {"notes/model.safetensors": "the user's", "checkpoints/best-3/1_Pooling/config.json": "scratch"}

    def save(files: dict[str, str]) -> None:
        staging = begin_commit(tmp_path)
        for name, text in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(text)
        commit(tmp_path)

    for name, text in users.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    save(bi)
    assert _tree(tmp_path) == bi | users
    save(cross)  # a bi-encoder's module folder goes with it; files in other folders are not the model's
    assert _tree(tmp_path) == cross | users
    assert not (tmp_path / "1_Pooling").exists()


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but an interrupted save's own, with its bytes."""
    files = (p for p in folder.rglob("*") if p.is_file() and COMMIT_DIR not in p.parts)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


@pytest.mark.parametrize(
    "journal",
    [
        {"files": [], "stale": ["../victim.txt"]},
        {"files": [], "stale": ["{victim}"]},  # an absolute path
        {"files": [], "stale": ["1_Pooling/../../victim.txt"]},
        {"files": [], "stale": ["notes.txt"]},  # inside the folder, but no model file: the user's
        {"files": ["../victim.txt"], "stale": []},
        {"files": [], "stale": "config.json"},
        ["config.json"],
    ],
)
def test_a_journal_that_names_anything_but_the_models_files_is_refused_and_touches_nothing(
    tmp_path: Path, tiny_model_dir: Path, journal: object
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "notes.txt").write_text("the user's")
    before = _snapshot(model)
    (model / COMMIT_DIR).mkdir()
    text = json.dumps(journal).replace("{victim}", str(victim))
    (model / COMMIT_DIR / COMMIT_MANIFEST).write_text(text)
    with pytest.raises(UserError, match=r"journal .* was not written by ClickTune: .*nothing was moved or deleted"):
        check_model_folder(model)  # what every reader runs first: the app at start-up, load_scorer, the evaluator
    assert victim.read_text() == "keep" and _snapshot(model) == before


def test_a_journal_never_follows_a_link_out_of_the_folder(tmp_path: Path, tiny_model_dir: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text("a file of someone else's")
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "1_Pooling").mkdir(exist_ok=True)
    shutil.rmtree(model / "1_Pooling")
    (model / "1_Pooling").symlink_to(outside, target_is_directory=True)
    (model / COMMIT_DIR).mkdir()
    (model / COMMIT_DIR / COMMIT_MANIFEST).write_text(json.dumps({"files": [], "stale": ["1_Pooling/config.json"]}))
    with pytest.raises(UserError, match=re.escape("names '1_Pooling/config.json', which is not one of the model's")):
        recover_commit(model)
    assert (outside / "config.json").read_text() == "a file of someone else's"
