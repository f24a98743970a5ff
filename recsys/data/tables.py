"""Files to tables: the formats a click log or a candidate list may come in, read strictly.

A .csv, .tsv, .jsonl or .parquet file becomes a DataFrame of strings and numbers, whole
(``read_table``) or in pieces of a bounded number of rows (``read_table_chunks``), never by
guessing: a UTF-8 byte-order mark is allowed; any other encoding is refused, naming the first
byte that is not UTF-8 and where it is; a column name given twice, a row with more fields than
the header, a JSON line that is no object, and a binary file are refused. Column rules (which
columns, what they hold) are ``recsys.data.contract``'s.

Limits apply while reading, never after: with ``max_rows`` or ``max_columns``, a file over either is
refused (:class:`~recsys.data.limits.TooLarge`) as soon as the reader sees it, so that a small file cannot make a
large table. A Parquet file's rows and columns are counted from its metadata before any data is read; a
CSV or TSV header's fields are counted from the first line in small pieces, and its rows read only
up to one past the limit; JSON lines likewise. A Parquet file is read as the Arrow data it holds: the
pandas metadata that pandas writes beside it (dtypes, index) is ignored, since pandas fails on a
broken one, and an unnamed pandas index saved as a column (``__index_level_0__``) is left out, as
pandas leaves it out. JSON lines are read by ``recsys.data.jsonl`` (nesting at most ``MAX_JSON_DEPTH`` deep,
integers within 64 bits), the file itself checked first by ``recsys.data.file_checks``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from recsys.data.file_checks import not_utf8, refuse_binary, require_file
from recsys.data.jsonl import jsonl_pieces, read_jsonl
from recsys.data.limits import COLUMNS, ROWS, check_rows_read, check_size, rows_to_read
from recsys.errors import ContractError

TABULAR_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
_HEADER_BYTES = 1 << 16  # a CSV header is counted in pieces of this size, so a header of any width costs one piece
_LINE_END = re.compile(rb"[\r\n]")
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")  # pyarrow's name for an unnamed pandas index saved as a column


def _read_delimited(path: Path, sep: str, source: str, max_rows: int | None, max_columns: int | None) -> pd.DataFrame:
    """CSV or TSV as text, its header row taken as it is: pandas would rename a repeated name (``item.1``)
    and take the first column as an index where rows have one field more than the header. With limits, the
    header's fields are counted before pandas reads it, and its rows only up to
    :func:`~recsys.data.limits.rows_to_read`."""
    if max_columns is not None:
        fields, exact = _header_fields(path, sep, max_columns)
        check_size(source, COLUMNS, fields, max_columns, exact)
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
    than ``max_rows`` data rows or ``max_columns`` columns is refused while it is read
    (:class:`~recsys.data.limits.TooLarge`).
    """
    path = Path(path)
    source = source or str(path)
    suffix = _tabular_suffix(path, source)
    try:
        if suffix == ".parquet":
            frame = _read_parquet(path, source, max_rows, max_columns)
        elif suffix == ".jsonl":
            frame = read_jsonl(path, source, max_rows, max_columns)
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
        pieces = jsonl_pieces(path, rows, source)
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


def _parquet_pieces(path: Path, rows: int, source: str) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    refuse_repeated_columns([c.strip() for c in _parquet_columns(path)], source)
    with pq.ParquetFile(path) as parquet:
        for batch in parquet.iter_batches(batch_size=rows):
            if batch.num_rows:
                yield _arrow_frame(batch)


def _read_parquet(path: Path, source: str, max_rows: int | None, max_columns: int | None) -> pd.DataFrame:
    """A Parquet file whose rows and columns, counted in its metadata, are within the limits; the metadata's
    count is not trusted further: reading stops past ``max_rows`` (:func:`~recsys.data.limits.rows_to_read`)
    whatever it says."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        names = [str(name).strip() for name in parquet.schema_arrow.names]
        # leaf columns: a nested column is read as all of its fields
        check_size(source, COLUMNS, max(len(names), parquet.metadata.num_columns), max_columns)
        refuse_repeated_columns(names, source)
        check_size(source, ROWS, parquet.metadata.num_rows, max_rows)
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
