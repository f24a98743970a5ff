"""The Gradio layer: each handler called as a function, user errors as gr.Error, the endpoints through gradio_client.

The rules behind the handlers (limits, candidate input, marks, cached evaluations) are tested in
test_inputs.py, test_shown_lists.py and test_evaluations.py; here, that the app wires them up and shows what
they refuse.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import pytest
from gradio_client import Client, handle_file
from matplotlib.figure import Figure

from clicktune_app.display import RANK_HEADERS, REAL_CLICK, bar
from clicktune_app.handler_base import user_errors
from clicktune_app.handlers import Handlers
from clicktune_app.layout import build_demo, create_app, launch_options
from recsys.data.candidates import validate_candidates
from recsys.data.contract import CLICKED, ITEM, ITEM_ID, MARK, read_clicks
from recsys.defaults import BING_NEWS, ROOT, BundledLog
from recsys.errors import ContractError, UserError
from recsys.feedback.store import FeedbackStore, retrain_commands
from recsys.model.artifact import ModelMetadata
from recsys.scoring.catalog import build_index
from recsys.scoring.loading import load_scorer
from recsys.scoring.ranking import rank_candidates
from recsys.scoring.scorer import Scorer
from recsys.serving.evaluations import Evaluations
from recsys.serving.served import log_of, prepare, retrain_from, serve_log
from recsys.serving.service import InputError, ServedModels
from recsys.serving.settings import AppConfig, Limits

LIMITS = Limits(max_items=20, max_upload_mb=0.01, max_text_chars=2000)
EXAMPLES = BING_NEWS.examples_dir
# A held-out user's list as a .csv with item_id, features and the user's real clicks, within LIMITS.
EXAMPLE = next(
    e
    for e in json.loads((EXAMPLES / "examples.json").read_text())["rank"]
    if e["file"].endswith(".csv") and len(pd.read_csv(EXAMPLES / e["file"])) <= LIMITS.max_items
)
CONTEXT, CSV = EXAMPLE["context"], str(EXAMPLES / EXAMPLE["file"])
ROWS = len(pd.read_csv(CSV))


@pytest.fixture(scope="module")
def scorer(tiny_model_dir: Path) -> Scorer:
    return load_scorer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def catalog_items(clicks_path: Path) -> pd.DataFrame:
    """The test log's items, each once, as a catalog."""
    return validate_candidates(read_clicks(clicks_path)[[ITEM, ITEM_ID, "entities"]].drop_duplicates(ITEM_ID))


def make_handlers(models: ServedModels, data_dir: Path, eval_file: Path | None, limits: Limits = LIMITS) -> Handlers:
    """The handlers as build_demo wires them: a feedback store and cached evaluations in ``data_dir``."""
    log = eval_file and str(eval_file)
    return Handlers(models, FeedbackStore(data_dir), Evaluations(models, data_dir, log, log), limits)


@pytest.fixture
def handlers(scorer: Scorer, tmp_path: Path, tiny_model_dir: Path, clicks_path: Path) -> Handlers:
    return make_handlers(ServedModels(scorer, model_dir=str(tiny_model_dir)), tmp_path / "feedback", clicks_path)


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
    assert f"Ranked {ROWS} items from {Path(CSV).name}" in status and "top 5" in status
    assert ranked_list.context == CONTEXT and ranked_list.items == tuple(table[ITEM])  # kept on the server
    # The download holds the same rows as the table, with every digit of the scores.
    saved = pd.read_csv(download, dtype={ITEM_ID: str})
    assert {ITEM, ITEM_ID, "score", CLICKED, "entities", "match_to_context"} <= set(saved.columns)
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
    # A .txt file is one item a line, as recsys.data.candidates reads it: its text is the item, with nothing to blend.
    column, weights = handlers.inspect_upload(write(tmp_path / "items.txt", "red shoes\n30\n"))
    assert (column["value"], column["choices"]) == (ITEM, [ITEM]) and weights.empty


def test_user_errors_become_gradio_errors_and_bugs_stay_bugs() -> None:
    @user_errors
    def fails(error: Exception) -> None:
        raise error

    with pytest.raises(gr.Error, match="Top k must be 1 or more") as shown:
        fails(InputError("Top k must be 1 or more."))
    assert shown.value.title == "Cannot do that"
    missing = ContractError("titles.csv", "missing required column(s) item", "add it", missing=("item",))
    with pytest.raises(gr.Error) as shown:
        fails(missing)
    assert shown.value.message == "titles.csv: missing required column(s) item; add it"  # the error's own words
    assert shown.value.title == "Cannot read that"
    with pytest.raises(gr.Error) as shown:
        fails(ContractError("photo.csv", "this looks like a binary file"))
    assert shown.value.message == "photo.csv: this looks like a binary file"
    with pytest.raises(KeyError):  # not the user's doing: a bug, shown as one
        fails(KeyError("score"))


@pytest.mark.parametrize(
    ("context", "file", "pasted", "top_k", "message"),
    [
        ("ctx", None, "", 10, "No items: upload a file"),
        ("", None, "item", 10, "Enter the context"),
        ("ctx", None, "\n".join(f"item {i}" for i in range(21)), 10, "21 items, more than the limit of 20"),
        ("x" * 2001, None, "item", 10, "context has 2001 characters"),
        ("ctx", None, "item", 0, "Top k must be 1 or more"),
    ],
)
def test_rank_refuses_bad_input(handlers: Handlers, context, file, pasted, top_k, message) -> None:
    with pytest.raises(gr.Error, match=message):
        handlers.rank(context, file, pasted, "item", None, top_k)


def test_rank_refuses_bad_files_and_blends(handlers: Handlers, tmp_path: Path) -> None:
    no_item = write(tmp_path / "titles.csv", "title,price\nred shoes,10\n")
    with pytest.raises(
        gr.Error, match=r"titles.csv: missing required column\(s\) item.*or choose the column that holds the item"
    ):
        handlers.rank("ctx", no_item, "", "item", None, 10)
    big = write(tmp_path / "big.txt", "an item\n" * 2000)
    with pytest.raises(gr.Error, match=r"big\.txt is 0\.02 MB, more than the limit of 0\.01 MB \(MAX_UPLOAD_MB\)"):
        handlers.rank("ctx", big, "", "item", None, 10)
    wide = write(tmp_path / "wide.csv", "item," + ",".join(f"c{i}" for i in range(65)) + "\nshoes" + ",1" * 65 + "\n")
    with pytest.raises(gr.Error, match=r"wide\.csv has 65 columns besides item, item_id and clicked; .* at most 64"):
        handlers.rank("ctx", wide, "", "item", None, 10)
    with pytest.raises(gr.Error, match="no column 'price' to blend"):
        handlers.rank("ctx", None, "a\nb", "item", pd.DataFrame({"feature": ["price"], "weight": [1.0]}), 10)
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    with pytest.raises(gr.Error, match=r"photo\.csv: this looks like a binary file"):
        handlers.inspect_upload(str(binary))


def test_rank_the_catalog_the_app_serves(
    handlers: Handlers, scorer: Scorer, catalog_items: pd.DataFrame, tiny_model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(gr.Error, match="This app has no catalog to rank against; its operator sets CATALOG_DIR"):
        handlers.rank_catalog(CONTEXT, 5)
    table, download, status, shown, error = handlers.rank_catalog_in_page(CONTEXT, 5)  # said beside the inputs
    assert table.empty and (download, status, shown) == (None, "", None) and "no catalog" in error

    models = ServedModels(scorer, model_dir=str(tiny_model_dir), catalog=build_index(scorer, catalog_items))
    served = make_handlers(models, tmp_path / "served", None)
    table, download, status, ranked_list = served.rank_catalog(CONTEXT, 5)
    assert list(table.columns) == [*RANK_HEADERS, "entities"] and table[MARK].eq(False).all()
    assert table[ITEM].tolist() == rank_candidates(scorer, CONTEXT, catalog_items, top_k=5)[ITEM].tolist()
    assert f"Ranked the catalog's {len(catalog_items)} items (exact search); showing the top 5" in status
    assert ranked_list.items == tuple(table[ITEM]) and pd.read_csv(download)[ITEM].tolist() == table[ITEM].tolist()
    with pytest.raises(gr.Error, match="Top k is at most 20 \\(MAX_ITEMS\\)"):
        served.rank_catalog(CONTEXT, 21)
    with pytest.raises(gr.Error, match="Enter the context"):
        served.rank_catalog(" ", 5)


@pytest.mark.slow
def test_the_catalog_button_shows_only_where_a_catalog_is_served(
    scorer: Scorer, catalog_items: pd.DataFrame, tiny_model_dir: Path, tmp_path: Path
) -> None:
    def button(models: ServedModels) -> gr.Button:
        demo = build_demo(models, tmp_path, limits=LIMITS, eval_file=None, train_file=None)
        return next(b for b in demo.blocks.values() if b.elem_id == "rank-catalog-button")

    assert not button(ServedModels(scorer, model_dir=str(tiny_model_dir))).visible
    shown = button(ServedModels(scorer, model_dir=str(tiny_model_dir), catalog=build_index(scorer, catalog_items)))
    assert shown.visible and shown.value == f"Rank against the catalog ({len(catalog_items)} items)"


@pytest.mark.slow
def test_the_app_loads_its_catalog_at_start_and_refuses_a_stale_one(
    scorer: Scorer, catalog_items: pd.DataFrame, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = build_index(scorer, catalog_items).save(tmp_path / "catalog")
    config = replace(AppConfig(), model_dir=str(tiny_model_dir), data_dir=str(tmp_path), eval_file="", train_file="")
    demo = create_app(replace(config, catalog_dir=str(folder)))
    assert next(b for b in demo.blocks.values() if b.elem_id == "rank-catalog-button").visible
    older = Scorer(scorer.model, scorer.tokenizer, scorer.metadata, version="clicktune@0ld")
    build_index(older, catalog_items).save(folder)
    with pytest.raises(UserError, match=f"built with model clicktune@0ld.*rebuild it: "
                       f"python -m recsys.scoring.catalog build --model {tiny_model_dir} "):  # fmt: skip
        create_app(replace(config, catalog_dir=str(folder)))


# -- feedback --------------------------------------------------------------------------------------------------


def test_feedback_saves_the_marked_list(handlers: Handlers) -> None:
    table, _, _, ranked_list = handlers.rank(CONTEXT, CSV, "", "item", None, 6)
    status, saved = handlers.feedback([True, False, True, False, False, False], ranked_list)
    assert "Saved 2 of 6 items as clicked" in status
    rows = handlers.store.read()
    assert rows["item"].tolist() == table[ITEM].tolist()
    assert rows["position"].tolist() == [1, 2, 3, 4, 5, 6]
    assert rows["clicked"].tolist() == [1, 0, 1, 0, 0, 0]
    assert set(rows["context"]) == {CONTEXT} and set(rows["model_version"]) == {handlers.models.version}
    assert f"model `{handlers.models.version}`" in status
    # Saving the same list again corrects its marks rather than adding a second list.
    handlers.feedback([False, True, False, False, False, False], saved)
    assert handlers.store.summary() == {"lists": 1, "rows": 6, "clicks": 1}
    # Visitors see counts only, and cannot export, unless the operator allows browsing.
    overview, recent = handlers.feedback_overview()
    assert "1 click** on **1 list**" in overview and "Browsing stored feedback is off" in overview and recent.empty
    with pytest.raises(gr.Error, match="Exporting feedback is off on this server"):
        handlers.export_feedback()
    handlers.feedback_browsing = True
    exported = read_clicks(handlers.export_feedback())
    assert exported[CLICKED].tolist() == [0, 1, 0, 0, 0, 0]
    overview, recent = handlers.feedback_overview()
    assert "Browsing stored feedback is off" not in overview and len(recent) == 6


def test_feedback_refuses_what_it_cannot_store(handlers: Handlers) -> None:
    handlers.feedback_browsing = True
    with pytest.raises(gr.Error, match="no feedback is stored yet"):
        handlers.export_feedback()
    _, _, _, ranked_list = handlers.rank(CONTEXT, CSV, "", "item", None, 3)
    with pytest.raises(gr.Error, match="no item is marked; mark the items you would click"):
        handlers.feedback([False, False, False], ranked_list)
    with pytest.raises(gr.Error, match="Rank a list first"):
        handlers.feedback([True, True, True], None)  # no list ranked in this session: a forged call
    with pytest.raises(gr.Error, match=r"the ranked list: column 'mark' .*row\(s\) 2"):
        handlers.feedback([True, "maybe", False], ranked_list)
    for marks in ([True, False], [True] * 4, None, "true, false, false", {"1": True}):
        with pytest.raises(gr.Error, match="marks do not match the 3 items this list was ranked with"):
            handlers.feedback(marks, ranked_list)
    assert handlers.store.summary()["rows"] == 0


def test_the_feedback_tab_shows_the_retrain_commands_for_the_served_model(
    scorer: Scorer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    models = ServedModels(scorer, model_dir=str(tiny_model_dir))
    demo = build_demo(models, tmp_path, limits=LIMITS, eval_file=None, train_file=None)
    [text] = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown) and "finetune.train" in str(b.value)]
    assert retrain_commands(retrain_from(models, log_of(models))) in text
    assert f"--model-name-or-path {models.base_model_name} " in text  # a zero-shot model: retraining starts at its base


# -- classify, compare, model ----------------------------------------------------------------------------------


def test_classify_labels_at_the_model_threshold(handlers: Handlers, scorer: Scorer) -> None:
    item = "teens arrested tennessee wildfires officials say"
    probability, _ = handlers.classify(CONTEXT, item)
    assert 0 <= probability <= 1
    for threshold, expected in ((probability - 0.01, "clicked"), (probability + 0.01, "not clicked")):
        handlers.models.scorer = Scorer(scorer.model, scorer.tokenizer, replace(scorer.metadata, threshold=threshold))
        assert handlers.classify(CONTEXT, item) == (probability, expected)
    with pytest.raises(gr.Error, match="Enter the item"):
        handlers.classify(CONTEXT, " ")


def test_compare_shows_each_items_rank_change(handlers: Handlers, scorer: Scorer, reversed_scorer: Scorer) -> None:
    with pytest.raises(gr.Error, match="Compare needs a fine-tuned model"):
        handlers.compare(CONTEXT, CSV, "", "item")
    handlers.models = ServedModels(reversed_scorer, scorer)
    base, tuned, outcome = handlers.compare(CONTEXT, CSV, "", "item")
    assert len(base) == len(tuned) == ROWS
    assert tuned[ITEM].tolist() == base[ITEM].tolist()[::-1]  # this 'fine-tuned' model reverses every list
    assert tuned["change"].iloc[0] == f"▲ {ROWS - 1}" and tuned["change"].iloc[-1] == f"▼ {ROWS - 1}"
    # The real clicks are ticked in both tables, and the line above says how each model ranks them.
    clicked = set(pd.read_csv(CSV).query("clicked == 1")[ITEM])
    for table in (base, tuned):
        assert set(table.loc[table[REAL_CLICK] == "✓", ITEM]) == clicked
    assert outcome.count("real click") == 2 and "**zero-shot**" in outcome and "**fine-tuned**" in outcome


def list_with_clicks(tmp_path: Path, clicks: str) -> str:
    items = "\n".join(f"item {n},{c}" for n, c in enumerate(clicks))
    return write(tmp_path / "truth.csv", f"item,clicked\n{items}\n")


def test_a_list_with_its_real_clicks_is_marked_and_summed_up(handlers: Handlers, tmp_path: Path) -> None:
    csv = list_with_clicks(tmp_path, "0100101")
    table, _, status, _ = handlers.rank("item", csv, "", "item", None, 3)
    whole, *_ = handlers.rank("item", csv, "", "item", None, None)
    ticked = whole[REAL_CLICK].eq("✓").to_numpy()
    assert sorted(whole.loc[ticked, ITEM]) == ["item 1", "item 4", "item 6"]  # ticked beside their own items
    in_top_5 = int(ticked[:5].sum())
    scores = whole["score"].to_numpy()
    positives, negatives = scores[ticked], scores[~ticked]
    auc = np.mean([(p > n) + 0.5 * (p == n) for p in positives for n in negatives])
    assert f"{in_top_5} of 3 real clicks in the top 5 · AUC {auc:.2f}" in status  # of the whole list, not the top 3
    assert len(table) == 3
    # Without a clicked column, no line and a blank column; a clicked column that is not 0/1 is refused.
    table, _, status, _ = handlers.rank("item", write(tmp_path / "plain.csv", "item\na\nb\n"), "", "item", None, 3)
    assert table[REAL_CLICK].eq("").all() and "real click" not in status
    with pytest.raises(gr.Error, match=r"clicked.*row"):
        handlers.rank("item", write(tmp_path / "bad.csv", "item,clicked\na,1\nb,maybe\n"), "", "item", None, 3)


def test_match_and_popularity_show_as_bars_and_the_switch_ranks_by_match_alone(
    handlers: Handlers, tmp_path: Path
) -> None:
    assert (bar(0), bar(49), bar(100), bar(float("nan"))) == ("▱▱▱▱▱ 0", "▰▰▱▱▱ 49", "▰▰▰▰▰ 100", "")
    table, _, status, _ = handlers.rank(CONTEXT, CSV, "", "item", None, None, True)
    assert "by their match to the context alone" in status and "match alone" in status
    assert table["match"].iloc[0].endswith(" 100") or table["match"].iloc[0] == table["match"].max()
    assert table["log popularity"].eq("").all()  # a model without item priors has no popularity part
    # A list's own column of the same name as one the page adds is kept, under the ranking's clash prefix.
    own = write(tmp_path / "own.csv", "item,match,real click\nred shoes,yes,no\nblue hat,no,no\n")
    table, *_ = handlers.rank("shoes", own, "", "item", None, None)
    assert sorted(table["input_match"]) == ["no", "yes"] and set(table["input_real click"]) == {"no"}
    assert table["match"].str.contains("▰|▱").all()


@pytest.mark.slow
def test_model_tab_card_evaluation_and_its_cache(handlers: Handlers) -> None:
    assert "Base model" in handlers.model_card()
    # The card's own evaluation section (what its folder was published with) gives way to the tab's verdict.
    assert "no baselines were evaluated" not in handlers.model_card()
    assert "The verdict and the table against the baselines are at the top of this tab." in handlers.model_card()
    text, plot, _ = handlers.cached_evaluation()
    assert "Press **Evaluate**" in text and plot is None
    text, distribution, reliability = handlers.evaluate(None)  # the first click log, EVAL_FILE
    assert isinstance(distribution, Figure) and isinstance(reliability, Figure)
    for name in ("this model (zero-shot)", "random", "popularity", "tfidf", "bm25", "zero_shot"):
        assert f"| {name} |" in text
    assert handlers.cached_evaluation()[0] == text  # kept in the data dir for the next start
    with pytest.raises(gr.Error, match=r"Pick one of the app's click logs: clicks\.csv"):
        handlers.evaluate("/etc/passwd")


def tiny_log(clicks_path: Path, key: str = "tiny") -> BundledLog:
    """A log whose one held-out file is the test click log."""
    return BundledLog(key, key.title(), str(clicks_path.parent), "models/none", (clicks_path.name,), lists="test lists")


@pytest.mark.slow
def test_the_model_tab_opens_with_a_verdict_in_words_on_each_held_out_file(
    scorer: Scorer, tiny_model_dir: Path, clicks_path: Path, tmp_path: Path
) -> None:
    log = tiny_log(clicks_path)
    served = serve_log(log, ServedModels(scorer, model_dir=str(tiny_model_dir)), tmp_path, None, str(clicks_path))
    handlers = Handlers(served.models, FeedbackStore(tmp_path), served.evaluations, LIMITS, log=log)
    verdict, table, distribution, _ = handlers.overview()
    assert "being evaluated" in verdict and table == "" and distribution is None  # until it is done
    prepare([served])
    verdict, table, distribution, _ = handlers.overview()
    evaluation = served.evaluations.cached(clicks_path.name)
    groups = evaluation.model.groups
    assert f"On {groups} held-out Tiny test lists, the zero-shot base model puts" in verdict
    assert "judged against the best alternative" in verdict  # a zero-shot model is its own base
    assert f"on `{clicks_path.name}`, held-out users, never trained or selected on." in verdict
    assert re.search(r"\*\*(Better than|Worse than|No demonstrated difference from) ", verdict)  # leads with it
    assert "| random |" in table and "the best alternative" not in table  # the verdict is said once, above it
    assert isinstance(distribution, Figure)


def test_one_app_serves_each_log_in_its_own_panel_with_its_own_api(
    scorer: Scorer, reversed_scorer: Scorer, tiny_model_dir: Path, clicks_path: Path, tmp_path: Path
) -> None:
    first = serve_log(tiny_log(clicks_path, "one"), ServedModels(scorer, model_dir=str(tiny_model_dir)), tmp_path)
    second = serve_log(tiny_log(clicks_path, "two"), ServedModels(reversed_scorer, scorer), tmp_path, key="two")
    demo = build_demo([first, second], tmp_path, limits=LIMITS)
    tabs = [block.elem_id for block in demo.blocks.values() if isinstance(block, gr.Tab)]
    assert {"log-one", "log-two", "tab-rank", "two-tab-rank", "tab-model", "two-tab-model"} <= set(tabs)
    names = {fn.api_name for fn in demo.fns.values() if fn.api_name}
    assert {"rank", "compare", "evaluate", "two_rank", "two_compare", "two_evaluate"} <= names
    ids = [block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)]
    assert len(ids) == len(set(ids))  # no element id twice on one page


def test_model_tab_states_the_threshold_with_precision_recall_and_base_rate(
    handlers: Handlers, scorer: Scorer, tmp_path: Path
) -> None:
    assert "default: a zero-shot model" in handlers.model_card()  # the tiny BERT folder was never fine-tuned
    summary = {"criterion": "youden_j", "threshold": 0.42, "precision": 0.71, "recall": 0.64}
    summary |= {"balanced_accuracy": 0.58, "predicted_positive_rate": 0.45, "base_rate": 0.6, "rows": 500}
    metadata = replace(scorer.metadata, threshold=0.42, fine_tuned=True, metrics={"threshold": summary})
    metadata.save(tmp_path)
    handlers.models = ServedModels(scorer, model_dir=str(tmp_path))
    assert "precision 0.710 and recall 0.640" in handlers.model_card() and "base rate 60.0%" in handlers.model_card()
    # Without a model folder (the zero-shot MiniLM), the threshold is still stated.
    handlers.models = ServedModels(Scorer(scorer.model, scorer.tokenizer, metadata))
    assert "**Decision threshold:** 0.420" in handlers.model_card() and "base rate 60.0%" in handlers.model_card()


def test_launch_options_serve_where_the_config_says_with_its_upload_limit() -> None:
    config = AppConfig.from_env({"MAX_UPLOAD_MB": "1.5", "PORT": "9000", "GRADIO_SERVER_NAME": "0.0.0.0"})
    options = launch_options(config)
    assert (options["server_name"], options["server_port"]) == ("0.0.0.0", 9000)
    assert options["max_file_size"] == int(1.5 * 2**20)  # Gradio refuses larger uploads before a handler runs
    assert options["ssr_mode"] is False


def test_the_app_says_when_it_serves_a_model_zero_shot(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = replace(AppConfig(), model_dir=str(tiny_model_dir), data_dir=str(tmp_path), eval_file="", train_file="")
    demo = create_app(config)
    markdown = {block.elem_id: block.value for block in demo.blocks.values() if isinstance(block, gr.Markdown)}
    assert "was not fine-tuned" in markdown["model-note"] and "zero-shot" in markdown["model-note"]
    assert "No model folder" not in markdown["model-card"]  # the folder's own card


@pytest.mark.slow
def test_each_tab_holds_its_own_examples(scorer: Scorer, tiny_model_dir: Path, tmp_path: Path) -> None:
    demo = build_demo(ServedModels(scorer, model_dir=str(tiny_model_dir)), tmp_path, limits=LIMITS)

    def examples_in(block: gr.blocks.Block) -> list[gr.Dataset]:
        found = [block] if isinstance(block, gr.Dataset) else []
        return found + [d for child in getattr(block, "children", []) for d in examples_in(child)]

    tabs = {block.elem_id: block for block in demo.blocks.values() if isinstance(block, gr.Tab)}
    assert set(tabs) == {"tab-rank", "tab-classify", "tab-compare", "tab-model", "tab-feedback"}
    for tab in ("tab-rank", "tab-classify", "tab-compare", "tab-model"):
        assert len(examples_in(tabs[tab])) == 1, tab
    assert sum(len(examples_in(tab)) for tab in tabs.values()) == len(examples_in(demo))  # none outside a tab


# -- the API through gradio_client -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(
    scorer: Scorer,
    reversed_scorer: Scorer,
    catalog_items: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
    launch_app: Callable,
) -> Iterator[tuple]:
    data_dir = tmp_path_factory.mktemp("served-feedback")
    models = ServedModels(reversed_scorer, scorer, catalog=build_index(reversed_scorer, catalog_items))
    with launch_app(models, data_dir, LIMITS) as client:
        yield client, data_dir


@pytest.mark.slow
def test_api_endpoints(served: tuple) -> None:
    client, data_dir = served
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/rank", "/rank_catalog", "/classify", "/feedback", "/compare"} <= set(endpoints)

    table, download, status = client.predict(
        context=CONTEXT, file=handle_file(CSV), pasted="", item_column="item", top_k=4, api_name="/rank"
    )
    assert table["headers"][:3] == RANK_HEADERS[:3] and set(RANK_HEADERS) <= set(table["headers"])
    assert [row[1] for row in table["data"]] == [1, 2, 3, 4]
    assert pd.read_csv(download)[ITEM].tolist() == [row[2] for row in table["data"]]

    status = client.predict(marks=[False, True, False, False], api_name="/feedback")  # the second item marked
    assert "Saved 1 of 4 items as clicked" in status
    clicks = FeedbackStore(data_dir).read()
    assert clicks["clicked"].tolist() == [0, 1, 0, 0]

    probability, label = client.predict(context=CONTEXT, item="oakland fire", api_name="/classify")
    assert 0 <= probability <= 1 and label in ("clicked", "not clicked")

    base, tuned, outcome = client.predict(
        context="apple", file=None, pasted="a\nb\nc", item_column="item", api_name="/compare"
    )
    assert len(base["data"]) == len(tuned["data"]) == 3 and outcome == ""  # pasted lines carry no real clicks


@pytest.mark.slow
def test_api_ranks_the_catalog_and_takes_feedback_on_it(
    served: tuple, reversed_scorer: Scorer, catalog_items: pd.DataFrame
) -> None:
    client, _ = served
    table, download, status = client.predict(context=CONTEXT, top_k=4, api_name="/rank_catalog")
    assert table["headers"] == [*RANK_HEADERS, "entities"]
    assert [row[1] for row in table["data"]] == [1, 2, 3, 4]
    whole = rank_candidates(reversed_scorer, CONTEXT, catalog_items, top_k=4)  # the served model, scale < 0
    assert [row[2] for row in table["data"]] == whole[ITEM].tolist()
    assert f"Ranked the catalog's {len(catalog_items)} items" in status
    assert pd.read_csv(download)[ITEM].tolist() == [row[2] for row in table["data"]]
    assert "Saved 1 of 4 items as clicked" in client.predict(marks=[True, False, False, False], api_name="/feedback")
    with pytest.raises(Exception, match="Enter the context"):
        client.predict(context="", top_k=4, api_name="/rank_catalog")


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


@pytest.mark.slow
def test_api_feedback_only_marks_the_list_this_session_ranked(served: tuple) -> None:
    client, data_dir = served
    before = FeedbackStore(data_dir).summary()
    fresh = Client(client.src, verbose=False)  # a new session, which ranked nothing
    with pytest.raises(Exception, match="Rank a list first"):
        fresh.predict(marks=[True, False, False], api_name="/feedback")
    fresh.predict(context=CONTEXT, file=handle_file(CSV), pasted="", item_column="item", top_k=3, api_name="/rank")
    with pytest.raises(Exception, match="marks do not match the 3 items this list was ranked with"):
        fresh.predict(marks=[True, False, False, False], api_name="/feedback")  # one more than this session was shown
    assert FeedbackStore(data_dir).summary() == before


def test_the_page_and_the_api_hold_no_server_paths_and_no_feedback_export(served: tuple) -> None:
    client, data_dir = served
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert "/export_feedback" not in endpoints  # browsing stored feedback is off unless the operator allows it
    config = urllib.request.urlopen(f"{client.src.rstrip('/')}/config", timeout=10).read().decode()
    info = json.dumps(client.view_api(print_info=False, return_format="dict"))
    for text in (config, info):
        assert str(data_dir) not in text
        assert str(ROOT) not in text


def test_an_evaluation_has_its_own_slot_and_never_queues_ranking(
    scorer: Scorer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    demo = build_demo(ServedModels(scorer, model_dir=str(tiny_model_dir)), tmp_path, limits=LIMITS)
    slots = {fn.api_name: (fn.concurrency_id, fn.concurrency_limit) for fn in demo.fns.values() if fn.api_name}
    assert slots["rank"] == slots["rank_catalog"] == slots["classify"] == slots["compare"] == ("model", 1)
    assert slots["evaluate"][0] != "model" and slots["evaluate"][1] == 1


def test_the_model_card_on_the_page_names_no_path_of_this_machine(
    scorer: Scorer, trained_model_dir: Path, tiny_model_dir: Path, clicks_path: Path, tmp_path: Path
) -> None:
    tuned = Scorer(scorer.model, scorer.tokenizer, ModelMetadata.load(trained_model_dir))
    shown = make_handlers(ServedModels(tuned, scorer, model_dir=str(trained_model_dir)), tmp_path, None).model_card()
    assert trained_model_dir.name in shown and clicks_path.name in shown  # named, as a visitor may read them
    for path in (trained_model_dir, tiny_model_dir, clicks_path.parent, ROOT):
        assert str(path) not in shown


def test_the_model_tab_says_what_the_learning_curve_says_of_its_own_log(handlers: Handlers, tmp_path: Path) -> None:
    curve, chart = tmp_path / "curve.json", tmp_path / "curve.png"
    auc = {"fine_tuned": 0.62, "zero_shot": 0.60, "popularity": 0.55}
    points = [{"log": "movielens", "seed": 0, "fraction": 1.0, "clicks": 9, "users": 1, "auc": auc}]
    curve.write_text(json.dumps({"points": points}))
    chart.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert handlers.learning_curve(curve, chart) is None  # the curve has no point of the served log (Bing News)
    points.append({**points[0], "log": handlers.log.key, "clicks": 1200, "users": 30})
    curve.write_text(json.dumps({"points": points}))
    sentence, shown = handlers.learning_curve(curve, chart)
    assert shown == chart and sentence.startswith("On ")
    assert " held-out users (1 seed), the fine-tuned model " in sentence
    assert handlers.log.name in sentence and "from 1,200 training clicks (30 users) on" in sentence
    chart.unlink()
    assert handlers.learning_curve(curve, chart) is None  # no chart, no curve shown


@pytest.mark.parametrize(
    "text",
    ['{"points": [{"log": "bing_news"', '{"points": [{"log": "bing_news", "seed": 1}]}', "[1, 2]", '{"points": 3}'],
)
def test_a_broken_learning_curve_file_is_left_off_with_a_warning_naming_it(
    handlers: Handlers, tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    curve, chart = tmp_path / "curve.json", tmp_path / "curve.png"
    curve.write_text(text.replace("bing_news", handlers.log.key))
    chart.write_bytes(b"\x89PNG\r\n\x1a\n")
    with caplog.at_level(logging.WARNING):
        assert handlers.learning_curve(curve, chart) is None
    assert str(curve) in caplog.text and "make curve" in caplog.text
