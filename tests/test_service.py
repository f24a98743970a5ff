"""Serving without Gradio: the served models, request limits, candidate input, feedback, evaluations."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import ITEM, ITEM_ID, MARK, RANK
from recsys.defaults import BUNDLED_LOGS, EXAMPLES_DIR, HELD_OUT_FILES, TRAIN_FILE, VALID_FILE
from recsys.errors import ContractError, UserError
from recsys.feedback.ranked_lists import RankedList
from recsys.feedback.store import FeedbackStore
from recsys.model.artifact import DEFAULT_MODEL, ModelMetadata
from recsys.scoring.catalog import build_index
from recsys.scoring.loading import load_scorer
from recsys.scoring.ranking import rank_candidates
from recsys.scoring.scorer import Scorer
from recsys.serving.evaluations import Evaluations, own_tokenizer
from recsys.serving.inputs import blend_weights, check_text, check_top_k, inspect_candidate_file, read_candidate_input
from recsys.serving.served import retrain_from
from recsys.serving.service import InputError, ServedModels, load_catalog, load_served_models, rank_catalog
from recsys.serving.settings import Limits
from recsys.serving.shown_lists import ranked_list, save_marks

LIMITS = Limits(max_items=20, max_upload_mb=0.01, max_text_chars=2000)
BING_EXAMPLES = EXAMPLES_DIR / "bing_news"
EXAMPLE = json.loads((BING_EXAMPLES / "examples.json").read_text())["rank"][0]  # a .csv with item_id and features
CSV = BING_EXAMPLES / EXAMPLE["file"]
ITEMS = ["red shoes", "blue hat", "green scarf"]


@pytest.fixture(scope="module")
def scorer(tiny_model_dir: Path) -> Scorer:
    return load_scorer(str(tiny_model_dir))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


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


# -- requests ------------------------------------------------------------------------------------------------


def test_top_k_is_a_whole_number_from_1_to_max_items_or_none_for_all() -> None:
    assert (check_top_k(None, LIMITS), check_top_k(3.0, LIMITS), check_top_k(20, LIMITS)) == (None, 3, 20)
    with pytest.raises(InputError, match="Top k must be 1 or more"):
        check_top_k(0, LIMITS)
    with pytest.raises(InputError, match=r"Top k is at most 20 \(MAX_ITEMS\)"):
        check_top_k(21, LIMITS)


def test_check_text_strips_and_keeps_text_within_the_limit() -> None:
    assert check_text("  nba playoffs \n", "context", LIMITS) == "nba playoffs"
    assert check_text("x" * 2000, "item", LIMITS) == "x" * 2000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "Enter the context."),
        ("", "Enter the context."),
        (" \n\t", "Enter the context."),
        ("x" * 2001, r"The context has 2001 characters, more than the limit of 2000 \(MAX_TEXT_CHARS\); shorten it"),
    ],
)
def test_check_text_refuses_empty_or_long_text(text: str | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_text(text, "context", LIMITS)


def test_pasted_lines_are_the_items_and_their_source() -> None:
    candidates, source = read_candidate_input(None, "new iphone released\n\n nba finals \n", "item", LIMITS)
    assert candidates[ITEM].tolist() == ["new iphone released", "nba finals"]
    assert source == "the pasted list"


@pytest.mark.parametrize(
    ("pasted", "error", "message"),
    [
        ("", InputError, r"No items: upload a file \(.csv, .tsv, .jsonl, .parquet, .txt\) or paste items"),
        ("   \n  ", InputError, "No items"),
        ("\n".join(f"item {i}" for i in range(21)), ContractError, "21 items, more than the limit of 20"),
        ("short\n" + "x" * 2001, ContractError, "the pasted list: item 2 is longer than 2000 characters"),
    ],
)
def test_pasted_lists_are_refused_when_empty_or_over_a_limit(pasted: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        read_candidate_input(None, pasted, "item", LIMITS)


def test_a_file_and_pasted_items_together_are_refused() -> None:
    with pytest.raises(InputError, match="either as a file or pasted, not both"):
        read_candidate_input(str(CSV), "pasted item", "item", Limits())


def test_an_uploaded_file_keeps_its_columns_and_is_named_by_its_file_name() -> None:
    candidates, source = read_candidate_input(str(CSV), "", "item", Limits())
    assert source == CSV.name
    expected = pd.read_csv(CSV, dtype=str)
    assert candidates[ITEM].tolist() == expected[ITEM].tolist()
    assert candidates.columns.tolist() == expected.columns.tolist()
    # A blank item column means the default one.
    assert read_candidate_input(str(CSV), "", " ", Limits())[0][ITEM].tolist() == expected[ITEM].tolist()


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_each_tabular_format_is_accepted(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({ITEM_ID: ["n0", "n1", "n2"], ITEM: ITEMS, "price": [30, 10, 20], "colour": ["r", "b", "g"]})
    path = tmp_path / f"list{suffix}"
    if suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    candidates, source = read_candidate_input(str(path), "", "item", Limits())
    assert source == path.name
    assert candidates[ITEM].tolist() == ITEMS
    assert candidates[ITEM_ID].tolist() == ["n0", "n1", "n2"]
    assert pd.to_numeric(candidates["price"]).tolist() == [30, 10, 20]
    assert set(candidates.columns) == {ITEM_ID, ITEM, "price", "colour"}


def test_text_lines_and_a_picked_item_column(tmp_path: Path) -> None:
    text = write(tmp_path / "list.txt", "first item\n\n  second item  \n")
    assert read_candidate_input(str(text), "", "item", LIMITS)[0][ITEM].tolist() == ["first item", "second item"]
    table = write(tmp_path / "titles.csv", "title,price\nred shoes,10\nblue hat,5\n")
    candidates, _ = read_candidate_input(str(table), "", "title", LIMITS)
    assert candidates[ITEM].tolist() == ["red shoes", "blue hat"] and "title" not in candidates.columns
    assert candidates["price"].tolist() == ["10", "5"]


def test_a_missing_item_column_names_what_is_missing_and_hides_the_upload_path(tmp_path: Path) -> None:
    no_item = write(tmp_path / "titles.csv", "title,price\nred shoes,10\n")
    message = r"titles\.csv: missing required column\(s\) item; found title, price; rename or add"
    with pytest.raises(ContractError, match=message) as err:
        read_candidate_input(str(no_item), "", "item", LIMITS)
    assert err.value.missing == (ITEM,) and err.value.source == "titles.csv"
    assert str(tmp_path) not in str(err.value)  # the user knows the file by its name, not the server's path
    with pytest.raises(ContractError, match=r"missing required column\(s\) headline") as err:
        read_candidate_input(str(no_item), "", "headline", LIMITS)
    assert err.value.missing == ("headline",)


def test_bad_files_are_refused_with_what_to_fix(tmp_path: Path) -> None:
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    with pytest.raises(ContractError, match=r"photo\.csv: this looks like a binary file"):
        read_candidate_input(str(binary), "", "item", LIMITS)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("item\ncrème brûlée\n".encode("latin-1"))
    with pytest.raises(ContractError, match="not UTF-8 text"):
        read_candidate_input(str(latin), "", "item", LIMITS)
    sheet = write(tmp_path / "list.xlsx", "not a spreadsheet")
    with pytest.raises(ContractError, match=re.escape("unknown file type '.xlsx'")):
        read_candidate_input(str(sheet), "", "item", LIMITS)
    not_parquet = write(tmp_path / "list.parquet", "item\nred shoes\n")
    with pytest.raises(ContractError, match=r"list\.parquet: could not be read as parquet"):
        read_candidate_input(str(not_parquet), "", "item", LIMITS)


def test_uploads_are_refused_over_a_limit(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gone\.csv: the upload did not arrive"):
        read_candidate_input(str(tmp_path / "gone.csv"), "", "item", LIMITS)
    big = write(tmp_path / "big.txt", "an item\n" * 2000)
    with pytest.raises(InputError, match=r"big\.txt is 0\.02 MB, more than the limit of 0\.01 MB \(MAX_UPLOAD_MB\)"):
        read_candidate_input(str(big), "", "item", LIMITS)
    many = write(tmp_path / "many.txt", "\n".join(f"item {i}" for i in range(21)))
    with pytest.raises(ContractError, match=r"many\.txt: 21 items, more than the limit of 20"):
        read_candidate_input(str(many), "", "item", LIMITS)
    long = write(tmp_path / "long.csv", "item\nshort\n" + "x" * 2001 + "\n")
    with pytest.raises(ContractError, match=r"long\.csv: item 2 is longer than 2000 characters") as err:
        read_candidate_input(str(long), "", "item", LIMITS)
    assert err.value.rows == (2,)


def test_the_ranked_table_keeps_at_most_max_extra_columns(tmp_path: Path) -> None:
    def wide(columns: int) -> Path:
        header = "item,item_id," + ",".join(f"c{i}" for i in range(columns))
        return write(tmp_path / f"wide{columns}.csv", header + "\nshoes,s1" + ",1" * columns + "\n")

    assert len(read_candidate_input(str(wide(64)), "", "item", Limits())[0].columns) == 66  # item and item_id beside
    with pytest.raises(InputError, match=r"^wide65\.csv has 65 columns besides item, item_id and clicked; .* 64\."):
        read_candidate_input(str(wide(65)), "", "item", Limits())
    message = (  # the one message of the rule, for an upload, while it is read or after, and for a catalog
        "wide2.csv has 2 columns besides item, item_id and clicked; the ranked table keeps at most 1. "
        "Drop the columns you don't need and upload it again."
    )
    with pytest.raises(InputError, match=f"^{re.escape(message)}$"):
        read_candidate_input(str(wide(2)), "", "item", Limits(max_extra_columns=1))


def test_inspecting_an_upload_offers_text_columns_and_numeric_features(tmp_path: Path) -> None:
    text, preselected, numeric = inspect_candidate_file(CSV, Limits())
    assert preselected == ITEM and ITEM in text and "popularity" not in text
    assert numeric == ["popularity"]
    shop = write(tmp_path / "shop.csv", "title,price\nred shoes,30\n")
    assert inspect_candidate_file(shop, LIMITS) == (["title"], None, ["price"])
    numbers = write(tmp_path / "numbers.csv", "a,b\n1,2\n")
    assert inspect_candidate_file(numbers, LIMITS) == (["a", "b"], None, ["a", "b"])  # every column, when all are
    with pytest.raises(InputError, match="MAX_UPLOAD_MB"):
        inspect_candidate_file(write(tmp_path / "big.csv", "item\n" + "an item\n" * 2000), LIMITS)


# -- blending ------------------------------------------------------------------------------------------------


def test_blend_weights_leave_out_blank_rows_and_zero_weights() -> None:
    assert blend_weights(None) == {} and blend_weights(pd.DataFrame(columns=["feature", "weight"])) == {}
    table = pd.DataFrame(
        {
            "feature": ["price", " popularity ", "age", "", None, "views", "clicks"],
            "weight": [-1, "0.5", 0, 3, 2, None, " "],
        }
    )
    assert blend_weights(table) == {"price": -1.0, "popularity": 0.5}
    # Gradio's frame of the weights table: a cleared cell is NaN in its numeric or string column.
    cleared = pd.DataFrame({"feature": ["price", "age", None], "weight": [1.0, np.nan, 2.0]})
    assert blend_weights(cleared) == {"price": 1.0}


def test_blend_weights_refuse_a_weight_that_is_not_a_number_and_leave_its_range_to_the_ranking() -> None:
    with pytest.raises(InputError, match=r"^The weight of 'price' is 'lots'; give a number such as 0.5 or -1$"):
        blend_weights(pd.DataFrame({"feature": ["price"], "weight": ["lots"]}))
    # recsys.scoring.ranking.check_weights refuses it when the list is ranked (test_ranking.py)
    assert blend_weights(pd.DataFrame({"feature": ["price"], "weight": [np.inf]})) == {"price": np.inf}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"feature": ["price"], "weight": [[1, 2]]}, r"a list or an object in the row \('price', \[1, 2\]\)"),
        ({"feature": [{"a": 1}], "weight": [1]}, "a list or an object"),
        ({"feature": ["price", "age", " price"], "weight": [1, 2, 0]}, "names 'price' more than once"),
    ],
)
def test_blend_weights_refuse_lists_objects_and_a_feature_given_twice(table: dict, message: str) -> None:
    """A list where a weight belongs was a ValueError ('upstream exception' to a script); a feature given twice
    silently took its last weight."""
    with pytest.raises(InputError, match=message):
        blend_weights(pd.DataFrame(table))


# -- feedback ------------------------------------------------------------------------------------------------


def ranked_table(marks: list[bool]) -> pd.DataFrame:
    """A ranked list as the Rank tab shows it: the mark column first, ranks from 1."""
    n = len(marks)
    return pd.DataFrame(
        {
            MARK: marks,
            RANK: list(range(1, n + 1)),
            ITEM_ID: [f"id{i}" for i in range(n)],
            ITEM: [f"item {i}" for i in range(n)],
            "score": np.linspace(1, 0, n),
        }
    )


def shown(n: int, context: str = "nba playoffs") -> RankedList:
    """The server's record of a list of ``n`` items ranked for ``context`` by model v1, as the Rank handler keeps it."""
    return ranked_list(context, ranked_table([False] * n), "v1")


def test_save_marks_stores_the_list_and_saving_it_again_replaces_its_marks(tmp_path: Path) -> None:
    store, ranked = FeedbackStore(tmp_path), shown(3)
    assert save_marks(store, [True, False, True], ranked) == ranked.list_id
    rows = store.read()
    assert rows[[ITEM, ITEM_ID, "position", "clicked"]].values.tolist() == [
        ["item 0", "id0", 1, 1],
        ["item 1", "id1", 2, 0],
        ["item 2", "id2", 3, 1],
    ]
    assert set(rows["context"]) == {"nba playoffs"} and set(rows["model_version"]) == {"v1"}
    save_marks(store, [False, True, False], ranked)
    assert store.summary() == {"lists": 1, "rows": 3, "clicks": 1}
    assert store.read()["clicked"].tolist() == [0, 1, 0]


def test_save_marks_needs_the_list_this_session_ranked(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    with pytest.raises(InputError, match="Rank a list first"):
        save_marks(store, [True], None)  # a forged call without a ranking
    for marks in ([True] * 4, [True, False], [], None, "true", {"0": True}):  # more, fewer, none, no list of marks
        with pytest.raises(UserError, match="marks do not match the 3 items this list was ranked with: rank again"):
            save_marks(store, marks, shown(3))
    assert store.summary()["rows"] == 0


def test_save_marks_refuses_a_list_without_marks(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    with pytest.raises(ContractError, match="the ranked list: no item is marked; mark the items you would click"):
        save_marks(store, [False, False], shown(2))
    with pytest.raises(ContractError, match=r"column 'mark' must be 0 or 1 .*'maybe'") as err:
        save_marks(store, [True, "maybe", False], shown(3))
    assert err.value.column == MARK
    assert store.summary()["rows"] == 0


# -- downloads -----------------------------------------------------------------------------------------------


# -- evaluations ---------------------------------------------------------------------------------------------


def test_evaluations_offer_the_configured_log_then_the_bundled_splits(scorer: Scorer, tmp_path: Path) -> None:
    bundled = [f.name for f in (*HELD_OUT_FILES, VALID_FILE) if f.is_file()]  # names only: no server path
    models = ServedModels(scorer)
    assert Evaluations(models, tmp_path, "/no/such/eval.csv", None).files == bundled
    assert Evaluations(models, tmp_path, str(HELD_OUT_FILES[0]), None).files == bundled  # never twice
    empty = Evaluations(models, tmp_path, None, None)
    assert empty.files == [] and empty.cached() is None
    with pytest.raises(InputError, match="No click log to evaluate on: set EVAL_FILE"):
        empty.run(None)


@pytest.mark.slow
def test_evaluations_run_and_are_cached_per_model_version(
    scorer: Scorer, tmp_path: Path, clicks_path: Path, tiny_model_dir: Path, trained_model_dir: Path
) -> None:
    models = ServedModels(scorer, model_dir=str(tiny_model_dir))
    evaluations = Evaluations(models, tmp_path, str(clicks_path), str(clicks_path))
    assert evaluations.files[0] == clicks_path.name and evaluations.cached() is None
    steps: list[tuple[int, int, str]] = []
    evaluation = evaluations.run(None, lambda *step: steps.append(step))
    assert evaluation.data_file == clicks_path.name
    assert set(evaluation.baselines) == {"random", "popularity", "tfidf", "bm25", "zero_shot"}
    assert len(evaluation.labels) == len(evaluation.scores) == len(evaluation.probabilities) == 141
    assert [done for done, _, _ in steps] == sorted(done for done, _, _ in steps) and steps[-1][0] == steps[-1][1]

    # A restart over the same model finds it; the cached one has the per-row scores for the plots.
    cached = Evaluations(models, tmp_path, str(clicks_path), str(clicks_path)).cached()
    assert cached is not None and cached.to_json() == evaluation.to_json()
    assert np.allclose(cached.scores, evaluation.scores) and np.array_equal(cached.labels, evaluation.labels)
    # Another model version (a retrained folder) has none yet.
    tuned = Scorer(scorer.model, scorer.tokenizer, ModelMetadata.load(trained_model_dir))
    retrained = ServedModels(tuned, scorer, model_dir=str(trained_model_dir))
    assert retrained.version != models.version
    assert Evaluations(retrained, tmp_path, str(clicks_path), str(clicks_path)).cached() is None


def test_evaluations_refuse_a_file_that_is_not_offered(scorer: Scorer, tmp_path: Path, clicks_path: Path) -> None:
    evaluations = Evaluations(ServedModels(scorer), tmp_path, str(clicks_path), None)
    for path in ("/etc/passwd", str(TRAIN_FILE)):  # a secret, and a real click log the app does not offer
        with pytest.raises(InputError, match=r"Pick one of the app's click logs: clicks\.csv, test_users\.csv"):
            evaluations.run(path)
    assert not (tmp_path / "evaluations").exists()  # nothing was evaluated


@pytest.mark.slow
def test_a_cached_evaluation_that_does_not_read_back_is_evaluated_again(
    scorer: Scorer, tmp_path: Path, clicks_path: Path, tiny_model_dir: Path
) -> None:
    models = ServedModels(scorer, model_dir=str(tiny_model_dir))
    evaluations = Evaluations(models, tmp_path, str(clicks_path), str(clicks_path))
    evaluations.run(None)
    (cache,) = (tmp_path / "evaluations").rglob("*.json")
    for damaged in ('{"eval_file": "clicks.csv", "metrics": {}}', '{"auc": 0.5', ""):  # another version, cut short
        cache.write_text(damaged, encoding="utf-8")
        assert evaluations.cached() is None
    assert not list(cache.parent.glob(".*partial"))  # saving leaves no temporary file behind


def test_an_evaluation_run_before_is_read_back_not_run_again(
    scorer: Scorer, tmp_path: Path, clicks_path: Path, tiny_model_dir: Path
) -> None:
    evaluations = Evaluations(ServedModels(scorer, model_dir=str(tiny_model_dir)), tmp_path, str(clicks_path), None)
    first = evaluations.run(clicks_path.name)
    (cache,) = (tmp_path / "evaluations").rglob("*.json")
    written = cache.stat().st_mtime_ns
    time.sleep(0.01)
    again = evaluations.run(clicks_path.name)
    assert cache.stat().st_mtime_ns == written  # not written again: nothing was run
    assert again.to_json(per_row=True) == first.to_json(per_row=True)


def test_an_evaluation_scores_with_its_own_tokenizer(scorer: Scorer) -> None:
    copy = own_tokenizer(scorer)
    assert copy.tokenizer is not scorer.tokenizer and copy.model is scorer.model  # no second model in memory
    pairs = [("nba playoffs", "lakers win game 7"), ("stock market", "pasta recipe")]
    assert np.array_equal(copy.score_pairs(pairs), scorer.score_pairs(pairs))
