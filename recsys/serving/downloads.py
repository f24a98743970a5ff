"""Files the app hands to people: ranked lists and feedback exports, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd

MAX_AGE_S = 3600  # a download is removed an hour after it was written, and when the app exits
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # a signed number, which a spreadsheet reads as one


def for_spreadsheets(table: pd.DataFrame) -> pd.DataFrame:
    """A copy in which no cell and no column name starts a spreadsheet formula (OWASP CSV injection).

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``,
    which spreadsheets show as text, in the header as in the cells. Numbers stay numbers, whether the
    column holds numbers or text that is one number (``-5``, ``+1.5e3``, as a CSV file's columns are read);
    ``-1+1`` is a formula and is neutralised. Only for files meant for people: a click log meant for
    training is written exactly (``FeedbackStore.export``).
    """
    safe = table.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):  # text, whatever dtype pandas gave it
            safe[column] = safe[column].map(neutralised)
    return safe.set_axis([neutralised(str(name)) for name in safe.columns], axis=1)


def neutralised(value: object) -> object:
    """``value`` with a leading ``'`` where it is text that a spreadsheet would take for a formula."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS and not _NUMBER.fullmatch(value):
        return f"'{value}"
    return value


class Downloads:
    """Files for the user to download (ranked lists, feedback exports), removed an hour later and when the app exits."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="clicktune-downloads-")
        self.root = Path(self._folder.name)

    def write_csv(self, table: pd.DataFrame, name: str) -> Path:
        """``table`` as a CSV for people to open, spreadsheet formulas neutralised (:func:`for_spreadsheets`)."""
        path = self.path(name)
        for_spreadsheets(table).to_csv(path, index=False, quoting=csv.QUOTE_ALL)
        return path

    def path(self, name: str) -> Path:
        """A fresh path for a file called ``name`` (each in its own folder, so that names never clash)."""
        self._prune()
        folder = self.root / uuid.uuid4().hex
        folder.mkdir()
        return folder / name

    def _prune(self) -> None:
        cutoff = time.time() - MAX_AGE_S
        for folder in self.root.iterdir():
            try:
                old = folder.stat().st_mtime < cutoff
            except FileNotFoundError:  # another request pruned it first
                continue
            if old:
                shutil.rmtree(folder, ignore_errors=True)
