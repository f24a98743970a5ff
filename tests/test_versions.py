"""recsys.loop.versions and the loop's retrain, history and rollback commands: every served model kept, a promotion
settled into the history, rollback, and a kill at any write leaving the old model or the new one."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_promotion import LOSS, WIN  # a clear win and a loss of a challenger on held-out users

from recsys.errors import UserError
from recsys.feedback.store import FeedbackStore
from recsys.loop.commands import main
from recsys.loop.promotion import Challenge, promote, settle
from recsys.loop.versions import (
    KEPT,
    LOG_FILE,
    PROMOTED,
    RECORDED,
    ROLLED_BACK,
    History,
    history_dir,
    record,
    rollback,
    served_version,
)
from recsys.model.artifact import (
    EVALUATION_FILE,
    METADATA_FILE,
    MODULE_DIRS,
    ModelFolderError,
    ModelMetadata,
    model_version,
)
from recsys.model.checks import check_model_folder
from recsys.model.commits import is_model_file

REPO = Path(__file__).resolve().parents[1]


class Killed(BaseException):
    """A kill: nothing in the code under test catches it, so nothing after it runs."""


def model_bytes(folder: Path) -> dict[str, bytes]:
    """The model's files in ``folder`` (not checkpoints/, runs/ or other clutter), by relative path."""
    paths = [p for p in folder.iterdir() if p.is_file()]
    paths += [p for name in MODULE_DIRS if (folder / name).is_dir() for p in (folder / name).iterdir()]
    named = {p.relative_to(folder).as_posix(): p for p in paths}
    return {name: path.read_bytes() for name, path in named.items() if is_model_file(name)}


def digest(folder: Path) -> str:
    return model_version(folder, ModelMetadata.load(folder)).rpartition("@")[2]


@pytest.fixture
def new_model(tmp_path: Path, tiny_model_dir: Path):
    """A function that saves another fine-tuned model (new random weights of the tiny BERT, its own metadata)."""
    import torch
    from transformers import BertConfig, BertModel

    def make(name: str, seed: int, evaluation: bool = False) -> Path:
        folder = tmp_path / name
        shutil.copytree(tiny_model_dir, folder)
        torch.manual_seed(seed)
        BertModel(BertConfig.from_pretrained(tiny_model_dir)).save_pretrained(folder)
        training = {"seed": seed, "train_file": "clicks.csv"}
        ModelMetadata(base_model=str(tiny_model_dir), fine_tuned=True, training=training).save(folder)
        (folder / "metrics.json").write_text(json.dumps({"best_step": seed}))
        if evaluation:  # a file that the served model lacks: gone again after a rollback
            (folder / EVALUATION_FILE).write_text("{}")
        return folder

    return make


# -- the history ------------------------------------------------------------------------------------------------


def test_the_first_use_records_the_served_model_as_version_1(trained_model_dir: Path) -> None:
    served = trained_model_dir
    version = record(served)
    assert (version.number, version.digest) == (1, digest(served)) == (1, served_version(served))
    assert version.path == history_dir(served) / f"0001-{digest(served)}"
    assert model_bytes(version.path) == model_bytes(served)  # a full copy of the model's files
    assert not (version.path / "checkpoints").exists() and not (version.path / ".env").exists()
    events = History(served).events()
    assert [(e.action, e.version, e.digest) for e in events] == [(RECORDED, 1, version.digest)]
    assert events[0].time.endswith("Z") and "began" in events[0].reason
    assert record(served) == version and len(History(served).events()) == 1  # recorded once


def test_served_version_is_the_digest_of_the_folders_metadata(trained_model_dir: Path, tiny_model_dir: Path) -> None:
    before = served_version(trained_model_dir)
    assert model_version(trained_model_dir, ModelMetadata.load(trained_model_dir)) == f"clicktune@{before}"
    metadata = ModelMetadata.load(trained_model_dir)
    metadata.threshold = 0.25
    metadata.save(trained_model_dir)
    assert served_version(trained_model_dir) != before  # what a server compares with the model it loaded
    with pytest.raises(ModelFolderError, match="holds no fine-tuned ClickTune model"):
        served_version(tiny_model_dir)


def test_promotion_serves_the_challenger_and_keeps_both_versions(trained_model_dir: Path, new_model) -> None:
    served, challenger = trained_model_dir, new_model("challenger", seed=1)
    champion_files = model_bytes(served)
    decision = settle(served, challenger, WIN)
    assert decision.promote

    assert check_model_folder(served) is not None
    assert model_bytes(served) == model_bytes(challenger) and served_version(served) == digest(challenger)
    assert (served / "checkpoints" / "step-3" / "optimizer.bin").is_file()  # the folder's other files stay
    history = History(served)
    first, second = history.versions()
    assert model_bytes(first.path) == champion_files and model_bytes(second.path) == model_bytes(challenger)
    assert history.current() == second
    recorded, promoted = history.events()
    assert (recorded.action, promoted.action, promoted.version, promoted.previous) == (RECORDED, PROMOTED, 2, 1)
    assert promoted.reason == decision.reason and Challenge.from_json(promoted.evaluation) == WIN


def test_a_losing_challenger_leaves_the_champion_and_the_reason(
    trained_model_dir: Path, new_model, capsys: pytest.CaptureFixture
) -> None:
    served, challenger = trained_model_dir, new_model("challenger", seed=1)
    champion_files = model_bytes(served)
    decision = settle(served, challenger, LOSS)
    assert not decision.promote
    assert model_bytes(served) == champion_files
    history = History(served)
    assert [v.number for v in history.versions()] == [1]
    kept = history.events()[-1]
    assert (kept.action, kept.version, kept.challenger) == (KEPT, 1, digest(challenger))
    assert kept.reason == decision.reason and Challenge.from_json(kept.evaluation) == LOSS

    main(["history", "--model", str(served)])
    out = capsys.readouterr().out
    assert f"serves version 1 ({digest(served)})" in out
    assert "kept" in out and decision.reason in out and digest(challenger) in out


def test_rollback_restores_any_version_byte_for_byte_and_deletes_nothing(
    trained_model_dir: Path, new_model, capsys: pytest.CaptureFixture
) -> None:
    served = trained_model_dir
    original = model_bytes(served)
    promote(served, new_model("second", seed=1), WIN, "better")
    third = new_model("third", seed=2, evaluation=True)
    promote(served, third, None, "by hand")
    kept = {v.path.name: model_bytes(v.path) for v in History(served).versions()}
    assert len(kept) == 3 and model_bytes(served) == model_bytes(third)

    main(["rollback", "1", "--model", str(served)])
    assert model_bytes(served) == original  # the third's evaluation.json is gone with it
    assert check_model_folder(served) is not None and served_version(served) == digest(served)
    assert "now serves version 1" in capsys.readouterr().out
    third_name = f"0003-{digest(third)}"
    assert third_name in kept
    rollback(served, third_name, reason="back again")
    assert model_bytes(served) == model_bytes(third)
    assert rollback(served, "3") == History(served).current()  # served already: nothing changes

    history = History(served)
    assert {v.path.name: model_bytes(v.path) for v in history.versions()} == kept  # nothing deleted, nothing changed
    actions = [(e.action, e.version, e.previous) for e in history.events()]
    assert actions == [
        (RECORDED, 1, None),
        (PROMOTED, 2, 1),
        (PROMOTED, 3, 2),
        (ROLLED_BACK, 1, 3),
        (ROLLED_BACK, 3, 1),
    ]
    assert history.events()[-1].reason == "back again"
    main(["history", "--model", str(served)])
    out = capsys.readouterr().out
    assert f"*       3  {digest(third)}" in out and "rolled back  version 1" in out
    with pytest.raises(UserError, match=r"no version '7'.*0001-"):
        rollback(served, "7")


def test_a_model_trained_into_the_folder_outside_the_loop_is_recorded_before_it_is_replaced(
    trained_model_dir: Path, new_model
) -> None:
    served = trained_model_dir
    record(served)
    by_hand = new_model("by-hand", seed=3)
    shutil.copy2(by_hand / "model.safetensors", served / "model.safetensors")
    shutil.copy2(by_hand / METADATA_FILE, served / METADATA_FILE)
    rollback(served, "1")
    history = History(served)
    assert [v.digest for v in history.versions()] == [history.versions()[0].digest, digest(by_hand)]
    assert [e.action for e in history.events()] == [RECORDED, RECORDED, ROLLED_BACK]
    assert "outside" in history.events()[1].reason


def test_a_torn_last_line_of_the_log_is_skipped_with_a_warning(
    trained_model_dir: Path, new_model, caplog: pytest.LogCaptureFixture
) -> None:
    served = trained_model_dir
    record(served)
    log = history_dir(served) / LOG_FILE
    with log.open("a", encoding="utf-8") as handle:
        handle.write('{"time": "2024-01-01T00:00:00Z", "action": "prom')  # a kill in the middle of a write
    with caplog.at_level(logging.WARNING, logger="recsys.loop.versions"):
        assert [e.action for e in History(served).events()] == [RECORDED]
    assert "line 2 is not a whole event" in caplog.text
    promote(served, new_model("next", seed=1), WIN, "better")  # the next line starts on a line of its own
    assert [e.action for e in History(served).events()] == [RECORDED, PROMOTED]


# -- a kill at any write ----------------------------------------------------------------------------------------


def check_after_kill(served: Path, old: dict[str, bytes], new: dict[str, bytes], digests: set[str]) -> str:
    """The served folder holds one whole model, the old or the new, and the history reads: which model it is."""
    assert check_model_folder(served) is not None  # finishes a replacement that was past its commit point
    found = model_bytes(served)
    assert found in (old, new), "a mix of the two models"
    assert served_version(served) in digests
    history = History(served)
    history.events()
    for version in history.versions():
        assert model_bytes(version.path) in (old, new)  # a version is whole, or not there
    return "old" if found == old else "new"


@pytest.fixture
def killed_promotion(trained_model_dir: Path, new_model, tmp_path: Path) -> tuple:
    """A served model with a pristine copy to restore after each kill, a challenger, both models' file bytes, and
    both digests: what a killed promotion must leave one of."""
    served, pristine = trained_model_dir, tmp_path / "pristine"
    shutil.copytree(served, pristine)
    challenger = new_model("challenger", seed=1)
    return (
        served,
        pristine,
        challenger,
        model_bytes(served),
        model_bytes(challenger),
        {digest(served), digest(challenger)},
    )


@pytest.mark.slow
def test_a_promotion_killed_at_any_write_leaves_the_old_model_or_the_new_one(
    killed_promotion: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    served, pristine, challenger, old, new, digests = killed_promotion
    rename, copy, writes = os.replace, shutil.copy2, []

    def killing(real, k: int):
        def write(source, target, **kwargs):
            if len(writes) == k:
                raise Killed(f"killed before write {k}")
            writes.append(target)
            return real(source, target, **kwargs)

        return write

    def run_killed_at(k: int) -> None:
        writes.clear()
        monkeypatch.setattr(os, "replace", killing(rename, k))
        monkeypatch.setattr(shutil, "copy2", killing(copy, k))
        try:
            promote(served, challenger, WIN, "better")
        finally:
            monkeypatch.setattr(os, "replace", rename)
            monkeypatch.setattr(shutil, "copy2", copy)

    run_killed_at(-1)  # count the writes of a whole promotion
    total = len(writes)
    assert total > 2 * len(old)  # the champion's copy, the challenger's, the staging, the moves
    outcomes = set()
    for k in range(total):
        shutil.rmtree(served)
        shutil.rmtree(history_dir(served), ignore_errors=True)
        shutil.copytree(pristine, served)
        with pytest.raises(Killed):
            run_killed_at(k)
        outcomes.add(check_after_kill(served, old, new, digests))
        promote(served, challenger, WIN, "better")  # the next run finishes the job
        assert model_bytes(served) == new and [v.number for v in History(served).versions()] == [1, 2]
    assert outcomes == {"old", "new"}  # kills before the commit point, and after it


def count_writes(served: Path, challenger: Path) -> int:
    """How many files a promotion writes or renames, counted on a copy of ``served``."""
    copy = served.with_name(served.name + "-count") / served.name
    shutil.copytree(served, copy)
    rename, copy_file, writes = os.replace, shutil.copy2, []

    def counting(real):
        def write(source, target, **kwargs):
            writes.append(target)
            return real(source, target, **kwargs)

        return write

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", counting(rename))
        patch.setattr(shutil, "copy2", counting(copy_file))
        promote(copy, challenger, WIN, "better")
    return len(writes)


KILLER = """
import os, shutil, signal, sys
from recsys.loop.promotion import Challenge, promote
served, challenger, evaluation, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
writes = []
def killing(real):
    def write(source, target, **kwargs):
        if len(writes) == k:
            os.kill(os.getpid(), signal.SIGKILL)
        writes.append(str(target))
        return real(source, target, **kwargs)
    return write
os.replace, shutil.copy2 = killing(os.replace), killing(shutil.copy2)
promote(served, challenger, Challenge.from_json(__import__("json").loads(evaluation)), "better")
"""


@pytest.mark.slow
def test_a_promotion_sigkilled_in_a_subprocess_leaves_a_whole_model_and_a_readable_history(
    killed_promotion: tuple,
) -> None:
    served, pristine, challenger, old, new, digests = killed_promotion
    evaluation = json.dumps(WIN.to_json())
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def promote_killed_at(k: int) -> subprocess.CompletedProcess:
        command = [sys.executable, "-c", KILLER, str(served), str(challenger), evaluation, str(k)]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    # The writes: the champion's copy into the history and its rename, the challenger's and its rename, the staging,
    # the manifest (the commit point), then the moves; counted as the kill test above counts them.
    manifest = len(old) + 1 + len(new) + 1 + len(new)
    assert count_writes(served, challenger) == manifest + 1 + len(new)
    outcomes = set()
    for k in (len(old) // 2, manifest, manifest + len(new)):  # copying; before the commit point; the last move
        shutil.rmtree(served)
        shutil.rmtree(history_dir(served), ignore_errors=True)
        shutil.copytree(pristine, served)
        done = promote_killed_at(k)
        assert done.returncode == -signal.SIGKILL, done.stderr
        outcomes.add(check_after_kill(served, old, new, digests))
    assert outcomes == {"old", "new"}


# -- retrain ----------------------------------------------------------------------------------------------------


@pytest.fixture
def retrain_inputs(tmp_path: Path, clicks_path: Path) -> dict[str, Path]:
    """The tiny log's users split into a training log and a held-out log, and a feedback store of 6 lists (made of
    the training log's groups, one a second, so that the last ones are the most recent)."""
    log = pd.read_csv(clicks_path)
    users = log["group"].drop_duplicates().tolist()
    train, held_out = tmp_path / "train.csv", tmp_path / "held_out.csv"
    log[log["group"].isin(users[:8])].to_csv(train, index=False)
    log[log["group"].isin(users[8:])].to_csv(held_out, index=False)
    store = FeedbackStore(tmp_path / "feedback")
    for n, user in enumerate(users[:6]):
        group = log[log["group"] == user].reset_index(drop=True)
        shown = group[["item", "item_id", "clicked"]].assign(position=range(1, len(group) + 1))
        store.record(str(group["query"][0]), shown, "clicktune@00000000", list_id=f"list{n}")
    return {"train": train, "held_out": held_out, "feedback": tmp_path / "feedback"}


@pytest.mark.slow
def test_retrain_trains_a_challenger_on_the_feedback_and_decides(
    trained_model_dir: Path, retrain_inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    served, output = trained_model_dir, tmp_path / "challenger"
    champion = digest(served)
    decision = main(
        [
            "retrain", "--model", str(served), "--feedback", str(retrain_inputs["feedback"]),
            "--train-file", str(retrain_inputs["train"]), "--held-out", str(retrain_inputs["held_out"]),
            "--recent-lists", "2", "--output-dir", str(output),
            "--train-args", "--max-steps 1 --lora-rank 0 --max-length 32 --report-to none",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert f"held-out file: {retrain_inputs['held_out']} (given by --held-out)" in out
    assert decision.reason in out and "held_out.csv (4 ranked groups)" in decision.reason

    trained = pd.read_csv(tmp_path / "challenger.data" / "train.csv")
    recent = pd.read_csv(tmp_path / "challenger.data" / "recent_feedback.csv")
    assert set(recent["group"]) == {"list4", "list5"}  # the most recent lists, held out of training
    assert {"list0", "list3"} <= set(trained["group"]) and not set(recent["group"]) & set(trained["group"])
    exported = FeedbackStore(retrain_inputs["feedback"]).click_log()
    trained_feedback = exported[~exported["group"].isin(recent["group"])]
    assert len(trained) == len(pd.read_csv(retrain_inputs["train"])) + len(trained_feedback)
    assert {"item_id", "entities", "model_version"} <= set(trained.columns)  # the union of the columns

    check_model_folder(output)
    history = History(served)
    last = history.events()[-1]
    assert last.reason == decision.reason
    figures = Challenge.from_json(last.evaluation)
    assert figures.held_out.groups == 4 and figures.feedback is not None and figures.feedback.groups == 2
    if decision.promote:
        assert last.action == PROMOTED and served_version(served) == digest(output)
    else:
        assert last.action == KEPT and served_version(served) == champion
    assert history.versions()[0].digest == champion


def test_retrain_refuses_bad_inputs_before_it_trains(
    trained_model_dir: Path, retrain_inputs: dict[str, Path], tmp_path: Path
) -> None:
    base = ["retrain", "--model", str(trained_model_dir), "--feedback", str(retrain_inputs["feedback"])]
    base += ["--train-file", str(retrain_inputs["train"]), "--output-dir", str(tmp_path / "challenger")]
    with pytest.raises(UserError, match=r"--held-out is needed: .* is not a bundled model"):
        main(base)
    with pytest.raises(UserError, match=r"--held-out .* is the training log"):
        main([*base, "--held-out", str(retrain_inputs["train"])])
    held_out = ["--held-out", str(retrain_inputs["held_out"])]
    with pytest.raises(UserError, match=r"would hold out all 6 feedback lists, leaving none to train on"):
        main([*base, *held_out, "--recent-lists", "6"])
    with pytest.raises(UserError, match=r"no feedback database at"):
        main([*base[:4], str(tmp_path / "nowhere"), *base[5:], *held_out])
    with pytest.raises(UserError, match=r"the input folder"):
        main([*base[:-1], str(retrain_inputs["feedback"]), *held_out])
    inside = tmp_path / "other.data" / "held_out.csv"  # in the folder that --output-dir other writes its data to
    inside.parent.mkdir()
    shutil.copy2(retrain_inputs["held_out"], inside)
    with pytest.raises(UserError, match=r"other\.data: holds the input file .*held_out\.csv"):
        main([*base[:-1], str(tmp_path / "other"), "--held-out", str(inside)])
    assert not history_dir(trained_model_dir).exists() and not (tmp_path / "challenger").exists()
