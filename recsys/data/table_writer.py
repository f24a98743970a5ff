"""Writing a table chunk by chunk as .csv, .tsv, .jsonl or .parquet (:class:`TableWriter`, one header, the format
by the suffix), atomically where asked (:func:`written_atomically`, by :func:`recsys.data.atomic_files.atomic_write`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import pandas as pd

from recsys.data.atomic_files import atomic_write
from recsys.errors import UserError


class TableWriter:
    """Writes a table chunk by chunk as .csv, .tsv, .jsonl or .parquet (by ``suffix``), with one header."""

    def __init__(self, path: Path, suffix: str, name: str | None = None) -> None:
        self.path, self.suffix = path, suffix
        self.name = name or path.name  # the output as errors name it (not a hidden partial file)
        self._parquet = None  # pyarrow's writer, opened with the first chunk's schema
        self._text = None if suffix == ".parquet" else path.open("w", encoding="utf-8", newline="")
        self._header = True

    def write(self, frame: pd.DataFrame) -> None:
        if self.suffix == ".parquet":
            self._write_parquet(frame)
        elif self.suffix == ".jsonl":
            frame.to_json(self._text, orient="records", lines=True, force_ascii=False, double_precision=15)
        else:
            sep = "\t" if self.suffix == ".tsv" else ","
            frame.to_csv(self._text, sep=sep, index=False, header=self._header, lineterminator="\n")
        self._header = False

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._parquet is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            self._parquet = pq.ParquetWriter(self.path, table.schema)
        else:
            try:
                table = pa.Table.from_pandas(frame, schema=self._parquet.schema, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
                raise UserError(
                    f"{self.name}: a column holds other types of values here than in the first chunk "
                    f"({err}); write a .csv output instead, or give that column one type in the input"
                ) from None
        self._parquet.write_table(table)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._text is not None:
            self._text.close()

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType) -> None:
        self.close()


@contextmanager
def written_atomically(out: Path) -> Iterator[TableWriter]:
    """A writer of a hidden file beside ``out``, renamed to ``out`` once all is written; removed on failure."""
    with atomic_write(out) as partial, TableWriter(partial, out.suffix.lower(), name=str(out)) as writer:
        yield writer
