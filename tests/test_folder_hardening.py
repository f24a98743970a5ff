"""Damaged or hostile model folders are refused in one line, before anything loads from them, and a catalog build
never writes over what it reads. (A damaged saved catalog is refused by test_catalog_search.py.)

Each test damages a copy of a real folder: the packaged MiniLM (its config and safetensors header are the real
ones), or the tiny BERT where a model must load.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from recsys.data.contract import ITEM, ITEM_ID, read_clicks
from recsys.defaults import Env
from recsys.errors import ContractError, UserError
from recsys.model.architectures import load_model
from recsys.model.artifact import MAX_TOKENS, ModelFolderError, ModelMetadata, resolve_model_path
from recsys.model.checks import check_model_folder
from recsys.model.config_checks import CONFIG_LIMITS
from recsys.scoring.catalog import main as index_main
from recsys.scoring.catalog_info import CATALOG_FILE, INDEX_FILE, ITEMS_FILE
from recsys.scoring.loading import load_scorer


@pytest.fixture
def minilm(tmp_path: Path) -> Path:
    """A copy of the packaged MiniLM (90 MB: copied in a tenth of a second) for a test to damage."""
    folder = tmp_path / "minilm"
    shutil.copytree(resolve_model_path(None), folder)
    return folder


@pytest.fixture
def tiny(tmp_path: Path, tiny_model_dir: Path) -> Path:
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, folder)
    return folder


class Planted:
    """A pickle that runs code when it is loaded: it creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def plant_pickle(folder: Path, marker: Path) -> None:
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Planted(marker)))


def tiny_safetensors(path: Path) -> None:
    """A valid 30-byte safetensors file that holds no tensor."""
    header = b"{}".ljust(22)
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    assert path.stat().st_size == 30


def set_config(folder: Path, **values: object) -> None:
    data = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**data, **values}))


def refused(folder: Path, message: str) -> None:
    """The folder is refused by the check and by every loader, naming ``message``; nothing is loaded."""
    expected = re.escape(str(folder)) + message
    with pytest.raises(ModelFolderError, match=expected):
        check_model_folder(folder)
    with pytest.raises(ModelFolderError, match=expected):
        load_scorer(str(folder))


# -- which weights load -----------------------------------------------------------------------------------------


def test_a_pickle_planted_in_place_of_the_safetensors_is_refused_and_never_unpickled(
    minilm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(Env.ALLOW_PICKLE, raising=False)
    (minilm / "model.safetensors").unlink()
    tiny_safetensors(minilm / "x.safetensors")
    marker = tmp_path / "pickle-ran"
    plant_pickle(minilm, marker)
    refused(
        minilm,
        r": no model\.safetensors, only pytorch_model\.bin, a torch pickle, which can run code when it is loaded; "
        rf"convert it to safetensors .* set {Env.ALLOW_PICKLE}=1 to load it",
    )
    assert not marker.exists()


def test_a_folder_without_model_safetensors_is_refused_naming_it(minilm: Path) -> None:
    (minilm / "model.safetensors").rename(minilm / "weights.safetensors")
    refused(minilm, r": no model\.safetensors \(nor model\.safetensors\.index\.json\), the weights that transformers "
            r"loads; weights\.safetensors is not the model's weight file")  # fmt: skip


def test_a_pickle_beside_the_safetensors_is_never_loaded(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(Env.ALLOW_PICKLE, "1")  # allowed, and still the safetensors load where they are
    marker = tmp_path / "pickle-ran"
    plant_pickle(tiny, marker)
    model, _ = load_model("bi", str(tiny))
    assert model.encoder.config.hidden_size == 32 and not marker.exists()


def test_a_config_may_not_point_transformers_at_another_weight_file(minilm: Path) -> None:
    # transformers loads the file that config.json names; this one holds no tensor, so a base model would start at
    # random, silently.
    tiny_safetensors(minilm / "x.safetensors")
    set_config(minilm, transformers_weights="x.safetensors")
    refused(minilm, r"/config\.json: transformers_weights names 'x\.safetensors', not the folder's model\.safetensors")


def test_pickle_weights_load_only_where_the_operator_allows_them(
    tiny: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, _ = load_model("bi", str(tiny_model_dir))
    torch.save(reference.encoder.state_dict(), tiny / "pytorch_model.bin")
    (tiny / "model.safetensors").unlink()
    monkeypatch.delenv(Env.ALLOW_PICKLE, raising=False)
    refused(tiny, rf": no model\.safetensors, only pytorch_model\.bin, .*{Env.ALLOW_PICKLE}=1")
    monkeypatch.setenv(Env.ALLOW_PICKLE, "1")
    model, _ = load_model("bi", str(tiny))
    for name, weight in reference.encoder.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[name], weight)
    monkeypatch.setenv(Env.ALLOW_PICKLE, "sure")
    with pytest.raises(UserError, match=rf"{Env.ALLOW_PICKLE}='sure' must be 1 .* or 0"):
        check_model_folder(tiny)


def test_sharded_weights_load_and_shards_must_be_files_of_the_folder(
    tiny: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    reference, _ = load_model("bi", str(tiny_model_dir))
    (tiny / "model.safetensors").unlink()
    reference.encoder.save_pretrained(tiny, max_shard_size="100KB")
    index = tiny / "model.safetensors.index.json"
    assert len(set(json.loads(index.read_text())["weight_map"].values())) > 1
    model, _ = load_model("bi", str(tiny))
    torch.testing.assert_close(model.encoder.state_dict(), reference.encoder.state_dict())

    outside = tmp_path / "outside.safetensors"
    shutil.copy(next(tiny.glob("model-0000*.safetensors")), outside)
    data = json.loads(index.read_text())
    for escape in ("../outside.safetensors", str(outside)):
        first = next(iter(data["weight_map"]))
        index.write_text(json.dumps({**data, "weight_map": {**data["weight_map"], first: escape}}))
        refused(tiny, rf"/model\.safetensors\.index\.json: names {re.escape(repr(escape))}, which is not a "
                r"safetensors file of this folder")  # fmt: skip


# -- config.json and clicktune.json within bounds ---------------------------------------------------------------


CONFIG_DAMAGE = {
    "positions beyond any allocation": (
        {"max_position_embeddings": 2**40},
        rf"max_position_embeddings is {2**40}, not a whole number from 1 to {MAX_TOKENS}",
    ),
    "unknown model type": ({"model_type": "evil"}, r"model_type is 'evil', not one of the encoders .*\(bert, "),
    "a decoder's model type": ({"model_type": "gpt2"}, r"model_type is 'gpt2', not one of the encoders"),
    "no model type": ({"model_type": None}, r"model_type is None, not one of the encoders"),
    "negative width": ({"hidden_size": -384}, r"hidden_size is -384, not a whole number from 1 to 8192"),
    "width as text": ({"hidden_size": "384"}, r"hidden_size is '384', not a whole number"),
    "layers as true": ({"num_hidden_layers": True}, r"num_hidden_layers is True, not a whole number"),
    "a million layers": (
        {"num_hidden_layers": 10**6},
        r"num_hidden_layers is 1000000, not a whole number from 1 to 96",
    ),
    "vocabulary beyond the bound": ({"vocab_size": 10**7}, r"vocab_size is 10000000, not a whole number from 1 to "),
    "heads that do not divide": ({"num_attention_heads": 7}, r"hidden_size 384 is not a multiple of num_attention_he"),
    "width unlike the weights": ({"hidden_size": 768}, r"hidden_size is 768, but the weights hold 384"),
    "positions unlike the weights": (
        {"max_position_embeddings": 1024},
        r"max_position_embeddings is 1024, but the weights hold 512 \(embeddings\.position_embeddings\.weight\)",
    ),
    "layers unlike the weights": ({"num_hidden_layers": 12}, r"num_hidden_layers is 12, but the weights hold 6"),
    "vocabulary unlike the weights": ({"vocab_size": 30000}, r"vocab_size is 30000, but the weights hold 30522"),
    "layers left to the default": ({"num_hidden_layers": ...}, r"num_hidden_layers is 12, but the weights hold 6"),
}


@pytest.mark.parametrize("damage", CONFIG_DAMAGE)
@pytest.mark.slow
def test_a_config_out_of_bounds_or_unlike_its_weights_is_refused_before_anything_is_built(
    damage: str, minilm: Path
) -> None:
    values, message = CONFIG_DAMAGE[damage]
    data = json.loads((minilm / "config.json").read_text())
    data = {k: v for k, v in {**data, **values}.items() if v is not ...}
    (minilm / "config.json").write_text(json.dumps(data))
    refused(minilm, rf"/config\.json: {message}")


def test_max_length_is_bounded_by_the_models_positions(minilm: Path) -> None:
    ModelMetadata(max_length=10**9).save(minilm)
    refused(minilm, rf"/clicktune\.json: max_length is 1000000000, above the limit of {MAX_TOKENS} tokens")
    ModelMetadata(max_length=1024).save(minilm)
    refused(minilm, r"/clicktune\.json: max_length is 1024, but the model reads at most 512 tokens")
    ModelMetadata(max_length=512).save(minilm)
    assert check_model_folder(minilm).max_length == 512


def test_the_limits_admit_the_packaged_model() -> None:
    config = json.loads((Path(resolve_model_path(None)) / "config.json").read_text())
    assert all(config[name] <= limit for name, limit in CONFIG_LIMITS.items())
    assert check_model_folder(resolve_model_path(None)) is None


# -- catalogs ---------------------------------------------------------------------------------------------------


@pytest.fixture
def items_file(tmp_path: Path, clicks_path: Path) -> Path:
    path = tmp_path / "news.csv"
    read_clicks(clicks_path)[[ITEM, ITEM_ID]].drop_duplicates(ITEM_ID).to_csv(path, index=False)
    return path


def test_the_build_never_writes_over_what_it_reads(
    tiny_model_dir: Path, items_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feedback = tmp_path / "feedback-data"
    feedback.mkdir()
    (feedback / "feedback.sqlite3").write_bytes(b"SQLite format 3\x00")
    monkeypatch.setenv(Env.FEEDBACK_DIR, str(feedback))
    (tmp_path / "to-model").symlink_to(tiny_model_dir)
    (tmp_path / "to-db").symlink_to(feedback / "feedback.sqlite3")
    parquet = tmp_path / "shop" / ITEMS_FILE
    parquet.parent.mkdir()
    pd.read_csv(items_file).to_parquet(parquet, index=False)
    before = {path: path.read_bytes() for path in (items_file, parquet, feedback / "feedback.sqlite3")}
    cases = [
        (items_file, items_file, r"news\.csv: is the input file; write the catalog to another folder \(--out\)"),
        (items_file, tiny_model_dir, r": is the input folder; write the catalog to another folder"),
        (items_file, tmp_path / "to-model", r"to-model: is the input folder .*, through a link"),
        (items_file, feedback / "feedback.sqlite3", r"feedback\.sqlite3: is the input file"),
        (items_file, tmp_path / "to-db", r"to-db: is the input file .*feedback\.sqlite3, through a link"),
        (parquet, parquet.parent, r"shop/items\.parquet: is the input file; write the catalog to another folder"),
    ]
    for items, out, message in cases:
        with pytest.raises(ContractError, match=message):
            index_main(["build", "--model", str(tiny_model_dir), "--items", str(items), "--out", str(out)])
    assert {path: path.read_bytes() for path in before} == before
    assert not (tiny_model_dir / CATALOG_FILE).exists()


def test_a_link_in_the_catalog_folder_is_replaced_never_written_through(
    tiny_model_dir: Path, items_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "news-index"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for name in (INDEX_FILE, ITEMS_FILE):
        (out / name).symlink_to(victim)
    index_main(["build", "--model", str(tiny_model_dir), "--items", str(items_file), "--out", str(out)])
    assert victim.read_text() == "keep me"
    assert not any((out / name).is_symlink() for name in (INDEX_FILE, ITEMS_FILE))
