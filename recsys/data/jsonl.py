"""JSON lines read strictly: one object per line, each key once, lists and objects nested at most
``MAX_JSON_DEPTH`` deep, integers within 64 bits; whole (:func:`read_jsonl`) or in pieces (:func:`jsonl_pieces`).
A refusal names the line, and the key where there is one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from recsys.data.limits import COLUMNS, check_rows_read, check_size, rows_to_read
from recsys.errors import ContractError

MAX_JSON_DEPTH = 32  # lists and objects in one JSON line, the line's own object counted; no table cell is deeper
INT64 = (-(2**63), 2**63 - 1)  # the integers a JSON line may hold


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    record = dict(pairs)
    if len(record) < len(pairs):
        keys = [key for key, _ in pairs]
        raise _RepeatedKeys(sorted({key for key in keys if keys.count(key) > 1}))
    return record


class _RepeatedKeys(Exception):
    """A JSON object with a key twice: json.loads would keep only the last value."""


class _WideInteger(str):
    """A JSON integer outside ``INT64``, kept as its digits until the line's key for it is known."""


def _json_integer(digits: str) -> int | _WideInteger:
    # a long digit string is refused before int() reads it: int() of one over 4300 digits is an error of its own
    if len(digits) > len(str(INT64[0])) or not INT64[0] <= (number := int(digits)) <= INT64[1]:
        return _WideInteger(digits)
    return number


def _unwritable(value: object, depth: int) -> _WideInteger | bool:
    """In a JSON value, a wide integer (the first), or True where lists and objects nest deeper than
    ``MAX_JSON_DEPTH``; False where there is neither. ``depth``: the value's own, the line's object being 1."""
    if isinstance(value, _WideInteger):
        return value
    if isinstance(value, (dict, list)):
        if depth > MAX_JSON_DEPTH:
            return True
        for inner in value.values() if isinstance(value, dict) else value:
            if found := _unwritable(inner, depth + 1):
                return found
    return False


def _too_deep(source: str, number: int) -> ContractError:
    return ContractError(
        source, f"line {number} holds lists or objects nested more than {MAX_JSON_DEPTH} deep",
        "flatten it: a cell holds text, a number, or a short list", rows=(number,),
    )  # fmt: skip


def _jsonl_records(path: Path, source: str, max_columns: int | None = None) -> Iterator[tuple[int, dict]]:
    """Each JSON object with its line number (blank lines skipped, a byte-order mark allowed), one at a time; one
    with more than ``max_columns`` keys is refused before the next line is read."""
    decoder = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_int=_json_integer)
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = decoder.decode(line)
            except RecursionError:  # nested past Python's own limit, long before the line ends
                raise _too_deep(source, number) from None
            except json.JSONDecodeError as err:
                raise ContractError(
                    source, f"line {number} is not JSON ({err.msg} at column {err.colno})",
                    "write one JSON object per line, e.g. {\"query\": \"...\", \"item\": \"...\", \"clicked\": 1}",
                    rows=(number,),
                ) from None  # fmt: skip
            except _RepeatedKeys as err:
                names = ", ".join(map(repr, err.args[0]))
                raise ContractError(
                    source, f"line {number} has the key(s) {names} more than once",
                    "give each key once per object (JSON keeps only the last value)", column=err.args[0][0],
                    rows=(number,),
                ) from None  # fmt: skip
            if not isinstance(record, dict):
                raise ContractError(
                    source, f"line {number} is a JSON {type(record).__name__}, not an object",
                    "write one JSON object per line", rows=(number,),
                )  # fmt: skip
            check_size(source, COLUMNS, len(record), max_columns, exact=False)  # the lines after it not read
            _refuse_unwritable(record, number, source)
            yield number, record


def _refuse_unwritable(record: dict, number: int, source: str) -> None:
    for key, value in record.items():
        found = _unwritable(value, 2)
        if found is True:
            raise _too_deep(source, number)
        if found:
            digits = found if len(found) <= 40 else f"{found[:20]}…{found[-10:]} ({len(found.lstrip('-'))} digits)"
            raise ContractError(
                source, f"line {number} has the integer {digits} at the key {key!r}, outside the 64-bit range",
                "quote it as a string, e.g. \"123\": a table cell holds integers of at most 64 bits", column=key,
                rows=(number,),
            )  # fmt: skip


def read_jsonl(path: Path, source: str, max_rows: int | None, max_columns: int | None) -> pd.DataFrame:
    """One JSON object per line; values keep their JSON types. Reading stops at
    :func:`~recsys.data.limits.rows_to_read`."""
    records: list[dict] = []
    keys: dict[str, None] = {}  # every key so far, in the order they first appear
    stop = rows_to_read(max_rows)
    for _, record in _jsonl_records(path, source, max_columns):
        records.append(record)
        if max_columns is not None:
            keys.update(dict.fromkeys(record))
            check_size(source, COLUMNS, len(keys), max_columns, exact=False)
        if len(records) == stop:
            break
    check_rows_read(source, len(records), max_rows)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def jsonl_pieces(path: Path, rows: int, source: str) -> Iterator[pd.DataFrame]:
    columns: list[str] | None = None  # the first piece's keys, in the order they first appear
    records: list[dict] = []
    numbers: list[int] = []
    for number, record in _jsonl_records(path, source):
        records.append(record)
        numbers.append(number)
        if len(records) == rows:
            columns = columns or list(dict.fromkeys(key for record in records for key in record))
            yield _jsonl_piece(records, numbers, columns, source)
            records, numbers = [], []
    if records:
        columns = columns or list(dict.fromkeys(key for record in records for key in record))
        yield _jsonl_piece(records, numbers, columns, source)


def _jsonl_piece(records: list[dict], numbers: list[int], columns: list[str], source: str) -> pd.DataFrame:
    known = set(columns)
    for number, record in zip(numbers, records, strict=True):
        extra = [key for key in record if key not in known]
        if extra:
            raise ContractError(
                source, f"line {number} has the key {extra[0]!r}, which the lines before it lack",
                "give every line the same keys (null where a line has no value)", column=extra[0], rows=(number,),
            )  # fmt: skip
    return pd.DataFrame.from_records(records, columns=columns)
