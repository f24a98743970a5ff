"""recsys/model/checks.py: a model folder is checked before use, and a damaged one refused naming the file."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from recsys.model.artifact import CROSS, METADATA_FILE, ModelFolderError, ModelMetadata, resolve_model_path
from recsys.model.checks import check_model_folder


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
