"""Serving without Gradio: the served models and the catalog they serve (recsys.serving.service)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from test_inputs import ITEMS, LIMITS  # the requests' items and the limits they are checked against

from recsys.data.contract import ITEM
from recsys.defaults import BUNDLED_LOGS
from recsys.errors import UserError
from recsys.model.artifact import DEFAULT_MODEL
from recsys.scoring.catalog import build_index
from recsys.scoring.loading import load_scorer
from recsys.scoring.ranking import rank_candidates
from recsys.scoring.scorer import Scorer
from recsys.serving.served import retrain_from
from recsys.serving.service import InputError, ServedModels, load_catalog, load_served_models, rank_catalog


@pytest.fixture(scope="module")
def scorer(tiny_model_dir: Path) -> Scorer:
    return load_scorer(str(tiny_model_dir))


# -- the served models ---------------------------------------------------------------------------------------


def test_a_folder_that_was_not_fine_tuned_is_served_zero_shot(tiny_model_dir: Path) -> None:
    models = load_served_models(tiny_model_dir)
    assert models.base is None and models.model_dir == str(tiny_model_dir)
    assert not models.metadata.fine_tuned
    assert "was not fine-tuned" in models.note and "zero-shot" in models.note
    assert models.version == f"{tiny_model_dir.name} (zero-shot)"
    assert retrain_from(models, BUNDLED_LOGS[0]) == models.base_model_name  # nothing fine-tuned to start from


def test_a_fine_tuned_folder_is_served_with_its_base_model(trained_model_dir: Path, tiny_model_dir: Path) -> None:
    models = load_served_models(trained_model_dir)
    assert models.metadata.fine_tuned and models.note == ""
    assert models.model_dir == str(trained_model_dir)
    assert models.base is not None and not models.base.metadata.fine_tuned
    assert models.base.metadata.base_model == str(tiny_model_dir)  # the base that its metadata names
    assert re.fullmatch(rf"{trained_model_dir.name}@[0-9a-f]{{8}}", models.version)
    assert retrain_from(models, BUNDLED_LOGS[0]) == "$MODEL_DIR"  # the served model, never this machine's path
    pairs = [("microsoft surface", "microsoft surface studio first look")]
    assert models.scorer.predict_proba(pairs).shape == models.base.predict_proba(pairs).shape == (1,)


def test_a_hub_id_that_cannot_be_fetched_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the Hub is unreachable here anyway; never try
    with pytest.raises(UserError, match=r"MODEL_DIR=nobody/no-such-model .*could not be fetched.*set MODEL_DIR"):
        load_served_models("nobody/no-such-model")


@pytest.mark.slow
def test_without_a_model_folder_the_zero_shot_minilm_is_served_and_said_so(tmp_path: Path) -> None:
    models = load_served_models(tmp_path / "no-model-here")
    assert not models.metadata.fine_tuned and models.base is None and models.model_dir is None  # no folder, no card
    assert "zero-shot" in models.note and "make demo" in models.note and DEFAULT_MODEL in models.note
    assert models.metadata.base_model == DEFAULT_MODEL == retrain_from(models, BUNDLED_LOGS[0])
    assert models.version == "all-MiniLM-L6-v2 (zero-shot)"
    candidates = pd.DataFrame({ITEM: ["new iphone price", "lakers win nba game"]})
    ranked = rank_candidates(models.scorer, "nba playoffs lakers", candidates)
    assert ranked[ITEM].tolist()[0] == "lakers win nba game"


def test_a_catalog_is_served_with_its_model_and_within_the_column_limit(scorer: Scorer, tmp_path: Path) -> None:
    items = pd.DataFrame({ITEM: ITEMS, "price": [3, 1, 2], "size": ["M", "L", "S"]})
    folder = build_index(scorer, items, items_file="shop.csv").save(tmp_path / "catalog")
    models = ServedModels(scorer, model_dir="models/shop")
    catalog = load_catalog(folder, models, LIMITS)
    assert len(catalog) == 3 and catalog.items[ITEM].tolist() == ITEMS
    with pytest.raises(UserError, match=r"/catalog: the catalog has 2 columns besides item, item_id and clicked; "):
        load_catalog(folder, models, replace(LIMITS, max_extra_columns=1))
    other = ServedModels(Scorer(scorer.model, scorer.tokenizer, scorer.metadata, version="shop@2"), model_dir="m/shop")
    with pytest.raises(UserError, match=r"not the served shop@2.*--model m/shop --items shop\.csv --out "):
        load_catalog(folder, other, LIMITS)
    ranked = rank_catalog(replace(models, catalog=catalog), "warm clothes", None, LIMITS)
    assert ranked["rank"].tolist() == [1, 2, 3]  # top k left empty: TOP_K, here the whole catalog
    with pytest.raises(InputError, match="This app has no catalog to rank against"):
        rank_catalog(models, "warm clothes", 2, LIMITS)
