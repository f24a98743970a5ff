"""Feedback from the app's users: which items of a ranked list they would click.

Marks are kept in SQLite (WAL mode, so that the app writes while an export reads) at
``DATA_DIR/feedback.sqlite3``. A list a user gave feedback on is stored whole: one row per item
shown, with its context, item, displayed position, whether it was marked, the model version
that ranked it and the time. The unmarked items are the non-clicks that training needs beside
the clicks. A list that interleaves two models (``recsys.feedback.interleave``) stores, in the same transaction, the
team that contributed each item and, in the ``interleaved`` table, the two versions and the list's outcome: which model
its marks credit. Export writes the rows as a click log (see :mod:`recsys.data.contract`), one group per list, which
``finetune.train`` fine-tunes on: :func:`retrain_commands` writes the two commands, as the app and the docs show them.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pandas as pd

from recsys.cli import run_cli
from recsys.data.contract import CLICKED, GROUP, ITEM, ITEM_ID, POSITION, QUERY, TIMESTAMP, validate_clicks
from recsys.data.file_checks import check_not_an_input
from recsys.defaults import DB_FILE, FEEDBACK_DIR, Env
from recsys.errors import UserError
from recsys.feedback.interleave import CHALLENGER, CHAMPION, SHARED, TIE, Comparison
from recsys.feedback.ranked_lists import Interleaving

logger = logging.getLogger(__name__)

MODEL_VERSION = "model_version"  # an extra column of the export: which model ranked the list
SCHEMA_VERSION = 2  # PRAGMA user_version: 1 the feedback table, 2 its team column and the interleaved table
SCHEMA = (  # version 1, as every store began
    """
    CREATE TABLE IF NOT EXISTS feedback (
        id INTEGER PRIMARY KEY,
        list_id TEXT NOT NULL,             -- one ranked list a user gave feedback on; the export's group
        context TEXT NOT NULL,
        item TEXT NOT NULL,
        item_id TEXT NOT NULL,
        position INTEGER NOT NULL CHECK (position >= 1),   -- displayed rank, from 1
        clicked INTEGER NOT NULL CHECK (clicked IN (0, 1)), -- 1: the user marked it
        model_version TEXT NOT NULL,       -- of an interleaved list: the champion's
        created_at TEXT NOT NULL           -- ISO 8601, UTC
    )
    """,
    "CREATE INDEX IF NOT EXISTS feedback_list ON feedback (list_id)",
)
TEAM_COLUMN = (  # version 2: which model contributed the item to an interleaved list; NULL: one model ranked it
    "ALTER TABLE feedback ADD COLUMN team TEXT CHECK (team IN ('champion', 'challenger', 'shared'))"
)
INTERLEAVED = (  # version 2: one row per interleaved list with feedback, written with its feedback rows
    """
    CREATE TABLE IF NOT EXISTS interleaved (
        list_id TEXT PRIMARY KEY,          -- the feedback rows' list_id
        champion_version TEXT NOT NULL,    -- the served model (the rows' model_version)
        challenger_version TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('champion', 'challenger', 'tie')),  -- whom its marks credit
        created_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS interleaved_pair ON interleaved (champion_version, challenger_version)",
)
EXPORT_COLUMNS = (GROUP, QUERY, ITEM, CLICKED, ITEM_ID, POSITION, TIMESTAMP, MODEL_VERSION)
NEXT_MODEL_DIR = "models/clicktune-next"  # where the retrain commands write the next model


def train_command(click_log: str | Path, start_from: str, output_dir: str | Path = NEXT_MODEL_DIR) -> str:
    """The command that fine-tunes ``start_from`` (a model folder, a Hub id or a variable naming one) on an exported
    click log."""
    flags = f"--train-file {click_log} --model-name-or-path {start_from} --output-dir {output_dir}"
    return f"python -m finetune.train {flags}"


def retrain_commands(
    start_from: str,
    click_log: str | Path = "clicks.csv",
    data_dir: str | Path = f"${Env.FEEDBACK_DIR}",
    output_dir: str | Path = NEXT_MODEL_DIR,
) -> str:
    """The commands, one a line, that export the feedback in ``data_dir`` as a click log and fine-tune ``start_from``
    on it into ``output_dir``."""
    export = f"python -m recsys.feedback.store export --out {click_log} --data-dir {data_dir}"
    return f"{export}\n{train_command(click_log, start_from, output_dir)}"


class Mirror(Protocol):
    """Somewhere each saved list is copied as well (``recsys.feedback.hub_mirror.HubMirror``: a Hub dataset repo)."""

    def append(self, rows: pd.DataFrame) -> None: ...


STORED_COLUMNS = ("list_id", "context", "item", "item_id", "position", "clicked", "model_version", "created_at")
ROW_COLUMNS = (*STORED_COLUMNS, "team")  # a row as written
INTERLEAVED_COLUMNS = ("list_id", "champion_version", "challenger_version", "outcome", "created_at")
# A row as mirrored: with its team and, of an interleaved list, the list's challenger and outcome (null otherwise).
MIRROR_COLUMNS = (*ROW_COLUMNS, "challenger_version", "outcome")


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
        with self._connect() as db:
            self._migrate(db)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Bring the schema to ``SCHEMA_VERSION`` in one transaction: a kill leaves the old schema or the new one.

        Read from the tables themselves, not only ``user_version`` (which an older ClickTune sets back to 1): each
        step runs where its column or table is missing. Another process opening the store waits, then finds it done.
        """
        db.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA:
            db.execute(statement)
        if "team" not in {row[1] for row in db.execute("PRAGMA table_info(feedback)")}:
            db.execute(TEAM_COLUMN)
        for statement in INTERLEAVED:
            db.execute(statement)
        (found,) = db.execute("PRAGMA user_version").fetchone()
        db.execute(f"PRAGMA user_version = {max(found, SCHEMA_VERSION)}")

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

    def record(
        self,
        context: str,
        shown: pd.DataFrame,
        version: str,
        list_id: str | None = None,
        interleaving: Interleaving | None = None,
    ) -> str:
        """Store the feedback on one list and return its id; recording a list id again replaces its marks.

        ``context`` is the list's, checked when it was ranked; ``shown`` is a marked list as
        ``recsys.data.contract.validate_marks`` returns it (checked there, at least one item marked): ``item``,
        ``item_id``, ``position`` and ``clicked`` for every item shown. With ``interleaving`` (``version`` is then
        the champion's), each item's team and the list's outcome are stored in the same transaction.
        """
        list_id = list_id or uuid.uuid4().hex
        now = datetime.now(UTC).isoformat(timespec="seconds")
        teams = {s.position: s.team for s in interleaving.shown(shown)} if interleaving else {}
        rows = [
            (list_id, context, str(item), str(item_id), int(position), int(clicked), version, now, teams.get(position))
            for item, item_id, position, clicked in shown[[ITEM, ITEM_ID, POSITION, CLICKED]].itertuples(index=False)
        ]
        compared = []
        if interleaving is not None:
            compared = [(list_id, version, interleaving.challenger, interleaving.outcome(shown), now)]
        self._replace(rows, compared)
        if self.mirror is not None:
            pair = (interleaving.challenger, compared[0][3]) if interleaving else (None, None)
            self.mirror.append(pd.DataFrame([(*row, *pair) for row in rows], columns=list(MIRROR_COLUMNS)))
        logger.info("recorded %d marks on a list of %d (%s)", int(shown[CLICKED].sum()), len(shown), list_id)
        return list_id

    def _replace(self, rows: Sequence[tuple], compared: Sequence[tuple] = ()) -> None:
        """Store rows (``ROW_COLUMNS``) and interleaved lists (``INTERLEAVED_COLUMNS``), each of their lists replacing
        what was stored for it, in one transaction."""
        with self._connect() as db:
            for list_id in dict.fromkeys(row[0] for row in rows):
                db.execute("DELETE FROM feedback WHERE list_id = ?", (list_id,))
                db.execute("DELETE FROM interleaved WHERE list_id = ?", (list_id,))
            writes = {"feedback": (ROW_COLUMNS, rows), "interleaved": (INTERLEAVED_COLUMNS, compared)}
            for table, (columns, values) in writes.items():
                db.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values
                )

    def restore(self, rows: pd.DataFrame) -> int:
        """Store rows saved elsewhere (a mirror's, ``MIRROR_COLUMNS``), as they were, with their interleaved lists'
        teams and outcomes; a list given twice keeps its later rows. Rows mirrored without a team (an older
        ClickTune's) are restored as one model's."""
        rows = rows.reindex(columns=list(MIRROR_COLUMNS)).astype(object)
        rows = rows.where(rows.notna(), None).drop_duplicates(subset=["list_id", "position"], keep="last")
        allowed = {"team": {CHAMPION, CHALLENGER, SHARED, None}, "outcome": {CHAMPION, CHALLENGER, TIE, None}}
        for column, values in allowed.items():
            unknown = sorted(map(str, set(rows[column]) - values))
            if unknown:
                raise UserError(
                    f"mirrored feedback: unknown {column} value(s) {', '.join(unknown[:5])}; a row's {column} is one "
                    f"of {', '.join(sorted(v for v in values if v))} or empty. Nothing was restored"
                )
        records = rows[list(ROW_COLUMNS)].itertuples(index=False, name=None)
        lists = rows.drop_duplicates("list_id", keep="last").dropna(subset=["challenger_version", "outcome"])
        compared = lists[["list_id", "model_version", "challenger_version", "outcome", "created_at"]]
        self._replace(
            [(*r[:4], int(r[4]), int(r[5]), *r[6:]) for r in records],
            list(compared.itertuples(index=False, name=None)),
        )
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

    def comparison(self, champion: str, challenger: str) -> Comparison:
        """The interleaved lists of this pair of model versions, counted for the challenger: won, lost and tied."""
        with self._connect() as db:
            outcomes = db.execute(
                "SELECT outcome FROM interleaved WHERE champion_version = ? AND challenger_version = ?",
                (champion, challenger),
            ).fetchall()
        return Comparison.of([outcome for (outcome,) in outcomes])

    def interleaved_lists(self, champion: str, challenger: str) -> pd.DataFrame:
        """One row per interleaved list of this pair, newest first: when, its context, how many items it showed, the
        marks credited to each team, and its outcome."""
        query = """
            SELECT i.created_at, MIN(f.context) AS context, COUNT(*) AS items,
                   SUM(f.clicked * (f.team = 'champion')) AS champion_clicks,
                   SUM(f.clicked * (f.team = 'challenger')) AS challenger_clicks,
                   SUM(f.clicked * (f.team = 'shared')) AS shared_clicks,
                   i.outcome, i.list_id
            FROM interleaved AS i JOIN feedback AS f ON f.list_id = i.list_id
            WHERE i.champion_version = ? AND i.challenger_version = ?
            GROUP BY i.list_id
            ORDER BY i.created_at DESC, i.list_id
        """
        with self._connect() as db:
            return pd.read_sql_query(query, db, params=(champion, challenger))

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
        prog="python -m recsys.feedback.store",
        description="The app's feedback store.",
        epilog="Installed as a package (pip install .), the same command is clicktune-feedback.",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        help="what to do; `python -m recsys.feedback.store export --help` lists its flags",
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
    clicks = FeedbackStore(args.data_dir).export(args.out)
    logger.info("fine-tune the served model on it: %s", train_command(args.out, f"${Env.MODEL_DIR}"))
    return clicks


def cli() -> None:
    """``python -m recsys.feedback.store``, installed as ``clicktune-feedback``."""
    run_cli(main)


if __name__ == "__main__":
    cli()
