"""The click-log and candidate contract: every reader, every broken input, one error each."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.candidates import (
    CANDIDATE_SUFFIXES,
    pasted_candidates,
    read_candidate_table,
    read_candidates,
    validate_candidates,
)
from recsys.data.contract import (
    CLICKED,
    GROUP,
    ITEM,
    ITEM_ID,
    MARK,
    POSITION,
    QUERY,
    RANK,
    ground_truth,
    item_ids,
    numeric_columns,
    read_clicks,
    validate_clicks,
    validate_marks,
    validate_pairs,
)
from recsys.errors import ContractError

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
    with pytest.raises(
        ContractError,
        match=r"'position' must be a 1-based whole number at row\(s\) 2, 3, 4; give whole numbers from 1 to",
    ):
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


# The error's fields: what a caller reads instead of parsing the message.


def test_contract_error_reads_source_problem_and_fix() -> None:
    error = ContractError("clicks.csv", "column 'item' is empty at row(s) 2", "fill it in", column=ITEM, rows=(2,))
    assert str(error) == "clicks.csv: column 'item' is empty at row(s) 2; fill it in"
    assert (error.source, error.problem, error.fix) == (
        "clicks.csv",
        "column 'item' is empty at row(s) 2",
        "fill it in",
    )
    assert (error.column, error.rows, error.missing) == (ITEM, (2,), ())
    with pytest.raises(ValueError, match=r"^clicks\.csv: column 'item' is empty at row\(s\) 2; fill it in$"):
        raise error


def test_contract_error_without_a_fix_is_source_and_problem() -> None:
    error = ContractError("items.txt", "no such file")
    assert str(error) == "items.txt: no such file"
    assert (error.column, error.rows, error.missing) == (None, (), ())


def test_missing_columns_are_in_the_errors_fields(tmp_path: Path) -> None:
    path = write_table(CLICK_LOG.drop(columns=[CLICKED, ITEM]), tmp_path / "clicks.csv")
    with pytest.raises(ContractError) as error:
        read_clicks(path)
    assert error.value.source == str(path)
    assert error.value.missing == (ITEM, CLICKED)
    assert error.value.fix == "rename or add the column(s)"


@pytest.mark.parametrize(
    ("text", "column", "rows"),
    [
        ("query,item,clicked\nq,a,1\nq,,0\nq,  ,0\n", ITEM, (2, 3)),
        ("query,item,clicked\nq,a,1\nq,b,2\nq,c,0\nq,d,x\n", CLICKED, (2, 4)),
        ("query,item,clicked,position\nq,a,1,1\nq,b,0,0\nq,c,0,2.5\n", POSITION, (2, 3)),
    ],
)
def test_bad_values_are_in_the_errors_fields(tmp_path: Path, text: str, column: str, rows: tuple[int, ...]) -> None:
    path = write_csv(tmp_path, text)
    with pytest.raises(ContractError) as error:
        read_clicks(path)
    assert (error.value.source, error.value.column, error.value.rows) == (str(path), column, rows)


# Silent coercions: what pandas would quietly rename, stringify or shift is refused, naming the fix.


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("clicks.csv", "query,item,clicked,item\nq,a,1,b\n"),
        ("clicks.tsv", "query\titem\tclicked\titem\nq\ta\t1\tb\n"),
        ("clicks.csv", "query,item,clicked, item \nq,a,1,b\n"),  # the same name once stripped
    ],
)
def test_a_column_name_twice_is_refused_not_renamed(tmp_path: Path, name: str, content: str) -> None:
    path = write_csv(tmp_path, content, name)
    with pytest.raises(ContractError, match=r"the column name\(s\) 'item' appear more than once; rename") as error:
        read_clicks(path)
    assert error.value.column == ITEM


def test_a_jsonl_key_twice_in_one_object_is_refused(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        '{"query": "q", "item": "a", "clicked": 1}\n{"query": "q", "item": "a", "item": "b"}\n',
        "clicks.jsonl",
    )
    with pytest.raises(ContractError, match=r"line 2 has the key\(s\) 'item' more than once") as error:
        read_clicks(path)
    assert error.value.rows == (2,)


def test_a_parquet_column_twice_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "clicks.parquet"
    pq.write_table(pa.table([["q"], ["a"], ["b"], [1]], names=[QUERY, ITEM, ITEM, CLICKED]), path)
    with pytest.raises(ContractError, match=r"the column name\(s\) 'item' appear more than once"):
        read_clicks(path)


@pytest.mark.parametrize("content", ["query,item,clicked\nq,a,1,extra\n", "query,item,clicked\nq,a,1,\n"])
def test_a_row_longer_than_the_header_is_refused_not_shifted(tmp_path: Path, content: str) -> None:
    # pandas would take the first column as an index and shift every other one to the left.
    with pytest.raises(ContractError, match=r"line 2 has 4 fields where the header has 3; give every row") as error:
        read_clicks(write_csv(tmp_path, content))
    assert error.value.rows == (1,)


@pytest.mark.parametrize(
    ("line", "kind"),
    [('["a", "b"]', "a list"), ('{"title": "a"}', "an object"), ("true", "true/false")],
)
def test_structured_jsonl_values_in_a_text_column_are_refused(tmp_path: Path, line: str, kind: str) -> None:
    text = f'{{"query": "q", "item": "plain", "clicked": 1}}\n{{"query": "q", "item": {line}, "clicked": 0}}\n'
    with pytest.raises(
        ContractError, match=rf"column 'item' must hold text, but holds {kind} at row\(s\) 2; make"
    ) as e:
        read_clicks(write_csv(tmp_path, text, "clicks.jsonl"))
    assert (e.value.column, e.value.rows) == (ITEM, (2,))


@pytest.mark.parametrize("column", [QUERY, ITEM, GROUP])
def test_nested_parquet_values_in_a_text_column_are_refused(tmp_path: Path, column: str) -> None:
    frame = CLICK_LOG.assign(**{column: [["a", "b"]] * len(CLICK_LOG)})
    with pytest.raises(ContractError, match=rf"column '{column}' must hold text, but holds a list at row\(s\) 1, 2"):
        read_clicks(write_table(frame, tmp_path / "clicks.parquet"))


def test_a_boolean_column_is_not_text(tmp_path: Path) -> None:
    frame = pd.DataFrame({QUERY: [True, False], ITEM: ["a", "b"], CLICKED: [1, 0]})
    with pytest.raises(ContractError, match=r"column 'query' must hold text, but holds true/false at row\(s\) 1, 2"):
        read_clicks(write_table(frame, tmp_path / "clicks.parquet"))


def test_numbers_in_a_text_column_are_text(tmp_path: Path) -> None:
    text = '{"query": 2.5, "item": 1984, "clicked": 1}\n{"query": 2.5, "item": 1985, "clicked": 0}\n'
    clicks = read_clicks(write_csv(tmp_path, text, "clicks.jsonl"))
    assert clicks[ITEM].tolist() == ["1984", "1985"] and clicks[QUERY].tolist() == ["2.5", "2.5"]


@pytest.mark.parametrize("marker", ["NaN", "nan", "null", "NULL", "None", "<NA>", "#N/A", " n/a "])
def test_missing_value_markers_in_a_text_column_are_empty_not_text(tmp_path: Path, marker: str) -> None:
    path = write_csv(tmp_path, f"query,item,clicked\nq,a,1\nq,{marker},0\n")
    with pytest.raises(
        ContractError, match=rf"column 'item' is empty at row\(s\) 2 \('{marker.strip()}' read as a"
    ) as e:
        read_clicks(path)
    assert (e.value.column, e.value.rows) == (ITEM, (2,))


@pytest.mark.parametrize("value", ["null", "NaN", "Infinity"])
def test_json_null_nan_and_infinity_in_a_text_column_are_empty(tmp_path: Path, value: str) -> None:
    text = f'{{"query": "q", "item": "a", "clicked": 1}}\n{{"query": {value}, "item": "b", "clicked": 0}}\n'
    with pytest.raises(ContractError, match=r"column 'query' is empty at row\(s\) 2"):
        read_clicks(write_csv(tmp_path, text, "clicks.jsonl"))


def test_text_that_merely_contains_a_marker_is_text(tmp_path: Path) -> None:
    clicks = read_clicks(write_csv(tmp_path, "query,item,clicked\nq,none of the above,1\nq,NaNa,0\n"))
    assert clicks[ITEM].tolist() == ["none of the above", "NaNa"]


@pytest.mark.parametrize("position", ["1e30", "-3", "NaN", "inf", "2147483648"])
def test_positions_out_of_range_are_refused(tmp_path: Path, position: str) -> None:
    path = write_csv(tmp_path, f"query,item,clicked,position\nq,a,1,1\nq,b,0,{position}\n")
    with pytest.raises(ContractError, match=r"'position' must be a 1-based whole number at row\(s\) 2; give whole"):
        read_clicks(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("clicks.jsonl", '{"query": "q", "item": "a", "clicked": 1}\n'),
        ("clicks.csv", "query,item,clicked\nq,a,1\n"),
        ("clicks.tsv", "query\titem\tclicked\nq\ta\t1\n"),
    ],
)
def test_a_utf8_byte_order_mark_is_read(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + content.encode("utf-8"))
    clicks = read_clicks(path)
    assert clicks.columns[0] == QUERY and clicks[ITEM].tolist() == ["a"]


def test_a_byte_order_mark_in_a_txt_list_is_not_part_of_the_first_item(tmp_path: Path) -> None:
    path = tmp_path / "items.txt"
    path.write_bytes(b"\xef\xbb\xbfred shoes\nblue hat\n")
    assert read_candidates(path)[ITEM].tolist() == ["red shoes", "blue hat"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".txt"])
def test_the_non_utf8_message_names_the_byte_in_the_file_not_in_a_chunk(tmp_path: Path, suffix: str) -> None:
    # Over 1 MiB of clean rows, a valid two-byte character across the reader's 1 MiB chunk boundary, then latin-1.
    line = {".csv": "q,some item,0\n", ".jsonl": '{"query": "q", "item": "some item", "clicked": 0}\n'}.get(
        suffix, "some item\n"
    )
    head = {".csv": "query,item,clicked\n", ".jsonl": "", ".txt": ""}[suffix].encode()
    body = head + line.encode() * (2**20 // len(line))
    body += b"x" * (2**20 - 1 - len(body) % 2**20) + "é\n".encode()  # é's two bytes straddle the boundary
    bad = len(body) + len(b"q,caf")
    path = tmp_path / f"clicks{suffix}"
    path.write_bytes(body + b"q,caf\xe9,1\n")
    lines = body.count(b"\n") + 1
    reader = read_candidates if suffix == ".txt" else read_clicks
    with pytest.raises(ContractError, match=rf"not UTF-8 text \(byte 0xe9 at offset {bad}, line {lines}: ") as error:
        reader(path)
    assert str(path) in str(error.value) and "re-save it as UTF-8" in str(error.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            '{"query": "q", "item": "a", "clicked": 1}\n{"query": "q", "item": \n',
            r"line 2 is not JSON \(Expecting value",
        ),
        ('["q", "a", 1]\n', r"line 1 is a JSON list, not an object"),
    ],
)
def test_a_jsonl_line_that_is_not_an_object_is_named(tmp_path: Path, content: str, problem: str) -> None:
    with pytest.raises(ContractError, match=problem + r".*one JSON object per line"):
        read_clicks(write_csv(tmp_path, content, "clicks.jsonl"))


def test_the_item_column_cannot_be_another_column_while_an_item_column_exists(tmp_path: Path) -> None:
    path = write_table(pd.DataFrame({QUERY: ["q"], ITEM: ["a"], "title": ["t"]}), tmp_path / "items.csv")
    with pytest.raises(
        ContractError,
        match=r"from column 'query', but the list also has an 'item' column; choose the 'item' column, "
        r"or rename one of the two",
    ) as error:
        read_candidates(path, item_column=QUERY)
    assert error.value.column == QUERY
    assert read_candidates(path)[ITEM].tolist() == ["a"]


def test_structured_item_ids_are_refused(tmp_path: Path) -> None:
    text = '{"item_id": ["n1"], "item": "a"}\n'
    with pytest.raises(ContractError, match=r"column 'item_id' must hold text, but holds a list"):
        read_candidates(write_csv(tmp_path, text, "items.jsonl"))


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


def test_read_candidates_applies_the_limits(tmp_path: Path) -> None:
    path = write_table(pd.DataFrame({ITEM: ["a", "b", "c"]}), tmp_path / "items.csv")
    assert len(read_candidates(path, max_items=3)) == 3
    with pytest.raises(ContractError, match=re.escape(str(path)) + r": 3 items, more than the limit of 2"):
        read_candidates(path, max_items=2)


# A candidate list's ground truth: its real clicks.


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("labels", [[1, 0, 1], ["true", "FALSE", "Yes"], [True, False, True], [1.0, 0.0, 1.0]])
def test_a_clicked_column_is_kept_and_read_as_the_lists_real_clicks(tmp_path: Path, suffix: str, labels: list) -> None:
    frame = pd.DataFrame({ITEM: ["red shoes", "blue hat", "green scarf"], CLICKED: labels})
    candidates = read_candidates(write_table(frame, tmp_path / f"items{suffix}"))
    assert candidates.columns.tolist() == [ITEM, CLICKED]  # an extra column, kept as it is
    truth = ground_truth(candidates)
    assert truth.tolist() == [1, 0, 1] and truth.dtype == np.int64


def test_a_list_without_a_clicked_column_has_no_ground_truth() -> None:
    assert ground_truth(pd.DataFrame({ITEM: ["red shoes"], "clicks": ["3"]})) is None


def test_a_clicked_column_with_a_value_other_than_0_or_1_names_the_rows() -> None:
    frame = pd.DataFrame({ITEM: list("abcde"), CLICKED: ["1", "2", None, "yes", "maybe"]})
    with pytest.raises(
        ContractError, match=r"^items\.csv: column 'clicked' must be 0 or 1 .*at row\(s\) 2, 3, 5; give"
    ) as err:
        ground_truth(frame, "items.csv")
    assert (err.value.column, err.value.rows) == (CLICKED, (2, 3, 5))


def test_numeric_columns_never_offer_the_ground_truth_or_the_item() -> None:
    frame = pd.DataFrame({ITEM_ID: ["1", "2"], ITEM: ["7", "8"], "price": ["1.5", "2"], CLICKED: [1, 0]})
    assert numeric_columns(frame) == ["price"]
    assert numeric_columns(frame, exclude=(ITEM,)) == [ITEM_ID, "price", CLICKED]  # a caller's own choice


# Candidate tables: the file before its item column is checked.


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".txt"])
def test_a_binary_file_in_a_text_format_is_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"photo{suffix}"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10)
    with pytest.raises(ContractError, match=r"^the upload: this looks like a binary file; give UTF-8 text"):
        read_candidate_table(path, source="the upload")


def test_a_candidate_table_keeps_every_column_as_it_is(tmp_path: Path) -> None:
    frame = pd.DataFrame({"title": ["red shoes", "blue hat"], "price": ["10", "12"]})
    table = read_candidate_table(write_table(frame, tmp_path / "items.csv"))
    pd.testing.assert_frame_equal(table, frame)


def test_a_txt_candidate_file_is_one_item_per_line(tmp_path: Path) -> None:
    path = tmp_path / "items.txt"
    path.write_text("  red shoes \n\n\nblue hat\n   \n", encoding="utf-8")
    pd.testing.assert_frame_equal(read_candidate_table(path), pd.DataFrame({ITEM: ["red shoes", "blue hat"]}))


def test_a_parquet_candidate_file_is_accepted(tmp_path: Path) -> None:
    # Parquet is binary (it holds NUL bytes): the binary check is for text formats only.
    frame = pd.DataFrame({ITEM: ["red shoes", "blue hat"], "price": [10.5, 12.0]})
    path = write_table(frame, tmp_path / "items.parquet")
    assert b"\x00" in path.read_bytes()
    pd.testing.assert_frame_equal(read_candidate_table(path), frame)
    assert ".parquet" in CANDIDATE_SUFFIXES


@pytest.mark.parametrize(("name", "shown"), [("items.xlsx", "'.xlsx'"), ("items", "'(none)'")])
def test_an_unknown_candidate_file_type_names_the_accepted_suffixes(tmp_path: Path, name: str, shown: str) -> None:
    path = tmp_path / name
    path.write_text("item\na\n", encoding="utf-8")
    accepted = re.escape(", ".join(CANDIDATE_SUFFIXES))
    with pytest.raises(
        ContractError, match=f"^{re.escape(str(path))}: unknown file type {re.escape(shown)}; give one of {accepted}$"
    ):
        read_candidate_table(path)


def test_a_missing_txt_candidate_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"^items\.txt: no such file$"):
        read_candidate_table(tmp_path / "absent.txt", source="items.txt")


def test_pasted_candidates_are_the_non_blank_lines_stripped() -> None:
    frame = pasted_candidates("\n  red shoes\nblue hat  \n\n \t\ngreen scarf", source="box")
    pd.testing.assert_frame_equal(frame, pd.DataFrame({ITEM: ["red shoes", "blue hat", "green scarf"]}))


@pytest.mark.parametrize("text", ["", "  \n\t\n"])
def test_pasted_candidates_without_items_are_an_error(text: str) -> None:
    with pytest.raises(ContractError, match=r"^the pasted list: no items; write one item per line$"):
        pasted_candidates(text)


# Candidate limits.


def test_validate_candidates_without_limits_takes_any_size() -> None:
    frame = pd.DataFrame({ITEM: ["x" * 5000] * 300})
    assert len(validate_candidates(frame)) == 300


def test_validate_candidates_refuses_more_than_max_items() -> None:
    frame = pd.DataFrame({ITEM: [f"item {n}" for n in range(11)]})
    assert len(validate_candidates(frame, max_items=11)) == 11
    with pytest.raises(ContractError, match=r"^box: 11 items, more than the limit of 10; rank a shorter list$"):
        validate_candidates(frame, source="box", max_items=10)


def test_validate_candidates_names_the_rows_longer_than_max_text_chars() -> None:
    frame = pd.DataFrame({"title": ["short", "longer than five", "fives", "also too long"], "price": [1, 2, 3, 4]})
    with pytest.raises(ContractError, match=r"^box: item 2 is longer than 5 characters; shorten it$") as error:
        validate_candidates(frame, source="box", item_column="title", max_text_chars=5)
    assert (error.value.column, error.value.rows) == (ITEM, (2, 4))
    # Exactly the limit is allowed.
    checked = validate_candidates(frame.iloc[[0, 2]], item_column="title", max_text_chars=5)
    assert checked[ITEM].tolist() == ["short", "fives"]
    assert checked.index.tolist() == [0, 1]


# Marked lists: a ranked list with the items a user would click.


def marked(marks: list, **columns: list) -> pd.DataFrame:
    """A ranked list as the app shows it, with ``marks`` in its mark column."""
    n = len(marks)
    table = {MARK: marks, RANK: list(range(1, n + 1)), ITEM: [f"item {k}" for k in range(1, n + 1)]}
    return pd.DataFrame(table | columns)


@pytest.mark.parametrize("marks", [[True, False, False], ["true", "false", "FALSE"], ["yes", "no", "0"], ["1", "0", 0]])
def test_validate_marks_accepts_true_yes_and_1(marks: list) -> None:
    shown = validate_marks(marked(marks))
    assert list(shown.columns) == [ITEM, POSITION, CLICKED, ITEM_ID]
    assert shown[CLICKED].tolist() == [1, 0, 0]
    assert shown[POSITION].tolist() == [1, 2, 3]
    assert shown[ITEM].tolist() == ["item 1", "item 2", "item 3"]


def test_validate_marks_takes_the_position_from_the_rank() -> None:
    table = marked([False, True, False]).assign(**{RANK: ["3", "1", "2"]})
    shown = validate_marks(table)
    assert shown[POSITION].tolist() == [3, 1, 2]
    assert shown[CLICKED].tolist() == [0, 1, 0]


def test_validate_marks_fills_item_ids_from_the_text_hash() -> None:
    shown = validate_marks(marked([True, False]))
    assert shown[ITEM_ID].tolist() == item_ids(pd.Series(["item 1", "item 2"])).tolist()
    # A given id is kept; a gap gets the hash of its item.
    shown = validate_marks(marked([True, False, False], **{ITEM_ID: ["n1", "", None]}))
    assert shown[ITEM_ID].tolist() == ["n1", *item_ids(pd.Series(["item 2", "item 3"]))]


@pytest.mark.parametrize("column", [MARK, RANK, ITEM])
def test_validate_marks_names_a_missing_column(column: str) -> None:
    with pytest.raises(ContractError, match=rf"^list: missing required column\(s\) {column}; found ") as error:
        validate_marks(marked([True, False]).drop(columns=[column]), source="list")
    assert error.value.missing == (column,)


@pytest.mark.parametrize("table", [None, pd.DataFrame(columns=[MARK, RANK, ITEM])])
def test_validate_marks_of_no_list_is_an_error(table: pd.DataFrame | None) -> None:
    with pytest.raises(ContractError, match=r"^the ranked list: no ranked items; rank a list first"):
        validate_marks(table)


def test_validate_marks_with_nothing_marked_is_an_error() -> None:
    with pytest.raises(ContractError, match=r"^the ranked list: no item is marked; mark the items you would click"):
        validate_marks(marked([False, "no", "0"]))


@pytest.mark.parametrize(("ranks", "rows"), [(["1", "0", "3"], (2,)), ([1, 2.5, "x"], (2, 3)), (["", 2, -1], (1, 3))])
def test_validate_marks_names_bad_ranks(ranks: list, rows: tuple[int, ...]) -> None:
    table = marked([True, False, False]).assign(**{RANK: ranks})
    with pytest.raises(
        ContractError, match=r"column 'rank' must be a 1-based whole number .*; rank the list again$"
    ) as error:
        validate_marks(table)
    assert (error.value.column, error.value.rows) == (RANK, rows)


def test_validate_marks_names_a_bad_mark() -> None:
    with pytest.raises(ContractError, match=r"column 'mark' must be 0 or 1 .*'maybe' at row\(s\) 2") as error:
        validate_marks(marked([True, "maybe", False]))
    assert (error.value.column, error.value.rows) == (MARK, (2,))


def test_validate_marks_names_a_blank_item() -> None:
    table = marked([True, False]).assign(**{ITEM: ["item 1", "  "]})
    with pytest.raises(ContractError, match=r"column 'item' is empty at row\(s\) 2"):
        validate_marks(table)


def test_contract_errors_keep_their_fields_through_pickle_and_copy_and_hash_by_identity() -> None:
    import copy
    import pickle

    error = ContractError("clicks.csv", "column 'item' is empty at row(s) 2", "fill it", column=ITEM, rows=(2,))
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert (clone.source, clone.problem, clone.fix, clone.column, clone.rows) == (
            error.source, error.problem, error.fix, error.column, error.rows,
        )  # fmt: skip
        assert str(clone) == str(error)
    assert len({error, copy.copy(error)}) == 2  # exceptions compare by identity


def test_validate_marks_reads_blank_marks_as_not_marked() -> None:
    table = pd.DataFrame({RANK: [1, 2, 3], ITEM: ["a", "b", "c"], MARK: [True, None, ""]})
    assert validate_marks(table)[CLICKED].tolist() == [1, 0, 0]
    table[MARK] = [True, np.nan, "maybe"]
    with pytest.raises(ContractError, match=r"column 'mark' must be 0 or 1 .* at row\(s\) 3"):
        validate_marks(table)


# Rows to score (python -m recsys.scoring.bulk).


def test_rows_to_score_need_query_and_item_and_keep_every_other_column() -> None:
    pairs = validate_pairs(CLICK_LOG.assign(extra=["x"] * 5).drop(columns=[CLICKED]))
    assert list(pairs.columns) == [GROUP, QUERY, ITEM, ITEM_ID, POSITION, "extra"]
    with pytest.raises(ContractError, match=r"missing required column\(s\) query; found"):
        validate_pairs(CLICK_LOG.drop(columns=[QUERY]))
    with pytest.raises(ContractError, match=r"column 'query' is empty at row\(s\) 2"):
        validate_pairs(CLICK_LOG.assign(**{QUERY: ["q", "", "q", "q", "q"]}))
