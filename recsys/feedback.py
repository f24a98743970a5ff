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
import hashlib
import logging
import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from recsys.contract import CLICKED, GROUP, ITEM, ITEM_ID, POSITION, QUERY, TIMESTAMP, validate_clicks
from recsys.models import METADATA_FILE, ModelMetadata

logger = logging.getLogger(__name__)

DB_FILE = "feedback.sqlite3"
# The app's FEEDBACK_DIR, where the environment does not set one: feedback-data/ beside recsys/.
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / "feedback-data"
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
class ShownItem:
    """An item as the user saw it in a ranked list, and whether they marked it."""

    item: str
    item_id: str
    position: int
    clicked: bool


def model_version(model_dir: str | Path, metadata: ModelMetadata) -> str:
    """A short name for the model that ranked a list: its folder and a digest of its ``clicktune.json``.

    Every training run writes a new ``clicktune.json`` (its step, calibration and metrics), so the
    digest tells runs apart; a model without one is a zero-shot base model.
    """
    model_dir = Path(model_dir)
    metadata_file = model_dir / METADATA_FILE
    if metadata.fine_tuned and metadata_file.is_file():
        return f"{model_dir.name}@{hashlib.sha256(metadata_file.read_bytes()).hexdigest()[:8]}"
    return f"{Path(metadata.base_model).name} (zero-shot)"


class FeedbackStore:
    """Feedback in a SQLite database under ``data_dir``; safe to use from the app's worker threads."""

    def __init__(self, data_dir: str | Path) -> None:
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
        finally:
            db.close()

    def record(self, context: str, shown: Sequence[ShownItem], version: str, list_id: str | None = None) -> str:
        """Store the feedback on one list and return its id; recording a list id again replaces its marks."""
        if not context.strip():
            raise ValueError("feedback needs the context the list was ranked for")
        if not shown:
            raise ValueError("feedback needs the items of the ranked list")
        list_id = list_id or uuid.uuid4().hex
        now = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [
            (list_id, context, s.item, s.item_id, int(s.position), int(bool(s.clicked)), version, now) for s in shown
        ]
        with self._connect() as db:
            db.execute("DELETE FROM feedback WHERE list_id = ?", (list_id,))
            db.executemany(
                "INSERT INTO feedback (list_id, context, item, item_id, position, clicked, model_version, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        logger.info("recorded %d marks on a list of %d (%s)", sum(s.clicked for s in shown), len(shown), list_id)
        return list_id

    def read(self) -> pd.DataFrame:
        """Every stored row, oldest list first, each list in displayed order."""
        with self._connect() as db:
            return pd.read_sql_query("SELECT * FROM feedback ORDER BY created_at, list_id, position", db)

    def summary(self) -> dict[str, int]:
        with self._connect() as db:
            lists, rows, clicks = db.execute(
                "SELECT COUNT(DISTINCT list_id), COUNT(*), COALESCE(SUM(clicked), 0) FROM feedback"
            ).fetchone()
        return {"lists": lists, "rows": rows, "clicks": clicks}

    def export(self, out: str | Path) -> pd.DataFrame:
        """Write the feedback as a click-log CSV (one group per list) and return it, checked against the contract."""
        stored = self.read()
        if stored.empty:
            raise ValueError(f"no feedback in {self.path}; mark some items in the app's Rank tab first")
        clicks = stored.rename(columns={"list_id": GROUP, "context": QUERY, "created_at": TIMESTAMP})
        clicks = validate_clicks(clicks[list(EXPORT_COLUMNS)], source=str(self.path))
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        clicks.to_csv(out, index=False)
        logger.info("exported %d rows (%d clicks) to %s", len(clicks), int(clicks[CLICKED].sum()), out)
        return clicks


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(prog="python -m recsys.feedback", description="The app's feedback store.")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write the marks as a click log that finetune.train reads")
    export.add_argument("--out", required=True, type=Path, help="the click-log CSV to write")
    export.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("FEEDBACK_DIR", DEFAULT_DATA_DIR)),
        help="the app's data directory: $FEEDBACK_DIR, else %(default)s",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not (args.data_dir / DB_FILE).is_file():
        parser.error(f"no feedback database at {args.data_dir / DB_FILE}; pass the app's FEEDBACK_DIR as --data-dir")
    try:
        return FeedbackStore(args.data_dir).export(args.out)
    except ValueError as err:
        parser.error(str(err))


if __name__ == "__main__":
    main()
