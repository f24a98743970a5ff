"""Catalog mode: the index's top k is the whole catalog ranked by the scorer, saved, loaded, refused when stale."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recsys.data.candidates import validate_candidates
from recsys.data.contract import ITEM, ITEM_ID, SCORE, read_clicks
from recsys.errors import ContractError, UserError
from recsys.model.architectures import load_model
from recsys.model.artifact import ModelMetadata
from recsys.model.priors import ItemPriors
from recsys.scoring.catalog import TARGET_RECALL, build_index, main
from recsys.scoring.catalog_info import APPROXIMATE, CATALOG_FILE, EF_SEARCH_STEPS, EXACT, INDEX_FILE
from recsys.scoring.catalog_search import Catalog
from recsys.scoring.ranking import MATCH, POPULARITY, PRIOR, RANKED_COLUMNS, TEXT_SCORE, VIEWS, rank_candidates
from recsys.scoring.scorer import Scorer


@pytest.fixture(scope="module")
def clicks(clicks_path: Path) -> pd.DataFrame:
    return read_clicks(clicks_path)


@pytest.fixture(scope="module")
def catalog_items(clicks: pd.DataFrame) -> pd.DataFrame:
    """The test log's items, each once, with their ids and an extra column, as a catalog file gives them."""
    return validate_candidates(clicks[[ITEM, ITEM_ID, "entities"]].drop_duplicates(ITEM_ID), "catalog")


@pytest.fixture(scope="module")
def prior_scorer(tiny_model_dir: Path, clicks: pd.DataFrame) -> Scorer:
    """The tiny bi-encoder with the log's item priors weighed in heavily, and a negative cosine scale."""
    model, tokenizer = load_model("bi", str(tiny_model_dir))
    with torch.no_grad():
        model.scale.fill_(-8.0)
    blend = {"text": 0.7, "prior": 3.0, "log_views": 0.5}
    metadata = ModelMetadata(base_model=str(tiny_model_dir), fine_tuned=True, blend=blend)
    return Scorer(model, tokenizer, metadata, ItemPriors.fit(clicks), version="with-priors@test")


class Renamed:
    """Another encoder of the same model, by its name (as the ONNX export is)."""

    name = "onnx int8"

    def encode(self, texts: list[str], progress: object = None) -> np.ndarray:
        raise AssertionError("a refused catalog encodes nothing")


def contexts(clicks: pd.DataFrame, n: int = 4) -> list[str]:
    return clicks["query"].drop_duplicates().head(n).tolist()


def without_percentiles(ranked: pd.DataFrame) -> pd.DataFrame:
    """A ranked table without match and popularity, percentiles within what was ranked: a catalog's top k, where a
    list's ranking has every item."""
    return ranked.drop(columns=[MATCH, POPULARITY], errors="ignore")


@pytest.mark.parametrize("which", ["text alone", "with priors"])
def test_the_exact_index_ranks_as_the_scorer_ranks_the_whole_catalog(
    which: str, bi_scorer: Scorer, prior_scorer: Scorer, clicks: pd.DataFrame, catalog_items: pd.DataFrame
) -> None:
    scorer = bi_scorer if which == "text alone" else prior_scorer
    catalog = build_index(scorer, catalog_items)
    assert (catalog.info.kind, catalog.info.count, catalog.info.recall_at_100) == (EXACT, len(catalog_items), None)
    for context in contexts(clicks):
        whole = rank_candidates(scorer, context, catalog_items)
        ranked = catalog.rank(context, top_k=10)
        # Same items, order, scores, parts and extra columns.
        pd.testing.assert_frame_equal(without_percentiles(ranked), without_percentiles(whole.head(10)))
    assert list(ranked.columns[: len(RANKED_COLUMNS)]) == list(RANKED_COLUMNS)
    if scorer is prior_scorer:
        assert {TEXT_SCORE, PRIOR, VIEWS} <= set(ranked.columns)
        by_text = whole[TEXT_SCORE].rank(ascending=False, method="first")
        assert (by_text.head(10) != range(1, 11)).any()  # the priors moved items: a test that could fail


def test_top_k_beyond_the_catalog_gives_it_all_and_zero_gives_an_empty_table(
    bi_scorer: Scorer, catalog_items: pd.DataFrame
) -> None:
    catalog = build_index(bi_scorer, catalog_items.head(5))
    everything = catalog.rank("apple iphone", top_k=50)
    assert everything["rank"].tolist() == [1, 2, 3, 4, 5] and everything[SCORE].is_monotonic_decreasing
    empty = catalog.rank("apple iphone", top_k=0)
    assert empty.empty and list(empty.columns) == list(everything.columns)


@pytest.mark.slow
def test_the_approximate_index_reports_its_recall_and_finds_nearly_the_exact_top_k(
    bi_scorer: Scorer, clicks: pd.DataFrame
) -> None:
    rng = np.random.default_rng(0)
    words = sorted({word for text in clicks[ITEM] for word in text.split()})
    items = validate_candidates(pd.DataFrame({ITEM: [" ".join(rng.choice(words, 4)) for _ in range(1500)]}))
    catalog = build_index(bi_scorer, items, exact_limit=1000)
    info = catalog.info
    assert info.kind == APPROXIMATE and info.parameters["ef_search"] in EF_SEARCH_STEPS
    assert TARGET_RECALL <= info.recall_at_100 <= 1
    for context in contexts(clicks, 3):
        exact = rank_candidates(bi_scorer, context, items, top_k=100)
        found = catalog.rank(context, top_k=100)
        assert len(found) == 100 and len(set(found.index) & set(exact.index)) >= 90
        assert found[SCORE].is_monotonic_decreasing
        # Each found item keeps the score the whole ranking gave it.
        np.testing.assert_allclose(found[SCORE], rank_candidates(bi_scorer, context, items)[SCORE][found.index])


def test_a_saved_catalog_loads_for_its_model_and_is_refused_by_another(
    bi_scorer: Scorer, prior_scorer: Scorer, catalog_items: pd.DataFrame, tmp_path: Path
) -> None:
    folder = build_index(bi_scorer, catalog_items, items_file="catalog.csv", model="models/tiny").save(tmp_path / "c")
    info = json.loads((folder / CATALOG_FILE).read_text())
    assert info["model_version"] == bi_scorer.version and info["count"] == len(catalog_items)
    loaded = Catalog.load(folder, bi_scorer)
    assert loaded.items.columns.tolist() == catalog_items.columns.tolist()
    pd.testing.assert_frame_equal(
        without_percentiles(loaded.rank("nba finals", 5)),
        without_percentiles(rank_candidates(bi_scorer, "nba finals", catalog_items, top_k=5)),
    )
    with pytest.raises(UserError, match=r"built with model .*, not the served with-priors@test.*rebuild it: python -m "
                       r"recsys\.scoring\.catalog build --model models/other --items catalog\.csv --out "):  # fmt: skip
        Catalog.load(folder, prior_scorer, "models/other")
    onnx = Scorer(
        bi_scorer.model, bi_scorer.tokenizer, bi_scorer.metadata, version=bi_scorer.version, encoder=Renamed()
    )
    with pytest.raises(UserError, match=r"built with model .* \[torch fp32\], not the served .* \[onnx int8\]"):
        Catalog.load(folder, onnx)  # the same model, its vectors from another encoder: close, not the same
    with pytest.raises(UserError, match="no catalog here"):
        Catalog.load(tmp_path / "nothing", bi_scorer)
    (folder / INDEX_FILE).unlink()
    with pytest.raises(UserError, match=r"index\.faiss or items\.parquet does not read .*; rebuild it: python -m"):
        Catalog.load(folder, bi_scorer)


def test_a_cross_encoder_cannot_index_a_catalog(cross_scorer: Scorer, catalog_items: pd.DataFrame) -> None:
    with pytest.raises(UserError, match=r"needs a bi-encoder.*cross-encoder, which reads each \(context, item\) pair"):
        build_index(cross_scorer, catalog_items)


def test_bad_or_empty_catalogs_are_refused_with_the_contracts_message(
    bi_scorer: Scorer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    no_item = tmp_path / "titles.csv"
    no_item.write_text("title\nred shoes\n", encoding="utf-8")
    with pytest.raises(ContractError, match=r"titles\.csv: missing required column\(s\) item"):
        main(["build", "--model", str(tiny_model_dir), "--items", str(no_item)])
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ContractError, match=r"blank\.txt: no items"):
        main(["build", "--model", str(tiny_model_dir), "--items", str(blank)])
    with pytest.raises(ContractError, match=r"news\.csv: no items; give a catalog with at least one item"):
        build_index(bi_scorer, validate_candidates(pd.DataFrame({ITEM: []})), items_file="news.csv")
    clash = validate_candidates(pd.DataFrame({ITEM: ["a"], "rank": [1], "input_rank": [2]}))
    with pytest.raises(ContractError, match="would both be called 'input_rank'"):
        build_index(bi_scorer, clash)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"item": "red shoes", "size": 42}\n{"item": "blue hat", "size": "L"}\n', encoding="utf-8")
    with pytest.raises(ContractError, match="column 'size' mixes kinds of values"):
        main(["build", "--model", str(tiny_model_dir), "--items", str(mixed)])


def test_build_and_query_from_the_command_line(
    tiny_model_dir: Path, catalog_items: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    items_file = tmp_path / "news.csv"
    catalog_items.to_csv(items_file, index=False)
    main(["build", "--model", str(tiny_model_dir), "--items", str(items_file)])
    assert f"indexed {len(catalog_items)} items" in capsys.readouterr().out
    folder = tmp_path / "news-index"  # beside the items file by default
    assert json.loads((folder / CATALOG_FILE).read_text())["model"] == str(tiny_model_dir.resolve())
    ranked = main(["query", "--catalog", str(folder), "--context", "nba finals", "--top-k", "3"])
    out = capsys.readouterr().out
    assert ranked["rank"].tolist() == [1, 2, 3] and all(item in out for item in ranked[ITEM])
