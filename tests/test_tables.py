"""recsys/data/tables.py: reading a table file whole or in chunks, and what it refuses while reading."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_contract import CLICK_LOG, write_csv, write_table  # the contract tests' log, written as a user would

from recsys.data.contract import ITEM, QUERY
from recsys.data.limits import TooLarge
from recsys.data.tables import read_table, read_table_chunks
from recsys.errors import ContractError


def test_a_table_is_named_by_the_source_it_is_given(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "query,item,clicked\n")
    with pytest.raises(ContractError, match=r"^upload\.csv: the file has no data rows"):
        read_table(path, source="upload.csv")


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_chunks_of_every_format_make_the_whole_table(tmp_path: Path, suffix: str) -> None:
    path = write_table(pd.concat([CLICK_LOG] * 3, ignore_index=True), tmp_path / f"clicks{suffix}")
    chunks = list(read_table_chunks(path, rows=4))
    assert [len(chunk) for chunk in chunks] == [4, 4, 4, 3]
    assert all(chunk.index.tolist() == list(range(len(chunk))) for chunk in chunks)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), read_table(path))


def test_a_long_row_in_a_later_chunk_is_named_by_its_line_in_the_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "query,item,clicked\n" + "q,a,1\n" * 6 + "q,a,1,extra\n")
    chunks = read_table_chunks(path, rows=2)
    assert len(next(chunks)) == 2  # the file is read as it goes: the first chunks come before the bad line
    with pytest.raises(ContractError, match=r"line 8 has 4 fields where the header has 3") as error:
        list(chunks)
    assert error.value.rows == (7,)


def test_a_jsonl_key_that_the_first_chunk_lacks_is_refused(tmp_path: Path) -> None:
    lines = ['{"query": "q", "item": "a"}'] * 3 + ['{"query": "q"}', '{"query": "q", "item": "b", "extra": 1}']
    path = write_csv(tmp_path, "\n".join(lines) + "\n", "rows.jsonl")
    first, second = read_table_chunks(path, rows=3), read_table_chunks(path, rows=5)
    with pytest.raises(ContractError, match=r"line 5 has the key 'extra', which the lines before it lack; give every"):
        list(first)
    whole = next(second)  # in one chunk the columns are all the file's keys, as read_table reads them
    assert list(whole.columns) == [QUERY, ITEM, "extra"]
    assert whole[ITEM].isna().tolist() == [False] * 3 + [True, False]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("rows.csv", "query,item\n", r"the file has no data rows"),
        ("rows.csv", "", r"the file is empty"),
        ("rows.xlsx", "query,item\n", r"unknown extension '\.xlsx'"),
        ("rows.csv", "query,item,query\nq,a,b\n", r"the column name\(s\) 'query' appear more than once"),
    ],
)
def test_a_chunked_file_is_refused_as_read_table_refuses_it(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = write_csv(tmp_path, content, name)
    with pytest.raises(ContractError, match=message):
        list(read_table_chunks(path, rows=2))
    with pytest.raises(ContractError, match=message):
        read_table(path)


def test_a_missing_chunked_file_is_refused_before_any_chunk_is_asked_for(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"missing\.csv: no such file"):
        read_table_chunks(tmp_path / "missing.csv", rows=2)


def test_a_byte_that_is_not_utf8_in_a_later_chunk_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_bytes(b"query,item\n" + b"q,a\n" * 5 + b"q,caf\xe9\n")
    with pytest.raises(ContractError, match=r"not UTF-8 text \(byte 0xe9 at offset 36, line 7"):
        list(read_table_chunks(path, rows=2))


@pytest.mark.parametrize(
    ("header", "columns"),
    [
        ("a,b,c", 3),
        ('"a,b",c', 2),  # a separator inside quotes
        ('"say ""x,y""",b', 2),  # and inside a quote within quotes
        ('"two\nlines",b', 2),  # a line break inside quotes
        ("\n \n\na,b", 2),  # blank lines before the header, which pandas skips
        ("a,b\rx,y\r", 2),  # old Mac line ends
    ],
)
def test_header_fields_are_counted_as_pandas_reads_them(tmp_path: Path, header: str, columns: int) -> None:
    path = tmp_path / "items.csv"
    path.write_text(header + "\n" + ",".join(["v"] * columns) + "\n")
    assert len(read_table(path, max_columns=columns).columns) == columns
    with pytest.raises(TooLarge, match=rf"items\.csv: {columns} columns, more than the limit of {columns - 1}; drop"):
        read_table(path, max_columns=columns - 1)


def test_a_pandas_index_saved_in_parquet_is_no_column(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    pd.DataFrame({ITEM: ["a", "b", "c"]}).iloc[[2, 0, 1]].to_parquet(path)  # an index that is no range: saved
    assert "__index_level_0__" in pq.read_schema(path).names
    assert read_table(path).columns.tolist() == [ITEM]
    assert next(iter(read_table_chunks(path, 10))).columns.tolist() == [ITEM]
