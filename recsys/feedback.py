"""Feedback from the app's users: which items of a ranked list they would click.

Marks are kept in SQLite (WAL mode, so that the app writes while an export reads) at
``DATA_DIR/feedback.sqlite3``. A list a user gave feedback on is stored whole: one row per item
shown, with its context, item, displayed position, whether it was marked, the model version
that ranked it and the time. The unmarked items are the non-clicks that training needs beside
the clicks. Export writes the rows as a click log (see :mod:`recsys.contract`), one group per list::

    python -m recsys.feedback export --out clicks.csv [--data-dir DIR]
    python -m finetune.train --train-file clicks.csv ...
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pandas as pd

from recsys.cli import run_cli
from recsys.contract import CLICKED, GROUP, ITEM, ITEM_ID, POSITION, QUERY, TIMESTAMP, validate_clicks, validate_marks
from recsys.defaults import FEEDBACK_DIR, Env
from recsys.errors import UserError
from recsys.tables import check_not_an_input

logger = logging.getLogger(__name__)

DB_FILE = "feedback.sqlite3"
MODEL_VERSION = "model_version"  # an extra column of the export: which model ranked the list
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    list_id TEXT NOT NULL,             -- one ranked list a user gave feedback on; the export's group
    context TEXT NOT NULL,
    item TEXT NOT NULL,
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL CHECK (position >= 1),   -- displayed rank, from 1
    clicked INTEGER NOT NULL CHECK (clicked IN (0, 1)), -- 1: the user marked it
    model_version TEXT NOT NULL,
    created_at TEXT NOT NULL           -- ISO 8601, UTC
);
CREATE INDEX IF NOT EXISTS feedback_list ON feedback (list_id);
"""
EXPORT_COLUMNS = (GROUP, QUERY, ITEM, CLICKED, ITEM_ID, POSITION, TIMESTAMP, MODEL_VERSION)


@dataclass(frozen=True)
class RankedList:
    """A list as the server ranked and showed it to one session: what feedback on it may refer to.

    Kept server-side (the app's per-session state), so that a client can only tick or untick the
    items it was shown: the items, their ids and positions come from here, never from the request.
    """

    list_id: str
    context: str
    items: tuple[str, ...]
    item_ids: tuple[str, ...]

    def marked(self, table: pd.DataFrame, context: str) -> pd.DataFrame:
        """The shown items with the marks of ``table`` (the ranked table sent back with its ``mark`` column).

        Refused where the context or the table's items differ from what was ranked: the marks must be
        on this list, in the order it was shown.
        """
        if context != self.context:
            raise UserError("The context changed since this list was ranked: rank again before saving feedback.")
        marks = validate_marks(table).sort_values(POSITION, kind="stable")  # as shown, however the view was sorted
        if marks[ITEM_ID].tolist() != list(self.item_ids) or marks[ITEM].tolist() != list(self.items):
            raise UserError(
                f"The table does not match the {len(self.items)} items this list was ranked with: rank again, "
                "then change only the mark column"
            )
        return marks.assign(**{POSITION: range(1, len(self.items) + 1)})


class Mirror(Protocol):
    """Somewhere each saved list is copied as well (``recsys.feedback_hub.HubMirror``: a Hub dataset repo)."""

    def append(self, rows: pd.DataFrame) -> None: ...


STORED_COLUMNS = ("list_id", "context", "item", "item_id", "position", "clicked", "model_version", "created_at")


class FeedbackStore:
    """Feedback in a SQLite database under ``data_dir``; safe to use from the app's worker threads.

    With a ``mirror``, each saved list is copied there too, after it is committed here.
    """

    def __init__(self, data_dir: str | Path, mirror: Mirror | None = None) -> None:
        self.mirror = mirror
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / DB_FILE
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One short-lived connection per call: sqlite3 connections must not cross threads.
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:  # commits, or rolls back on an error
                yield db
        except sqlite3.DatabaseError as err:
            if type(err) is not sqlite3.DatabaseError:  # a lock, a full disk: not the file's fault
                raise
            raise UserError(
                f"{self.path}: not a readable feedback database ({err}); nothing was changed. Move it aside "
                "(keep it: sqlite3's .recover may save its rows) and start again with an empty store"
            ) from None
        finally:
            db.close()

    def record(self, context: str, shown: pd.DataFrame, version: str, list_id: str | None = None) -> str:
        """Store the feedback on one list and return its id; recording a list id again replaces its marks.

        ``shown`` is a marked list as ``recsys.contract.validate_marks`` returns it: ``item``,
        ``item_id``, ``position`` and ``clicked`` for every item shown.
        """
        if not context.strip():
            raise ValueError("feedback needs the context the list was ranked for")
        if shown.empty:
            raise ValueError("feedback needs the items of the ranked list")
        list_id = list_id or uuid.uuid4().hex
        now = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [
            (list_id, context, str(item), str(item_id), int(position), int(clicked), version, now)
            for item, item_id, position, clicked in shown[[ITEM, ITEM_ID, POSITION, CLICKED]].itertuples(index=False)
        ]
        self._replace(rows)
        if self.mirror is not None:
            self.mirror.append(pd.DataFrame(rows, columns=list(STORED_COLUMNS)))
        logger.info("recorded %d marks on a list of %d (%s)", int(shown[CLICKED].sum()), len(shown), list_id)
        return list_id

    def _replace(self, rows: list[tuple]) -> None:
        """Store rows (``STORED_COLUMNS``), each of their lists replacing what was stored for it, in one transaction."""
        with self._connect() as db:
            for list_id in dict.fromkeys(row[0] for row in rows):
                db.execute("DELETE FROM feedback WHERE list_id = ?", (list_id,))
            db.executemany(
                f"INSERT INTO feedback ({', '.join(STORED_COLUMNS)}) VALUES ({', '.join('?' * len(STORED_COLUMNS))})",
                rows,
            )

    def restore(self, rows: pd.DataFrame) -> int:
        """Store rows saved elsewhere (a mirror's), as they were; a list given twice keeps its later rows."""
        rows = rows.drop_duplicates(subset=["list_id", "position"], keep="last")
        records = list(rows[list(STORED_COLUMNS)].itertuples(index=False, name=None))
        self._replace([(*r[:4], int(r[4]), int(r[5]), *r[6:]) for r in records])
        return rows["list_id"].nunique()

    def read(self) -> pd.DataFrame:
        """Every stored row, oldest list first, each list in displayed order."""
        with self._connect() as db:
            return pd.read_sql_query("SELECT * FROM feedback ORDER BY created_at, list_id, position", db)

    def summary(self, list_id: str | None = None) -> dict[str, int]:
        """Lists, rows (items shown) and clicks stored: in all, or of one list."""
        where, args = ("WHERE list_id = ?", (list_id,)) if list_id else ("", ())
        with self._connect() as db:
            lists, rows, clicks = db.execute(
                f"SELECT COUNT(DISTINCT list_id), COUNT(*), COALESCE(SUM(clicked), 0) FROM feedback {where}", args
            ).fetchone()
        return {"lists": lists, "rows": rows, "clicks": clicks}

    def click_log(self) -> pd.DataFrame:
        """The feedback as a click log (one group per list), checked against the contract."""
        stored = self.read()
        if stored.empty:
            raise UserError("no feedback is stored yet; mark some items in the app's Rank tab first")
        clicks = stored.rename(columns={"list_id": GROUP, "context": QUERY, "created_at": TIMESTAMP})
        return validate_clicks(clicks[list(EXPORT_COLUMNS)], source="the feedback store")

    def export(self, out: str | Path) -> pd.DataFrame:
        """Write the feedback as a click-log CSV for training, exactly as stored, and return it."""
        clicks = self.click_log()
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Every field quoted: an item may hold a comma, a quote or a lone carriage return, and must read back exactly.
        clicks.to_csv(out, index=False, quoting=csv.QUOTE_ALL)
        logger.info("exported %d rows (%d clicks) to %s", len(clicks), int(clicks[CLICKED].sum()), out)
        return clicks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys.feedback",
        description="The app's feedback store.",
        epilog="Installed as a package (pip install .), the same command is clicktune-feedback.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, help="what to do; `python -m recsys.feedback export --help` lists its flags"
    )
    export = commands.add_parser(
        "export",
        help="write the marks as a click log that finetune.train reads",
        description="Write the stored marks as a click log (one group per saved list) that finetune.train reads.",
    )
    export.add_argument("--out", required=True, type=Path, help="the click-log CSV to write")
    export.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get(Env.FEEDBACK_DIR, FEEDBACK_DIR)),
        help=f"the app's data directory: ${Env.FEEDBACK_DIR}, else %(default)s",
    )
    return parser


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = build_parser()
    args = parser.parse_args(argv)
    database = args.data_dir / DB_FILE
    if not database.is_file():
        parser.error(f"no feedback database at {database}; pass the app's FEEDBACK_DIR as --data-dir")
    journal = [database.with_name(database.name + suffix) for suffix in ("-wal", "-shm")]  # SQLite's WAL files
    check_not_an_input(args.out, [database, *journal], "write the click log to another file")
    return FeedbackStore(args.data_dir).export(args.out)


def cli() -> None:
    """``python -m recsys.feedback``, installed as ``clicktune-feedback``."""
    run_cli(main)


if __name__ == "__main__":
    cli()
