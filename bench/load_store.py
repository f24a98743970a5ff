"""bench.load's check of the feedback store, read directly with SQLite after each phase: every acknowledged list
stored with exactly the marks that were sent (none lost, none changed), every stored list whole (positions 1..n of
a list a client sent), and ``PRAGMA integrity_check`` ok."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.load_clients import Feedback, Row

ListKey = tuple[str, frozenset[str]]  # a list's context and the set of its items: Request.key


@dataclass
class StoreCheck:
    """The feedback store against what the clients sent."""

    integrity: str
    stored_lists: int
    acknowledged_lists: int
    acknowledged_marks: int
    lost_lists: int = 0
    lost_marks: int = 0
    changed_lists: int = 0  # stored, but not with the rows and marks that were acknowledged
    partial_lists: int = 0  # positions not 1..n, or not the whole list that was sent
    unknown_lists: int = 0  # no client sent such a list

    @property
    def ok(self) -> bool:
        problems = (self.lost_lists, self.changed_lists, self.partial_lists, self.unknown_lists)
        return self.integrity == "ok" and not any(problems)

    def describe(self) -> str:
        return (
            f"{self.acknowledged_lists} acknowledged lists ({self.acknowledged_marks} marks): "
            f"{self.lost_lists} lost ({self.lost_marks} marks), {self.changed_lists} changed; "
            f"{self.stored_lists} lists stored, {self.partial_lists} partial, {self.unknown_lists} unknown; "
            f"integrity_check {self.integrity}"
        )


def read_store(db_path: Path) -> tuple[str, dict[str, tuple[str, list[Row]]]]:
    """The store's integrity_check, and each stored list's context and rows by list id."""
    with sqlite3.connect(db_path, timeout=30) as db:
        integrity = "; ".join(row[0] for row in db.execute("PRAGMA integrity_check"))
        rows = db.execute("SELECT list_id, context, position, item_id, item, clicked FROM feedback").fetchall()
    db.close()
    stored: dict[str, tuple[str, list[Row]]] = {}
    for list_id, context, position, item_id, item, clicked in rows:
        stored.setdefault(list_id, (context, []))[1].append((position, item_id, item, clicked))
    return integrity, stored


def check_store(db_path: Path, sent: list[Feedback]) -> StoreCheck:
    """Every acknowledged list stored with exactly its marks; every stored list whole and one that was sent."""
    integrity, stored = read_store(db_path)
    by_key = {
        (context, frozenset(r[2] for r in list_rows)): sorted(list_rows) for context, list_rows in stored.values()
    }
    acknowledged = [f for f in sent if f.acknowledged]
    check = StoreCheck(integrity, len(stored), len(acknowledged), sum(f.marks for f in acknowledged))
    for feedback in acknowledged:
        found = by_key.get(feedback.request.key)
        if found is None:
            check.lost_lists += 1
            check.lost_marks += feedback.marks
        elif found != sorted(feedback.rows):
            check.changed_lists += 1
    count_stored_lists(check, by_key, {f.request.key: len(f.rows) for f in sent})
    check.unknown_lists += len(stored) - len(by_key)  # two stored lists with the same content
    return check


def count_stored_lists(check: StoreCheck, by_key: dict[ListKey, list[Row]], sent_lengths: dict[ListKey, int]) -> None:
    """Count into ``check`` the stored lists that are not a whole list some client sent."""
    sent_sets = defaultdict(list)
    for context, items in sent_lengths:
        sent_sets[context].append(items)
    for (context, items), list_rows in by_key.items():
        if (context, items) in sent_lengths:
            check.partial_lists += [r[0] for r in list_rows] != list(range(1, sent_lengths[context, items] + 1))
        elif any(items < whole for whole in sent_sets[context]):  # some rows of a list that was sent
            check.partial_lists += 1
        else:
            check.unknown_lists += 1
