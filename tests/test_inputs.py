"""Candidate input and request checks of the serving layer (recsys.serving.inputs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import ITEM, ITEM_ID
from recsys.defaults import EXAMPLES_DIR
from recsys.errors import ContractError
from recsys.serving.inputs import blend_weights, check_text, check_top_k, inspect_candidate_file, read_candidate_input
from recsys.serving.service import InputError
from recsys.serving.settings import Limits

LIMITS = Limits(max_items=20, max_upload_mb=0.01, max_text_chars=2000)
BING_EXAMPLES = EXAMPLES_DIR / "bing_news"
EXAMPLE = json.loads((BING_EXAMPLES / "examples.json").read_text())["rank"][0]  # a .csv with item_id and features
CSV = BING_EXAMPLES / EXAMPLE["file"]
ITEMS = ["red shoes", "blue hat", "green scarf"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


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
