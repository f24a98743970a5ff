"""The click-log and candidate contract: every reader, every broken input, one error each."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.contract import (
    CLICKED,
    GROUP,
    ITEM,
    ITEM_ID,
    POSITION,
    QUERY,
    ContractError,
    read_candidates,
    read_clicks,
    validate_clicks,
)

CLICK_LOG = pd.DataFrame(
    {
        GROUP: ["u1", "u1", "u1", "u2", "u2"],
        QUERY: ["nba playoffs", "nba playoffs", "nba playoffs", "stock market", "stock market"],
        ITEM: ["lakers win game 7", "new iphone released", "warriors trade rumours", "dow falls", "pasta recipe"],
        CLICKED: ["1", "0", "0", "1", "0"],
        ITEM_ID: ["n1", "n2", "n3", "n4", "n5"],
        POSITION: ["1", "2", "3", "1", "2"],
    }
)


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` the way a user's tool would save it in the format that ``path`` names."""
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False)
    return path


def write_csv(tmp_path: Path, text: str, name: str = "clicks.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def message_of(error: pytest.ExceptionInfo) -> str:
    return str(error.value)


# Reading: every format gives the same validated frame.


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_every_format_reads_to_the_same_frame(tmp_path: Path, suffix: str) -> None:
    expected = validate_clicks(CLICK_LOG)
    typed = CLICK_LOG.assign(**{CLICKED: CLICK_LOG[CLICKED].astype(int), POSITION: CLICK_LOG[POSITION].astype(int)})
    # Binary and JSON formats keep numbers as numbers; text formats write them as text.
    frame = typed if suffix in (".jsonl", ".parquet") else CLICK_LOG
    clicks = read_clicks(write_table(frame, tmp_path / f"clicks{suffix}"))
    pd.testing.assert_frame_equal(clicks, expected)
    assert clicks[CLICKED].tolist() == [1, 0, 0, 1, 0]
    assert clicks[POSITION].dtype == np.int64


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    clicks = read_clicks(write_table(CLICK_LOG, tmp_path / "CLICKS.CSV"))
    assert len(clicks) == len(CLICK_LOG)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(["true", "false", "True", "FALSE"], [1, 0, 1, 0]), (["1", "0", "yes", "no"], [1, 0, 1, 0])],
)
def test_true_false_labels_are_accepted(tmp_path: Path, raw: list[str], expected: list[int]) -> None:
    frame = pd.DataFrame({QUERY: ["q"] * 4, ITEM: ["a", "b", "c", "d"], CLICKED: raw})
    clicks = read_clicks(write_table(frame, tmp_path / "clicks.csv"))
    assert clicks[CLICKED].tolist() == expected


def test_boolean_labels_from_jsonl_are_accepted(tmp_path: Path) -> None:
    frame = pd.DataFrame({QUERY: ["q", "q"], ITEM: ["a", "b"], CLICKED: [True, False]})
    clicks = read_clicks(write_table(frame, tmp_path / "clicks.jsonl"))
    assert clicks[CLICKED].tolist() == [1, 0]


def test_group_defaults_to_query(tmp_path: Path) -> None:
    clicks = read_clicks(write_table(CLICK_LOG.drop(columns=[GROUP]), tmp_path / "clicks.csv"))
    assert clicks[GROUP].tolist() == clicks[QUERY].tolist()


def test_rows_are_never_dropped(tmp_path: Path) -> None:
    # Exact duplicates and a group with no click are data, not noise: the reader keeps them all, in order.
    frame = pd.concat([CLICK_LOG, CLICK_LOG.iloc[[0, 0]], CLICK_LOG.iloc[[4]].assign(**{GROUP: "u3"})])
    clicks = read_clicks(write_table(frame, tmp_path / "clicks.csv"))
    assert len(clicks) == len(frame)
    assert clicks[ITEM].tolist() == frame[ITEM].tolist()
    assert clicks.index.tolist() == list(range(len(frame)))


def test_real_click_log_reads_whole(clicks_path: Path) -> None:
    clicks = read_clicks(clicks_path)
    assert len(clicks) == len(pd.read_csv(clicks_path))
    assert set(clicks[CLICKED]) == {0, 1}


def test_extra_columns_are_kept(tmp_path: Path) -> None:
    clicks = read_clicks(write_table(CLICK_LOG.assign(category="sports"), tmp_path / "clicks.csv"))
    assert clicks["category"].tolist() == ["sports"] * len(CLICK_LOG)


# Broken input: one error each, naming the file, the column and the rows.


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = write_table(CLICK_LOG.drop(columns=[CLICKED, ITEM]), tmp_path / "clicks.csv")
    with pytest.raises(ContractError, match=re.escape(str(path))) as error:
        read_clicks(path)
    assert re.search(r"missing required column\(s\) item, clicked", message_of(error))
    assert "found group, query" in message_of(error)


def test_empty_text_names_column_and_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "query,item,clicked\nnba,lakers win,1\nnba,,0\nnba,   ,0\n")
    with pytest.raises(ContractError, match=r"column 'item' is empty at row\(s\) 2, 3") as error:
        read_clicks(path)
    assert str(path) in message_of(error)


def test_empty_query_names_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "query,item,clicked\n,lakers win,1\n")
    with pytest.raises(ContractError, match=r"column 'query' is empty at row\(s\) 1"):
        read_clicks(path)


def test_nan_labels_name_column_and_rows(tmp_path: Path) -> None:
    frame = pd.DataFrame({QUERY: ["q", "q", "q"], ITEM: ["a", "b", "c"], CLICKED: [1.0, np.nan, 0.0]})
    path = write_table(frame, tmp_path / "clicks.parquet")
    with pytest.raises(ContractError, match=r"column 'clicked' must be 0 or 1 .* at row\(s\) 2$") as error:
        read_clicks(path)
    assert str(path) in message_of(error)


def test_blank_labels_in_csv_are_errors(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "query,item,clicked\nq,a,1\nq,b,\n")
    with pytest.raises(ContractError, match=r"'clicked'.* at row\(s\) 2"):
        read_clicks(path)


def test_labels_other_than_0_1_name_values_and_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "query,item,clicked\nq,a,1\nq,b,2\nq,c,0\nq,d,clicked\n")
    with pytest.raises(ContractError, match=r"bad value\(s\) '2', 'clicked' at row\(s\) 2, 4") as error:
        read_clicks(path)
    assert str(path) in message_of(error)


def test_many_bad_rows_are_summarised(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "query,item,clicked\n" + "q,a,7\n" * 8)
    with pytest.raises(ContractError, match=r"row\(s\) 1, 2, 3, 4, 5 and 3 more"):
        read_clicks(path)


def test_bad_position_names_rows(tmp_path: Path) -> None:
    path = write_table(CLICK_LOG.assign(**{POSITION: ["1", "0", "2.5", "x", "3"]}), tmp_path / "clicks.csv")
    with pytest.raises(ContractError, match=r"'position' must be a 1-based whole number at row\(s\) 2, 3, 4$"):
        read_clicks(path)


@pytest.mark.parametrize("name", ["clicks.xlsx", "clicks"])
def test_unknown_extension_names_file_and_fix(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("query,item,clicked\nq,a,1\n", encoding="utf-8")
    with pytest.raises(ContractError, match=re.escape(str(path)) + r": unknown extension .*\.csv, \.tsv"):
        read_clicks(path)


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_non_utf8_file_names_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"clicks{suffix}"
    path.write_bytes(
        "query,item,clicked\ncafé,crème brûlée,1\n".replace(",", "\t" if suffix == ".tsv" else ",").encode("latin-1")
    )
    with pytest.raises(ContractError, match=re.escape(str(path)) + r": not UTF-8 text .*re-save it as UTF-8"):
        read_clicks(path)


def test_empty_file_names_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "")
    with pytest.raises(ContractError, match=re.escape(str(path)) + r": the file is empty"):
        read_clicks(path)


def test_header_only_file_has_no_data_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "query,item,clicked\n")
    with pytest.raises(ContractError, match=re.escape(str(path)) + r": the file has no data rows"):
        read_clicks(path)


def test_missing_file_names_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"
    with pytest.raises(ContractError, match=re.escape(str(path)) + r": no such file"):
        read_clicks(path)


def test_contract_error_is_a_value_error() -> None:
    assert issubclass(ContractError, ValueError)


# Candidate lists.


def test_read_candidates_txt_one_item_per_line(tmp_path: Path) -> None:
    path = tmp_path / "items.txt"
    path.write_text("lakers win game 7\n\n  new iphone released  \n", encoding="utf-8")
    candidates = read_candidates(path)
    assert candidates[ITEM].tolist() == ["lakers win game 7", "new iphone released"]


def test_read_candidates_txt_without_items(tmp_path: Path) -> None:
    path = tmp_path / "items.txt"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ContractError, match=re.escape(str(path)) + r": no items"):
        read_candidates(path)


def test_read_candidates_txt_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "items.txt"
    path.write_bytes("crème brûlée\n".encode("latin-1"))
    with pytest.raises(ContractError, match=re.escape(str(path)) + r": not UTF-8"):
        read_candidates(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_read_candidates_with_a_chosen_item_column(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"title": ["lakers win", "iphone released"], "price": ["1", "2"]})
    candidates = read_candidates(write_table(frame, tmp_path / f"items{suffix}"), item_column="title")
    assert candidates[ITEM].tolist() == ["lakers win", "iphone released"]
    assert "title" not in candidates.columns
    assert candidates["price"].tolist() == ["1", "2"]


def test_read_candidates_missing_item_column(tmp_path: Path) -> None:
    path = write_table(pd.DataFrame({"title": ["a"]}), tmp_path / "items.csv")
    with pytest.raises(ContractError, match=re.escape(str(path)) + r": missing required column\(s\) item; found title"):
        read_candidates(path)


def test_read_candidates_empty_item(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "title,price\nlakers win,1\n  ,2\n", name="items.csv")
    with pytest.raises(ContractError, match=r"column 'title' is empty at row\(s\) 2"):
        read_candidates(path, item_column="title")
