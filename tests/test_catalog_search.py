"""Loading a saved catalog, and refusing a damaged one in one line (recsys.scoring.catalog_search)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from recsys.data.candidates import validate_candidates
from recsys.data.contract import ITEM, ITEM_ID, read_clicks
from recsys.errors import UserError
from recsys.scoring.catalog import build_index
from recsys.scoring.catalog_info import CATALOG_FILE, INDEX_FILE, ITEMS_FILE
from recsys.scoring.catalog_search import Catalog


@pytest.fixture(scope="module")
def built_catalog(bi_scorer, clicks_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test log's items indexed for the tiny bi-encoder, saved once."""
    items = validate_candidates(read_clicks(clicks_path)[[ITEM, ITEM_ID]].drop_duplicates(ITEM_ID), "catalog")
    return build_index(bi_scorer, items, items_file="news.csv", model="models/tiny").save(
        tmp_path_factory.mktemp("catalog") / "news-index"
    )


@pytest.fixture
def catalog(built_catalog: Path, tmp_path: Path) -> Path:
    """A copy of the saved catalog, for a test to damage."""
    return Path(shutil.copytree(built_catalog, tmp_path / "news-index"))


def set_info(folder: Path, **values: object) -> None:
    data = json.loads((folder / CATALOG_FILE).read_text())
    data = {k: v for k, v in {**data, **values}.items() if v is not ...}
    (folder / CATALOG_FILE).write_text(json.dumps(data))


def test_an_items_table_without_its_item_column_is_refused_at_load(catalog: Path, bi_scorer) -> None:
    items = pd.read_parquet(catalog / ITEMS_FILE).rename(columns={ITEM: "title"})
    items.to_parquet(catalog / ITEMS_FILE, index=False)
    expected = (
        r"items\.parquet: missing required column\(s\) item; found title, item_id; rebuild the catalog: "
        r"python -m recsys\.scoring\.catalog build --model models/tiny --items news\.csv"
    )
    with pytest.raises(UserError, match=expected):
        Catalog.load(catalog, bi_scorer)


CATALOG_DAMAGE = {
    "approximate without ef_search": (
        {"kind": "approximate", "parameters": {}},
        r"its kind is approximate but its parameters lack the ef_search that searching it needs",
    ),
    "slope NaN": ({"slope": float("nan")}, r"its slope is nan, not a finite number"),
    "slope infinite": ({"slope": float("inf")}, r"its slope is inf, not a finite number"),
    "slope as text": ({"slope": "2.0"}, r"its slope is '2\.0', not a finite number"),
    "count as text": ({"count": "31"}, r"its count is '31', not a whole number of items"),
    "dimension negative": ({"dim": -1}, r"its dim is -1, not a whole number from 1 to 8192"),
    "dimension true": ({"dim": True}, r"its dim is True, not a whole number"),
    "unknown kind": ({"kind": "fuzzy"}, r"its kind is 'fuzzy', not exact or approximate"),
    "ef_search zero": ({"parameters": {"ef_search": 0}}, r"its parameters' ef_search is 0, not a whole number from 1"),
    "ef_search enormous": (
        {"parameters": {"ef_search": 10**12}},
        r"its parameters' ef_search is 1000000000000, not a whole number from 1 to 32768",
    ),
    "parameters a list": ({"parameters": [128]}, r"its parameters is \[128\], not an object"),
    "recall above one": ({"recall_at_100": 1.5}, r"its recall_at_100 is 1\.5, not a recall in \[0, 1\]"),
    "model version missing": ({"model_version": ...}, r"lacks 'model_version'"),
    "model version a number": ({"model_version": 3}, r"its model_version is 3, not a model version"),
    "unknown key": ({"index_file": "/etc/passwd"}, r"has the key\(s\) 'index_file'"),
}


@pytest.mark.parametrize("damage", CATALOG_DAMAGE)
def test_a_damaged_catalog_json_is_refused_at_load_in_one_line(damage: str, catalog: Path, bi_scorer) -> None:
    values, message = CATALOG_DAMAGE[damage]
    set_info(catalog, **values)
    expected = rf"{re.escape(str(catalog / CATALOG_FILE))}: {message}.*, not a catalog this version reads; rebuild it: "
    with pytest.raises(UserError, match=expected) as refusal:
        Catalog.load(catalog, bi_scorer)
    assert "\n" not in str(refusal.value)


def test_a_catalog_json_that_is_no_object_or_no_json_is_refused(catalog: Path, bi_scorer) -> None:
    (catalog / CATALOG_FILE).write_text("[1, 2]")
    with pytest.raises(UserError, match=r"catalog\.json: holds a JSON list, not an object"):
        Catalog.load(catalog, bi_scorer)
    (catalog / CATALOG_FILE).write_text("{")
    rebuild = r"rebuild it: python -m recsys\.scoring\.catalog"
    with pytest.raises(UserError, match=r"catalog\.json: not valid JSON .*; " + rebuild):
        Catalog.load(catalog, bi_scorer)


@pytest.mark.parametrize("name", [INDEX_FILE, ITEMS_FILE, CATALOG_FILE])
def test_a_linked_catalog_file_is_refused_without_reading_its_target(
    name: str, catalog: Path, bi_scorer, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-TOKEN hf_abcdefghijklmnop\n")
    (catalog / name).unlink()
    (catalog / name).symlink_to(secret)
    with pytest.raises(UserError, match=rf"{re.escape(str(catalog / name))}: is a link; .*rebuild it") as refusal:
        Catalog.load(catalog, bi_scorer)
    assert "SECR" not in str(refusal.value) and "hf_" not in str(refusal.value)


def test_an_index_that_is_not_faiss_is_named_never_quoted(catalog: Path, bi_scorer) -> None:
    (catalog / INDEX_FILE).write_text("SECRET-TOKEN hf_abcdefghijklmnop\n")
    with pytest.raises(UserError, match=r"index\.faiss is not a faiss index .*; rebuild it") as refusal:
        Catalog.load(catalog, bi_scorer)
    assert "SECR" not in str(refusal.value)


def test_an_index_of_another_kind_than_catalog_json_says_is_refused(catalog: Path, bi_scorer) -> None:
    set_info(catalog, kind="approximate", parameters={"ef_search": 128})
    with pytest.raises(UserError, match=r"index\.faiss is a IndexFlatIP, not the approximate inner-product index"):
        Catalog.load(catalog, bi_scorer)
