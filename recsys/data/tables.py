"""Files to tables: the formats a click log or a candidate list may come in, read strictly.

A .csv, .tsv, .jsonl or .parquet file becomes a DataFrame of strings and numbers, whole
(``read_table``) or in pieces of a bounded number of rows (``read_table_chunks``), never by
guessing: a UTF-8 byte-order mark is allowed; any other encoding is refused, naming the first
byte that is not UTF-8 and where it is; a column name given twice, a row with more fields than
the header, a JSON line that is no object, and a binary file are refused. Column rules (which
columns, what they hold) are ``recsys.data.contract``'s.

Limits apply while reading, never after: with ``max_rows`` or ``max_columns``, a file over either is
refused (:class:`TooLarge`) as soon as the reader sees it, so that a small file cannot make a large
table. A Parquet file's rows and columns are counted from its metadata before any data is read; a
CSV or TSV header's fields are counted from the first line in small pieces, and its rows read only
up to one past the limit; JSON lines likewise. A Parquet file is read as the Arrow data it holds: the
pandas metadata that pandas writes beside it (dtypes, index) is ignored, since pandas fails on a
broken one, and an unnamed pandas index saved as a column (``__index_level_0__``) is left out, as
pandas leaves it out. A JSON line may nest lists and objects at most ``MAX_JSON_DEPTH`` deep, and
its integers must fit in 64 bits (as a table cell, a database and every JSON writer hold them): a
larger one is refused, naming the line and the key, with the fix to quote it as a string.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.errors import ContractError

TABULAR_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".txt")  # read as UTF-8 text; a NUL byte means a binary file
_MAX_ROWS_NAMED = 5
_SNIFF_BYTES = 8192
_CHUNK_BYTES = 1 << 20
_HEADER_BYTES = 1 << 16  # a CSV header is counted in pieces of this size, so a header of any width costs one piece
_LINE_END = re.compile(rb"[\r\n]")
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")  # pyarrow's name for an unnamed pandas index saved as a column
MAX_JSON_DEPTH = 32  # lists and objects in one JSON line, the line's own object counted; no table cell is deeper
INT64 = (-(2**63), 2**63 - 1)  # the integers a JSON line may hold
ROWS, COLUMNS = "rows", "columns"


@dataclass(eq=False)
class TooLarge(ContractError):
    """A file with more rows or columns than its reader takes (``max_rows``, ``max_columns``), refused as soon as the
    reader sees it; ``size`` is how many the file has (at least, where ``exact`` is false: the reader stopped
    counting), so that a caller can say so in its own words (:meth:`count`)."""

    unit: str = ROWS  # ROWS or COLUMNS
    size: int = 0
    limit: int = 0
    exact: bool = True

    def count(self, unit: str | None = None) -> str:
        """E.g. ``1001 items, more than the limit of 1000``, in ``unit`` (default: rows or columns)."""
        return _over_limit(self.size, unit or self.unit, self.limit, self.exact)

    def __reduce__(self) -> tuple:
        return type(self), (*super().__reduce__()[1], self.unit, self.size, self.limit, self.exact)


def _over_limit(size: int, unit: str, limit: int, exact: bool) -> str:
    return f"{size} {unit}, more than the limit of {limit}" if exact else f"more than the limit of {limit} {unit}"


def too_large(source: str, unit: str, size: int, limit: int, exact: bool = True) -> TooLarge:
    fix = "give a file with fewer rows" if unit == ROWS else "drop the columns you don't need"
    problem = _over_limit(size, unit, limit, exact)
    return TooLarge(source, problem, fix, unit=unit, size=size, limit=limit, exact=exact)


def _check_size(source: str, unit: str, size: int, limit: int | None, exact: bool = True) -> None:
    if limit is not None and size > limit:
        raise too_large(source, unit, size, limit, exact)


def rows_to_read(limit: int | None) -> int | None:
    """How many rows a reader reads for a ``limit``: two past it, the first to tell a file over the limit, the
    second whether that one was the last (then the refusal names the file's count); None: every row."""
    return None if limit is None else limit + 2


def check_rows_read(source: str, read: int, limit: int | None, unit: str = ROWS) -> None:
    """Refuse a file of which ``read`` rows (at most :func:`rows_to_read`) were read, where they are over ``limit``."""
    _check_size(source, unit, read, limit, exact=limit is None or read <= limit + 1)


def bad_rows(mask: pd.Series | np.ndarray) -> tuple[int, ...]:
    """The data rows where ``mask`` is true, numbered from 1 as a person counts them (header excluded)."""
    return tuple(int(i) + 1 for i in np.flatnonzero(np.asarray(mask, dtype=bool)))


def describe_rows(rows: Sequence[int]) -> str:
    more = f" and {len(rows) - _MAX_ROWS_NAMED} more" if len(rows) > _MAX_ROWS_NAMED else ""
    return ", ".join(map(str, rows[:_MAX_ROWS_NAMED])) + more


def require_file(path: Path, source: str) -> None:
    if path.is_dir():
        raise ContractError(source, "is a folder, not a file", "give the path of a file in it")
    if not path.is_file():
        raise ContractError(source, "no such file")


def refuse_binary(path: Path, source: str) -> None:
    if path.suffix.lower() in TEXT_SUFFIXES:
        with path.open("rb") as handle:
            if b"\x00" in handle.read(_SNIFF_BYTES):
                raise ContractError(source, "this looks like a binary file", "give UTF-8 text (CSV, TSV, JSONL, TXT)")


def _first_non_utf8(path: Path) -> tuple[int, int, str] | None:
    """The file offset, line and reason of the first byte that is not UTF-8, read in chunks; None where all is.

    pandas reports an offset inside the chunk it was decoding, which names the wrong byte of a large file.
    """
    offset, line, pending = 0, 1, b""  # ``pending``: a character cut in two by the chunk boundary
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            data = pending + chunk
            try:
                data.decode("utf-8")
                good, pending = len(data), b""
            except UnicodeDecodeError as err:
                if err.reason != "unexpected end of data" or err.end < len(data):
                    return offset + err.start, line + data.count(b"\n", 0, err.start), err.reason
                good, pending = err.start, data[err.start :]
            offset, line = offset + good, line + data.count(b"\n", 0, good)
    return (offset, line, "the file ends inside a character") if pending else None


def not_utf8(path: Path, source: str, fix: str = "re-save it as UTF-8") -> ContractError:
    found = _first_non_utf8(path)
    if found is None:  # pandas decoded with another codec; the bytes themselves are fine
        return ContractError(source, "not UTF-8 text", fix)
    offset, line, reason = found
    with path.open("rb") as handle:
        handle.seek(offset)
        byte = handle.read(1)
    return ContractError(source, f"not UTF-8 text (byte 0x{byte.hex()} at offset {offset}, line {line}: {reason})", fix)


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
            _check_size(source, COLUMNS, len(record), max_columns, exact=False)  # the lines after it not read
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


def _read_jsonl(path: Path, source: str, max_rows: int | None, max_columns: int | None) -> pd.DataFrame:
    """One JSON object per line; values keep their JSON types. Reading stops at :func:`rows_to_read`."""
    records: list[dict] = []
    keys: dict[str, None] = {}  # every key so far, in the order they first appear
    stop = rows_to_read(max_rows)
    for _, record in _jsonl_records(path, source, max_columns):
        records.append(record)
        if max_columns is not None:
            keys.update(dict.fromkeys(record))
            _check_size(source, COLUMNS, len(keys), max_columns, exact=False)
        if len(records) == stop:
            break
    check_rows_read(source, len(records), max_rows)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _read_delimited(path: Path, sep: str, source: str, max_rows: int | None, max_columns: int | None) -> pd.DataFrame:
    """CSV or TSV as text, its header row taken as it is: pandas would rename a repeated name (``item.1``)
    and take the first column as an index where rows have one field more than the header. With limits, the
    header's fields are counted before pandas reads it, and its rows only up to :func:`rows_to_read`."""
    if max_columns is not None:
        fields, exact = _header_fields(path, sep, max_columns)
        _check_size(source, COLUMNS, fields, max_columns, exact)
    rows = None if max_rows is None else 1 + rows_to_read(max_rows)  # the header too
    try:
        raw = pd.read_csv(path, sep=sep, header=None, encoding="utf-8", dtype=str, keep_default_na=False, nrows=rows)
    except pd.errors.EmptyDataError:  # blank lines only
        raise _no_header(source) from None
    except pd.errors.ParserError as err:
        raise _too_many_fields(err, source) from None
    check_rows_read(source, len(raw) - 1, max_rows)
    return raw.iloc[1:].set_axis(_header(raw.iloc[0].tolist()), axis=1).reset_index(drop=True)


def _header_fields(path: Path, sep: str, limit: int) -> tuple[int, bool]:
    """The fields of a CSV or TSV header (its first line that is not blank) and whether that count is exact: it
    is counted in pieces of ``_HEADER_BYTES``, a separator inside quotes not counted, and counting stops after
    the piece where it passes ``limit``."""
    separator = sep.encode()
    fields, quoted, written = 1, False, False  # written: the line so far holds more than blanks
    with path.open("rb") as handle:
        while piece := handle.read(_HEADER_BYTES):
            for i, part in enumerate(piece.split(b'"')):
                quoted = quoted != (i > 0)  # every quote opens or closes a quoted field ("" inside one: both)
                if quoted:
                    written = True
                    continue
                while end := _LINE_END.search(part):
                    line, part = part[: end.start()], part[end.end() :]
                    fields, written = fields + line.count(separator), written or bool(line.strip())
                    if written:
                        return fields, True
                    fields = 1  # a blank line before the header, which pandas skips too
                fields, written = fields + part.count(separator), written or bool(part.strip())
            if fields > limit:
                return fields, False
    return fields, True


def _header(names: list[str]) -> list[str]:
    return [name if name else f"Unnamed: {i}" for i, name in enumerate(names)]


def _no_header(source: str) -> ContractError:
    return ContractError(source, "the file has no header row", "it needs a header row and at least one data row")


def _too_many_fields(err: pd.errors.ParserError, source: str) -> ContractError:
    """The parser's complaint about a row longer than the header, as the contract's error; any other is re-raised."""
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
    if fields is None:
        raise err
    expected, line, saw = fields.groups()
    return ContractError(
        source, f"line {line} has {saw} fields where the header has {expected}",
        "give every row as many fields as the header (quote a cell that holds the separator, and drop "
        "trailing separators)", rows=(int(line) - 1,),
    )  # fmt: skip


def refuse_repeated_columns(columns: Sequence[str], source: str) -> None:
    repeated = sorted(name for name, count in Counter(columns).items() if count > 1)
    if repeated:
        raise ContractError(
            source, f"the column name(s) {', '.join(map(repr, repeated))} appear more than once",
            "rename the columns so that each name appears once", column=repeated[0],
        )  # fmt: skip


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return [str(name) for name in pq.read_schema(path).names]


def _tabular_suffix(path: Path, source: str) -> str:
    """The suffix of a table file that exists and holds something, or the error that says what to give instead."""
    suffix = path.suffix.lower()
    if suffix not in TABULAR_SUFFIXES:
        raise ContractError(
            source,
            f"unknown extension {suffix or '(none)'!r}",
            f"save the file as one of {', '.join(TABULAR_SUFFIXES)}",
        )
    require_file(path, source)
    if path.stat().st_size == 0:
        raise ContractError(source, "the file is empty", "it needs a header row and at least one data row")
    refuse_binary(path, source)
    return suffix


def _unreadable(err: Exception, path: Path, suffix: str, source: str) -> ContractError:
    """A reader's own error as the contract's: bytes that are not UTF-8 named where they are, anything else as is."""
    if isinstance(err, UnicodeDecodeError):
        return not_utf8(path, source)
    return ContractError(source, f"could not be read as {suffix[1:]}: {err}")


# pyarrow's errors are ValueError or OSError; pandas' ParserError is a ValueError
_READER_ERRORS = (UnicodeDecodeError, ValueError, pd.errors.ParserError, OSError)


def _no_data_rows(source: str) -> ContractError:
    return ContractError(source, "the file has no data rows", "add at least one row under the header")


def read_table(
    path: str | Path, source: str | None = None, *, max_rows: int | None = None, max_columns: int | None = None
) -> pd.DataFrame:
    """Read a .csv, .tsv, .jsonl or .parquet file as strings-and-numbers, never guessing encodings.

    ``source`` names the file in errors (default: its path; the app passes an upload's own name).
    Column names are stripped and must be unique; a UTF-8 byte-order mark is allowed. A file with more
    than ``max_rows`` data rows or ``max_columns`` columns is refused while it is read (:class:`TooLarge`).
    """
    path = Path(path)
    source = source or str(path)
    suffix = _tabular_suffix(path, source)
    try:
        if suffix == ".parquet":
            frame = _read_parquet(path, source, max_rows, max_columns)
        elif suffix == ".jsonl":
            frame = _read_jsonl(path, source, max_rows, max_columns)
        else:
            frame = _read_delimited(path, "\t" if suffix == ".tsv" else ",", source, max_rows, max_columns)
    except ContractError:
        raise
    except _READER_ERRORS as err:
        raise _unreadable(err, path, suffix, source) from err
    frame.columns = [str(c).strip() for c in frame.columns]
    refuse_repeated_columns(frame.columns, source)
    if frame.empty:
        raise _no_data_rows(source)
    return frame


def read_table_chunks(path: str | Path, rows: int, source: str | None = None) -> Iterator[pd.DataFrame]:
    """:func:`read_table` in pieces of at most ``rows`` data rows, in file order, never holding the whole file.

    Each piece is read by ``read_table``'s rules and numbered from 0 (its index); every piece has the
    first piece's columns. A JSON line that leaves out a key of the first piece has it empty there; one
    that adds a key the first piece lacks is refused, since the columns were settled by then. The file
    itself (its extension, that it exists and is text) is checked here; an error in its content (a bad
    line, a byte that is not UTF-8) is raised when the reader reaches it.
    """
    if rows < 1:
        raise ValueError(f"a piece holds at least 1 row, not {rows}")
    path = Path(path)
    source = source or str(path)
    suffix = _tabular_suffix(path, source)
    if suffix == ".parquet":
        pieces = _parquet_pieces(path, rows, source)
    elif suffix == ".jsonl":
        pieces = _jsonl_pieces(path, rows, source)
    else:
        pieces = _delimited_pieces(path, "\t" if suffix == ".tsv" else ",", rows, source)
    return _checked_pieces(pieces, path, suffix, source)


def _checked_pieces(pieces: Iterator[pd.DataFrame], path: Path, suffix: str, source: str) -> Iterator[pd.DataFrame]:
    """The pieces with the first one's stripped, unique column names, the reader's errors as the contract's."""
    columns: list[str] | None = None
    while True:
        try:  # around the reader only, not around what the caller does with a piece
            frame = next(pieces, None)
        except ContractError:
            raise
        except _READER_ERRORS as err:
            raise _unreadable(err, path, suffix, source) from err
        if frame is None:
            break
        if columns is None:
            columns = [str(c).strip() for c in frame.columns]
            refuse_repeated_columns(columns, source)
        yield frame.set_axis(columns, axis=1).reset_index(drop=True)
    if columns is None:
        raise _no_data_rows(source)


def _delimited_pieces(path: Path, sep: str, rows: int, source: str) -> Iterator[pd.DataFrame]:
    try:
        reader = pd.read_csv(
            path, sep=sep, header=None, encoding="utf-8", dtype=str, keep_default_na=False, chunksize=rows
        )
    except pd.errors.EmptyDataError:  # blank lines only
        raise _no_header(source) from None
    with reader:
        try:
            header = _header(reader.get_chunk(1).iloc[0].tolist())
            yield from (raw.set_axis(header, axis=1) for raw in reader)
        except pd.errors.ParserError as err:  # line numbers count from the top of the file, not of the piece
            raise _too_many_fields(err, source) from None


def _jsonl_pieces(path: Path, rows: int, source: str) -> Iterator[pd.DataFrame]:
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


def _parquet_pieces(path: Path, rows: int, source: str) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    refuse_repeated_columns([c.strip() for c in _parquet_columns(path)], source)
    with pq.ParquetFile(path) as parquet:
        for batch in parquet.iter_batches(batch_size=rows):
            if batch.num_rows:
                yield _arrow_frame(batch)


def _read_parquet(path: Path, source: str, max_rows: int | None, max_columns: int | None) -> pd.DataFrame:
    """A Parquet file whose rows and columns, counted in its metadata, are within the limits; the metadata's
    count is not trusted further: reading stops past ``max_rows`` (:func:`rows_to_read`) whatever it says."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        names = [str(name).strip() for name in parquet.schema_arrow.names]
        # leaf columns: a nested column is read as all of its fields
        _check_size(source, COLUMNS, max(len(names), parquet.metadata.num_columns), max_columns)
        refuse_repeated_columns(names, source)
        _check_size(source, ROWS, parquet.metadata.num_rows, max_rows)
        if max_rows is None:
            return _arrow_frame(parquet.read())
        batches, read = [], 0
        for batch in parquet.iter_batches(batch_size=rows_to_read(max_rows)):
            batches.append(batch)
            read += batch.num_rows
            if read >= rows_to_read(max_rows):
                break
        check_rows_read(source, read, max_rows)
        return _arrow_frame(pa.Table.from_batches(batches) if batches else parquet.schema_arrow.empty_table())


def _arrow_frame(data: object) -> pd.DataFrame:
    """A pyarrow Table or RecordBatch as pandas, its pandas metadata ignored (module docstring)."""
    frame = data.to_pandas(ignore_metadata=True)
    return frame.drop(columns=[c for c in frame.columns if _PANDAS_INDEX.fullmatch(str(c))])


def check_not_an_input(out: str | Path, inputs: Sequence[str | Path], fix: str) -> None:
    """Refuse an output that is one of a command's inputs, by its own path or through a link: writing it would
    destroy what the command reads. The one rule of every command that writes a file."""
    out = Path(out)
    for source in map(Path, inputs):
        if out.exists() and source.exists() and out.samefile(source):
            kind = "folder" if source.is_dir() else "file"
            problem = f"is the input {kind}" if out == source else f"is the input {kind} {source}, through a link"
            raise ContractError(str(out), problem, fix)


def check_not_an_input_folder(out: str | Path, inputs: Iterable[str | Path], fix: str) -> None:
    """Refuse an output folder that is one of a command's inputs or holds one, by its own path or through a link:
    writing into it would destroy what the command reads. The folder's form of :func:`check_not_an_input`.

    Paths are compared as given (made absolute) and as resolved, so that a link on either side counts.
    """
    out = Path(out)
    given, resolved = Path(os.path.abspath(out)), out.resolve()
    for source in map(Path, inputs):
        for mine, theirs, how in (
            (given, Path(os.path.abspath(source)), ""),
            (resolved, source.resolve(), ", through a link"),
        ):
            if theirs == mine or theirs.is_relative_to(mine):
                kind = "folder" if source.is_dir() else "file"
                verb = "is" if theirs == mine else "holds"
                raise ContractError(str(out), f"{verb} the input {kind} {source}{how}", fix)
