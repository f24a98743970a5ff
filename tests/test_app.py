"""The Gradio app: each handler called as a function, then the named endpoints through gradio_client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import pytest
import torch
from gradio_client import Client, handle_file
from matplotlib.figure import Figure

from app import (
    EXAMPLES,
    MARK,
    RANK_HEADERS,
    AppConfig,
    Handlers,
    Limits,
    build_demo,
    launch_options,
    load_models,
)
from recsys.contract import CLICKED, ITEM, ITEM_ID, item_ids, read_clicks
from recsys.feedback import FeedbackStore
from recsys.models import ModelMetadata, Scorer, load_encoder, load_scorer

LIMITS = Limits(max_items=20, max_upload_mb=0.01, max_text_chars=2000)
EXAMPLE = json.loads((EXAMPLES / "examples.json").read_text())["rank"][0]  # a .csv with item_id, entities, popularity
CONTEXT, CSV = EXAMPLE["context"], str(EXAMPLES / EXAMPLE["file"])


@pytest.fixture(scope="module")
def scorer(tiny_model_dir: Path) -> Scorer:
    return load_scorer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def reversed_scorer(tiny_model_dir: Path) -> Scorer:
    """A 'fine-tuned' model that disagrees with the tiny base on every pair: a negative cosine scale."""
    model, tokenizer = load_encoder("bi", str(tiny_model_dir))
    with torch.no_grad():
        model.scale.fill_(-10.0)
    return Scorer(model, tokenizer, ModelMetadata(base_model=str(tiny_model_dir), fine_tuned=True))


@pytest.fixture
def handlers(scorer: Scorer, tmp_path: Path, tiny_model_dir: Path, clicks_path: Path) -> Handlers:
    store = FeedbackStore(tmp_path / "feedback")
    return Handlers(scorer, None, store, "tiny@test", LIMITS, str(tiny_model_dir), [str(clicks_path)], str(clicks_path))


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- rank ------------------------------------------------------------------------------------------------------


def test_rank_uploaded_csv(handlers: Handlers) -> None:
    table, download, status, ranked_list = handlers.rank(CONTEXT, CSV, "", "item", None, 5)
    assert list(table.columns) == [*RANK_HEADERS, "entities", "popularity"]
    assert table[MARK].eq(False).all()
    assert table["rank"].tolist() == [1, 2, 3, 4, 5]
    assert table["score"].is_monotonic_decreasing
    assert table["click_probability"].between(0, 1).all()
    assert "Ranked 10 items from u90900.csv" in status and "top 5" in status
    assert ranked_list["context"] == CONTEXT
    # The download holds the same rows as the table, with every digit of the scores.
    saved = pd.read_csv(download, dtype={ITEM_ID: str})
    assert saved.columns.tolist() == table.columns.tolist()[1:]
    assert saved[ITEM].tolist() == table[ITEM].tolist()
    assert np.allclose(saved["score"], table["score"], atol=1e-4)
    source = pd.read_csv(CSV, dtype=str).set_index(ITEM_ID)
    assert saved.set_index(ITEM_ID)["entities"].equals(source.loc[saved[ITEM_ID], "entities"])


def test_rank_pasted_lines_txt_and_jsonl(handlers: Handlers, tmp_path: Path) -> None:
    table, *_ = handlers.rank("apple iphone", None, "new iphone released\n\n nba finals \n", "item", None, 10)
    assert sorted(table[ITEM]) == ["nba finals", "new iphone released"]
    txt = write(tmp_path / "list.txt", "first\nsecond\nthird\n")
    assert len(handlers.rank("apple", txt, "", "item", None, 2)[0]) == 2
    jsonl = write(tmp_path / "list.jsonl", '{"item": "a", "price": 3}\n{"item": "b", "price": 1}\n')
    assert set(handlers.rank("apple", jsonl, "", "item", None, 10)[0]["price"]) == {1, 3}


def test_rank_with_a_picked_item_column_and_blended_feature(handlers: Handlers, tmp_path: Path) -> None:
    csv = write(tmp_path / "shop.csv", "title,price\nred shoes,30\nblue hat,10\ngreen scarf,20\n")
    weights = pd.DataFrame({"feature": ["price"], "weight": [-100.0]})  # cheapest first, whatever the model says
    table, _, status, _ = handlers.rank("warm clothes", csv, "", "title", weights, 10)
    assert table[ITEM].tolist() == ["blue hat", "green scarf", "red shoes"]
    assert "model_score" in table.columns and "price × -100" in status


def test_inspect_upload_offers_text_columns_and_numeric_features(handlers: Handlers, tmp_path: Path) -> None:
    column, weights = handlers.inspect_upload(CSV)
    assert column["value"] == ITEM and ITEM in column["choices"] and "popularity" not in column["choices"]
    assert weights.to_dict("records") == [{"feature": "popularity", "weight": 0.0}]
    column, weights = handlers.inspect_upload(write(tmp_path / "shop.csv", "title,price\nred shoes,30\n"))
    assert column["value"] is None and column["choices"] == ["title"]
    assert handlers.inspect_upload(None)[0]["value"] == ITEM


@pytest.mark.parametrize(
    ("context", "file", "pasted", "top_k", "message"),
    [
        ("ctx", None, "", 10, "No items: upload a file"),
        ("ctx", None, "   \n  ", 10, "No items"),
        ("", None, "item", 10, "Enter the context"),
        ("ctx", CSV, "pasted item", 10, "either as a file or pasted, not both"),
        ("ctx", None, "\n".join(f"item {i}" for i in range(21)), 10, "21 items, more than the limit of 20"),
        ("ctx", None, "x" * 2001, 10, "longer than 2000 characters"),
        ("x" * 2001, None, "item", 10, "context has 2001 characters"),
        ("ctx", None, "item", 0, "Top k must be 1 or more"),
    ],
)
def test_rank_refuses_bad_input(handlers: Handlers, context, file, pasted, top_k, message) -> None:
    with pytest.raises(gr.Error, match=message):
        handlers.rank(context, file, pasted, "item", None, top_k)


def test_rank_refuses_bad_files(handlers: Handlers, tmp_path: Path) -> None:
    no_item = write(tmp_path / "titles.csv", "title,price\nred shoes,10\n")
    with pytest.raises(gr.Error, match=r"titles.csv: missing required column\(s\) item.*'Item text column'"):
        handlers.rank("ctx", no_item, "", "item", None, 10)
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    with pytest.raises(gr.Error, match=r"photo\.csv: this looks like a binary file"):
        handlers.rank("ctx", str(binary), "", "item", None, 10)
    big = write(tmp_path / "big.txt", "an item\n" * 2000)
    with pytest.raises(gr.Error, match=r"big\.txt is 0\.02 MB, more than the limit of 0\.01 MB \(MAX_UPLOAD_MB\)"):
        handlers.rank("ctx", big, "", "item", None, 10)
    wide = write(tmp_path / "wide.csv", "item," + ",".join(f"c{i}" for i in range(65)) + "\nshoes" + ",1" * 65 + "\n")
    with pytest.raises(gr.Error, match=r"wide\.csv has 65 columns besides item and item_id; .* at most 64"):
        handlers.rank("ctx", wide, "", "item", None, 10)
    with pytest.raises(gr.Error, match="The weight of 'price' is 'lots'"):
        handlers.rank("ctx", None, "a\nb", "item", pd.DataFrame({"feature": ["price"], "weight": ["lots"]}), 10)
    with pytest.raises(gr.Error, match="no column 'price' to blend"):
        handlers.rank("ctx", None, "a\nb", "item", pd.DataFrame({"feature": ["price"], "weight": [1.0]}), 10)


# -- feedback --------------------------------------------------------------------------------------------------


def test_feedback_saves_the_marked_list(handlers: Handlers) -> None:
    table, _, _, ranked_list = handlers.rank(CONTEXT, CSV, "", "item", None, 6)
    table[MARK] = [True, False, True, False, False, False]
    status, saved = handlers.feedback(CONTEXT, table, ranked_list)
    assert "Saved 2 of 6 items as clicked" in status
    rows = handlers.store.read()
    assert rows["item"].tolist() == table[ITEM].tolist()
    assert rows["position"].tolist() == [1, 2, 3, 4, 5, 6]
    assert rows["clicked"].tolist() == [1, 0, 1, 0, 0, 0]
    assert set(rows["context"]) == {CONTEXT} and set(rows["model_version"]) == {"tiny@test"}
    # Saving the same list again corrects its marks rather than adding a second list.
    table[MARK] = [False, True, False, False, False, False]
    handlers.feedback(CONTEXT, table, saved)
    assert handlers.store.summary() == {"lists": 1, "rows": 6, "clicks": 1}
    assert read_clicks(handlers.export_feedback())[CLICKED].tolist() == [0, 1, 0, 0, 0, 0]
    overview, recent = handlers.feedback_overview()
    assert "1 click** on **1 list**" in overview and len(recent) == 6


def test_feedback_refuses_what_it_cannot_store(handlers: Handlers) -> None:
    with pytest.raises(gr.Error, match="no feedback in"):
        handlers.export_feedback()
    table, _, _, ranked_list = handlers.rank(CONTEXT, CSV, "", "item", None, 3)
    with pytest.raises(gr.Error, match="No item is marked"):
        handlers.feedback(CONTEXT, table, ranked_list)
    table[MARK] = True
    with pytest.raises(gr.Error, match="context changed since this list was ranked"):
        handlers.feedback("another context", table, ranked_list)
    with pytest.raises(gr.Error, match="Rank a list first"):
        handlers.feedback(CONTEXT, None, None)
    with pytest.raises(gr.Error, match="must hold the displayed ranks"):
        handlers.feedback(CONTEXT, table.assign(rank=[1, 2.5, 3]), None)
    with pytest.raises(gr.Error, match="Every row needs its 'item' text"):
        handlers.feedback(CONTEXT, table.assign(item=["a", " ", "c"]), None)
    # A script may send a list of its own, without ids: they are the text's hash, as on ranking.
    handlers.feedback("a script's context", pd.DataFrame({MARK: [True], "rank": [1], ITEM: ["x"]}), None)
    assert handlers.store.read()[ITEM_ID].tolist() == item_ids(pd.Series(["x"])).tolist()


# -- classify, compare, model ----------------------------------------------------------------------------------


def test_classify_labels_at_the_model_threshold(handlers: Handlers, scorer: Scorer) -> None:
    item = "teens arrested tennessee wildfires officials say"
    probability, _ = handlers.classify(CONTEXT, item)
    assert 0 <= probability <= 1
    for threshold, expected in ((probability - 0.01, "clicked"), (probability + 0.01, "not clicked")):
        handlers.scorer = Scorer(scorer.model, scorer.tokenizer, replace(scorer.metadata, threshold=threshold))
        assert handlers.classify(CONTEXT, item) == (probability, expected)
    with pytest.raises(gr.Error, match="Enter the item"):
        handlers.classify(CONTEXT, " ")


def test_compare_shows_each_items_rank_change(handlers: Handlers, scorer: Scorer, reversed_scorer: Scorer) -> None:
    with pytest.raises(gr.Error, match="Compare needs a fine-tuned model"):
        handlers.compare(CONTEXT, CSV, "", "item")
    handlers.scorer, handlers.base_scorer = reversed_scorer, scorer
    base, tuned = handlers.compare(CONTEXT, CSV, "", "item")
    assert len(base) == len(tuned) == 10
    assert tuned[ITEM].tolist() == base[ITEM].tolist()[::-1]  # this 'fine-tuned' model reverses every list
    assert tuned["base_rank"].tolist() == list(range(10, 0, -1))
    assert tuned["change"].iloc[0] == "▲ 9" and tuned["change"].iloc[-1] == "▼ 9"


def test_model_tab_card_evaluation_and_its_cache(handlers: Handlers) -> None:
    assert "Base model" in handlers.model_card()
    text, plot, _ = handlers.cached_evaluation()
    assert "Press **Evaluate**" in text and plot is None
    text, distribution, reliability = handlers.evaluate(None)  # the first click log, EVAL_FILE
    assert isinstance(distribution, Figure) and isinstance(reliability, Figure)
    for name in ("this model (zero-shot)", "random", "popularity", "tfidf", "zero_shot"):
        assert f"| {name} |" in text
    assert handlers.cached_evaluation()[0] == text  # kept in the data dir for the next start
    with pytest.raises(gr.Error, match=r"Pick one of the app's click logs: clicks\.csv"):
        handlers.evaluate("/etc/passwd")


def test_model_tab_states_the_threshold_with_precision_recall_and_base_rate(
    handlers: Handlers, scorer: Scorer, tmp_path: Path
) -> None:
    assert "default: a zero-shot model" in handlers.model_card()  # the tiny BERT folder was never fine-tuned
    summary = {"criterion": "youden_j", "threshold": 0.42, "precision": 0.71, "recall": 0.64}
    summary |= {"balanced_accuracy": 0.58, "predicted_positive_rate": 0.45, "base_rate": 0.6, "rows": 500}
    metadata = replace(scorer.metadata, threshold=0.42, fine_tuned=True, metrics={"threshold": summary})
    metadata.save(tmp_path)
    handlers.model_dir = str(tmp_path)
    assert "precision 0.710 and recall 0.640" in handlers.model_card() and "base rate 60.0%" in handlers.model_card()
    # Without a model folder (the zero-shot MiniLM), the threshold is still stated.
    handlers.model_dir, handlers.scorer = None, Scorer(scorer.model, scorer.tokenizer, metadata)
    assert "**Decision threshold:** 0.420" in handlers.model_card() and "base rate 60.0%" in handlers.model_card()


def test_config_from_environment() -> None:
    assert AppConfig.from_env({}) == AppConfig()
    config = AppConfig.from_env({"MAX_ITEMS": "50", "MAX_UPLOAD_MB": "1.5", "PORT": "9000", "FEEDBACK_DIR": "/x"})
    assert (config.limits.max_items, config.limits.max_upload_mb, config.port, config.data_dir) == (50, 1.5, 9000, "/x")
    assert launch_options(config)["max_file_size"] == int(1.5 * 2**20)
    assert AppConfig.from_env({"GRADIO_SERVER_NAME": "0.0.0.0"}).host == "0.0.0.0"  # as on a Space
    assert AppConfig.from_env({"GRADIO_SERVER_NAME": "0.0.0.0", "HOST": "localhost"}).host == "localhost"
    with pytest.raises(ValueError, match="must be numbers"):
        AppConfig.from_env({"MAX_ITEMS": "many"})


def test_a_hub_id_that_cannot_be_fetched_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the Hub is unreachable here anyway; never try
    with pytest.raises(RuntimeError, match=r"MODEL_DIR=nobody/no-such-model .*could not be fetched"):
        load_models("nobody/no-such-model")


@pytest.mark.slow
def test_without_a_trained_model_the_app_serves_zero_shot_minilm_and_says_so(tmp_path: Path) -> None:
    scorer, base, model_dir, note = load_models(tmp_path / "no-model-here")
    assert not scorer.metadata.fine_tuned and base is None and model_dir is None  # no folder, no card
    assert "zero-shot" in note and "make demo" in note
    handlers = Handlers(scorer, None, FeedbackStore(tmp_path), "minilm", Limits(), model_dir, [], None)
    table, *_ = handlers.rank("nba playoffs lakers", None, "lakers win nba game\nnew iphone price", "item", None, 10)
    assert table[ITEM].tolist()[0] == "lakers win nba game"


def test_a_folder_that_was_not_fine_tuned_is_served_zero_shot(tiny_model_dir: Path) -> None:
    _, base, model_dir, note = load_models(tiny_model_dir)
    assert base is None and model_dir == str(tiny_model_dir) and "zero-shot" in note


# -- the API through gradio_client -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(
    scorer: Scorer, reversed_scorer: Scorer, tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]
) -> Iterator[tuple]:
    data_dir = tmp_path_factory.mktemp("served-feedback")
    demo = build_demo(reversed_scorer, scorer, data_dir, limits=LIMITS, eval_file=None, train_file=None)
    config = replace(AppConfig(), port=free_port(), limits=LIMITS)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_options(config))
    try:
        yield Client(f"http://127.0.0.1:{config.port}/", verbose=False), data_dir
    finally:
        demo.close()


def test_api_endpoints(served: tuple) -> None:
    client, data_dir = served
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/rank", "/classify", "/feedback", "/compare"} <= set(endpoints)

    table, download, status = client.predict(
        context=CONTEXT, file=handle_file(CSV), pasted="", item_column="item", top_k=4, api_name="/rank"
    )
    assert table["headers"][:6] == RANK_HEADERS
    assert [row[1] for row in table["data"]] == [1, 2, 3, 4]
    assert pd.read_csv(download)[ITEM].tolist() == [row[3] for row in table["data"]]

    table["data"][1][0] = True  # mark the second item, as a user ticks it
    status = client.predict(context=CONTEXT, table=table, api_name="/feedback")
    assert "Saved 1 of 4 items as clicked" in status
    clicks = FeedbackStore(data_dir).read()
    assert clicks["clicked"].tolist() == [0, 1, 0, 0]

    probability, label = client.predict(context=CONTEXT, item="oakland fire", api_name="/classify")
    assert 0 <= probability <= 1 and label in ("clicked", "not clicked")

    base, tuned = client.predict(context="apple", file=None, pasted="a\nb\nc", item_column="item", api_name="/compare")
    assert len(base["data"]) == len(tuned["data"]) == 3


def test_api_errors_say_what_to_fix_and_the_app_stays_up(served: tuple, tmp_path: Path) -> None:
    client, _ = served
    no_item = write(tmp_path / "titles.csv", "title\nred shoes\n")
    with pytest.raises(Exception, match="missing required column"):
        client.predict(context=CONTEXT, file=handle_file(no_item), pasted="", api_name="/rank")
    with pytest.raises(Exception, match="No items"):
        client.predict(context=CONTEXT, file=None, pasted="", api_name="/rank")
    big = write(tmp_path / "big.txt", "an item\n" * 2000)  # 16 KB, over the 0.01 MB limit
    with pytest.raises(Exception, match="exceeds the maximum file size"):
        client.predict(context=CONTEXT, file=handle_file(big), pasted="", api_name="/rank")
    probability, _ = client.predict(context=CONTEXT, item="oakland fire", api_name="/classify")
    assert 0 <= probability <= 1
