"""Limits applied while a candidate file is read, and the JSON and Parquet content that no table cell holds.

Each bomb is a small file that makes a large table: it must be refused from what the reader sees first
(Parquet metadata, the first piece of a CSV header, the line past the limit), never after reading it whole.
"""

from __future__ import annotations

import datetime
import decimal
import json
import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.data.candidates import read_candidate_table
from recsys.data.contract import CLICKED, ITEM, ITEM_ID
from recsys.data.jsonl import MAX_JSON_DEPTH
from recsys.data.limits import TooLarge
from recsys.data.tables import read_table_chunks
from recsys.errors import ContractError
from recsys.serving.inputs import inspect_candidate_file, read_candidate_input, upload_limits
from recsys.serving.service import InputError
from recsys.serving.settings import Limits

LIMITS = Limits()  # 1000 items; item, item_id, clicked and 64 more columns
SMALL = Limits(max_items=20)


def readers(path: Path, limits: Limits = LIMITS) -> list[Callable[[], object]]:
    """Every way the app reads an upload: /rank and /compare, the inspection on upload."""
    return [
        lambda: read_candidate_input(str(path), "", ITEM, limits),
        lambda: inspect_candidate_file(path, limits),
    ]


def refused_by_every_reader(path: Path, error: type[Exception], message: str, limits: Limits = LIMITS) -> None:
    for read in readers(path, limits):
        with pytest.raises(error, match=message):
            read()


# -- rows ------------------------------------------------------------------------------------------------------


def dictionary_bomb(path: Path, rows: int = 20_000_000) -> Path:
    """One dictionary-encoded string, ``rows`` times, zstd: about 80 KB on disk, gigabytes as a table."""
    schema = pa.schema([(ITEM, pa.dictionary(pa.int32(), pa.string()))])
    piece = pa.table([pa.DictionaryArray.from_arrays(np.zeros(1_000_000, np.int32), ["breaking news"])], schema=schema)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for _ in range(rows // len(piece)):
            writer.write_table(piece)
    return path


def test_a_parquet_file_of_20_million_rows_is_refused_from_its_metadata(tmp_path: Path) -> None:
    path = dictionary_bomb(tmp_path / "bomb.parquet")
    assert path.stat().st_size < 200_000
    pool = pa.default_memory_pool()
    before = pool.max_memory()
    refused_by_every_reader(path, ContractError, r"^bomb\.parquet: 20000000 items, more than the limit of 1000; rank")
    # the rows' indices alone are 80 MB: none was read
    assert pool.max_memory() - before < 16 * 2**20


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".txt"])
def test_reading_stops_past_the_item_limit_and_names_the_count_when_one_past(tmp_path: Path, suffix: str) -> None:
    def write(name: str, items: int, tail: bytes = b"") -> Path:
        lines = [json.dumps({ITEM: f"item {i}"}) if suffix == ".jsonl" else f"item {i}" for i in range(items)]
        header = [] if suffix in (".jsonl", ".txt") else [ITEM]
        path = tmp_path / f"{name}{suffix}"
        path.write_bytes("\n".join([*header, *lines, ""]).encode() + tail)
        return path

    assert len(read_candidate_input(str(write("twenty", 20)), "", ITEM, SMALL)[0]) == 20
    one_past = write("one-past", 21)
    refused_by_every_reader(one_past, ContractError, r"one-past\.\w+: 21 items, more than the limit of 20; rank", SMALL)
    # a broken line far past the limit is never read: the refusal is the limit's, not the line's
    broken = write("many", 5000, b"\xff not utf-8, not JSON, \x00 and ,,,,,, more fields\n")
    refused_by_every_reader(broken, ContractError, r"many\.\w+: more than the limit of 20 items; rank", SMALL)


# -- columns ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sep", [",", "\t"])
def test_a_header_of_600000_columns_is_refused_from_its_first_piece(tmp_path: Path, sep: str) -> None:
    path = tmp_path / ("wide.csv" if sep == "," else "wide.tsv")
    path.write_text(sep.join(map(str, range(600_000))) + "\nx" + sep * 599_999 + "\n")  # about 5 MB
    tracemalloc.start()
    try:
        refused_by_every_reader(
            path, InputError, r"^wide\.\w+ has at least \d+ columns besides item, item_id and clicked; the ranked "
            r"table keeps at most 64\.",
        )  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # the whole header is 4 MB


def wide_frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({name: ["shoes" if name == ITEM else "1"] for name in columns})


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_the_column_limit_is_the_ranked_tables_own_while_reading_and_after(tmp_path: Path, suffix: str) -> None:
    extra = [f"c{i}" for i in range(64)]
    path = tmp_path / f"full{suffix}"
    write(wide_frame([ITEM, ITEM_ID, CLICKED, *extra]), path)  # clicked has a column of its own: real click
    assert len(read_candidate_input(str(path), "", ITEM, LIMITS)[0].columns) == 67
    text, preselected, numeric = inspect_candidate_file(path, LIMITS)
    assert preselected == ITEM and len(text + numeric) == 66  # every column but clicked, the ground truth
    over = tmp_path / f"over{suffix}"
    write(wide_frame([ITEM, ITEM_ID, CLICKED, *extra, "c64"]), over)
    message = r"^over\.\w+ has at least 65 columns besides item, item_id and clicked; the ranked table keeps at most 64"
    refused_by_every_reader(over, InputError, message)
    no_id = tmp_path / f"no-id{suffix}"
    write(wide_frame([ITEM, CLICKED, *extra, "c64"]), no_id)  # read, then refused by what the table keeps
    with pytest.raises(InputError, match=r"^no-id\.\w+ has 65 columns besides item, item_id and clicked; .* 64\."):
        read_candidate_input(str(no_id), "", ITEM, LIMITS)


def write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False)


def test_a_json_line_with_more_keys_than_the_limit_is_refused_before_the_next_line(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    keys = {f"k{i}": i for i in range(100_000)}
    path.write_text(json.dumps({ITEM: "shoes", **keys}) + "\n{ not JSON\n")
    refused_by_every_reader(path, InputError, r"^items\.jsonl has at least 99998 columns besides item, item_id and")
    spread = tmp_path / "spread.jsonl"  # keys that pass line by line, and not together
    spread.write_text(
        "".join(json.dumps({ITEM: "a", **{f"k{line}-{i}": i for i in range(40)}}) + "\n" for line in (1, 2))
    )
    with pytest.raises(TooLarge, match=r"more than the limit of 67 columns"):
        read_candidate_table(spread, **upload_limits(LIMITS))


# -- JSON nesting and integers ---------------------------------------------------------------------------------


def nested(depth: int, kind: str) -> str:
    return "[" * depth + "1" + "]" * depth if kind == "list" else '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, 3_000, 100_000])
def test_json_nested_too_deep_is_refused_in_one_line(tmp_path: Path, depth: int, kind: str) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(f'{{"{ITEM}": "ok", "tags": ["a"]}}\n{{"{ITEM}": "deep", "x": {nested(depth, kind)}}}\n')
    message = rf"^items\.jsonl: line 2 holds lists or objects nested more than {MAX_JSON_DEPTH} deep; flatten it"
    refused_by_every_reader(path, ContractError, message)
    with pytest.raises(ContractError, match=message):  # python -m recsys.scoring.bulk's reader
        list(read_table_chunks(path, 100, source=path.name))


def test_json_nested_up_to_the_limit_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(f'{{"{ITEM}": "shoes", "x": {nested(MAX_JSON_DEPTH - 1, "list")}}}\n')
    assert read_candidate_input(str(path), "", ITEM, LIMITS)[0][ITEM].tolist() == ["shoes"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        (str(2**63), str(2**63)),
        (str(-(2**63) - 1), str(-(2**63) - 1)),
        ("[1, 2, 100000000000000000000]", "100000000000000000000"),
        ('{"views": 100000000000000000000}', "100000000000000000000"),
        ("9" * 5000, "99999999999999999999…9999999999 (5000 digits)"),  # past int()'s own limit of 4300 digits
    ],
)
def test_an_integer_outside_64_bits_is_refused_naming_the_line_and_key(tmp_path: Path, value: str, shown: str) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(f'{{"{ITEM}": "a", "views": 1}}\n{{"{ITEM}": "b", "views": {value}}}\n')
    message = (
        rf"^items\.jsonl: line 2 has the integer {re.escape(shown)} at the key 'views', outside the 64-bit range; "
        r"quote it as a string"
    )
    refused_by_every_reader(path, ContractError, message)
    with pytest.raises(ContractError, match=message):
        list(read_table_chunks(path, 100, source=path.name))


def test_integers_within_64_bits_and_quoted_ones_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    lines = [
        {ITEM: "a", "views": 2**63 - 1, "id": "123456789012345678901234567890"},
        {ITEM: "b", "views": -(2**63), "id": "1"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    candidates = read_candidate_input(str(path), "", ITEM, LIMITS)[0]
    assert candidates["views"].tolist() == [2**63 - 1, -(2**63)]
    assert candidates["id"].tolist() == ["123456789012345678901234567890", "1"]


# -- Parquet: its pandas metadata, and types that are no text ---------------------------------------------------


def with_pandas_metadata(path: Path, edit: Callable[[dict], None]) -> Path:
    table = pa.Table.from_pandas(pd.DataFrame({ITEM: ["red shoes", "blue hat"], "price": [30, 12]}))
    metadata = json.loads(table.schema.metadata[b"pandas"])
    edit(metadata)
    pq.write_table(table.replace_schema_metadata({b"pandas": json.dumps(metadata)}), path)
    return path


@pytest.mark.parametrize(
    "edit",
    [
        lambda metadata: metadata.update(index_columns=["no such column"]),  # pandas: KeyError
        lambda metadata: metadata["columns"][1].update(numpy_type="nonsense"),  # pandas: TypeError
        lambda metadata: metadata.update(columns="nonsense"),
    ],
    ids=["missing-index-column", "nonsense-dtype", "nonsense-columns"],
)
def test_broken_pandas_metadata_in_parquet_is_ignored(tmp_path: Path, edit: Callable[[dict], None]) -> None:
    path = with_pandas_metadata(tmp_path / "items.parquet", edit)
    candidates, _ = read_candidate_input(str(path), "", ITEM, LIMITS)
    assert candidates[ITEM].tolist() == ["red shoes", "blue hat"] and candidates["price"].tolist() == [30, 12]
    assert inspect_candidate_file(path, LIMITS) == ([ITEM], ITEM, ["price"])
    pieces = list(read_table_chunks(path, 1))
    assert [piece[ITEM].tolist() for piece in pieces] == [["red shoes"], ["blue hat"]]


@pytest.mark.parametrize(
    ("array", "kind"),
    [
        (pa.array([datetime.datetime(2024, 1, 1)], pa.timestamp("us")), "a date or time"),
        (pa.array([datetime.datetime(2024, 1, 1)], pa.timestamp("ns", tz="UTC")), "a date or time"),
        (pa.array([datetime.date(2024, 1, 1)], pa.date32()), "a date or time"),
        (pa.array([datetime.time(12, 30)], pa.time64("us")), "a date or time"),
        (pa.array([datetime.timedelta(days=1)], pa.duration("s")), "a duration"),
        (pa.array([decimal.Decimal("1.50")], pa.decimal128(5, 2)), "a decimal number"),
        (pa.array([b"bytes"], pa.binary()), "a bytes value"),
    ],
    ids=["timestamp", "timestamp-tz", "date", "time", "duration", "decimal", "binary"],
)
def test_parquet_types_that_are_no_text_are_refused_as_item_text(tmp_path: Path, array: pa.Array, kind: str) -> None:
    path = tmp_path / "items.parquet"
    pq.write_table(pa.table({ITEM: array}), path)
    with pytest.raises(ContractError, match=rf"column 'item' must hold text, but holds {kind} at row\(s\) 1; make"):
        read_candidate_input(str(path), "", ITEM, LIMITS)
