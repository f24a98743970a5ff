"""Convert the DKN Bing News sample (raw/) into click-log contract files: train, valid, test_users, test_later.

Raw format: ``user_id<TAB>title<TAB>label<TAB>entity_id:entity_name;...``.

- ``query`` is the user's context: the first clicked titles in raw_train.txt, in file order, half of
  the user's clicks (rounded up) and at most ``--history``, joined by " | ". Those clicks are the
  context and not rows; every other row of the user is a row of the group, all with the same
  query. test_later rows get the same context (train-file clicks only).
- One query per group matters. An earlier version gave each row "the user's other clicks" as its
  query, so a click's query lacked its own title and a non-click's did not: whether a row's query
  differed from its group's usual one told clicks from non-clicks with AUC 0.86 on valid.csv, a
  label leak that rewards models for how their scores move with the query, not with the item.
- ``group`` is the user; ``item_id`` a short hash of the title; ``entities`` the entity names.
- Users are split, disjointly: a seeded fraction of the train-file users is held out for
  validation (tuning and early stopping) and another for testing (users never trained on).
- Two held-out sets that measure different things:
  test_users.csv = the held-out test users' train-file rows (new users, same time window);
  test_later.csv = every row of raw_test.txt: the authors' separate test file, a later window whose
  titles never occur in raw_train.txt, for users of all three splits (queries from train-file clicks).

Rows of a user without any click in raw_train.txt have no context and cannot be scored: they are
counted and reported, never dropped silently. Run: ``python data/bing_news/make_contract.py``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import random
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ("group", "query", "item", "clicked", "item_id", "entities")


def read_raw(path: Path) -> list[dict[str, str]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) != 4 or fields[2] not in ("0", "1"):
            raise ValueError(f"{path}:{number}: expected user<TAB>title<TAB>0|1<TAB>entities, got {line!r}")
        user, title, label, entities = fields
        names = [e.split(":", 1)[1] for e in entities.split(";") if ":" in e]
        rows.append({"user": user, "title": title.strip(), "clicked": label, "entities": "; ".join(names)})
    return rows


def click_history(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    """Each user's distinct clicked titles, in file order."""
    history: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row["clicked"] == "1" and row["title"] not in history[row["user"]]:
            history[row["user"]].append(row["title"])
    return history


def context_titles(history: list[str], limit: int) -> list[str]:
    """The user's context: the first half of their clicked titles (rounded up), at most ``limit``."""
    return history[: min(limit, math.ceil(len(history) / 2))]


def to_contract(rows: list[dict[str, str]], history: dict[str, list[str]], limit: int) -> tuple[list, int]:
    """Contract rows: each user's rows but their context clicks, with the context as the query."""
    out, unscorable = [], 0
    for row in rows:
        context = context_titles(history.get(row["user"], []), limit)
        if not context:
            unscorable += 1
            continue
        if row["title"] in context:  # the context itself, not a row to rank
            continue
        out.append(
            {
                "group": f"u{row['user']}",
                "query": " | ".join(context),
                "item": row["title"],
                "clicked": row["clicked"],
                "item_id": hashlib.sha1(row["title"].encode()).hexdigest()[:10],
                "entities": row["entities"],
            }
        )
    return out, unscorable


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-dir", type=Path, default=HERE / "raw")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--history", type=int, default=8, help="most clicked titles in a query")
    parser.add_argument("--valid-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    train_raw = read_raw(args.raw_dir / "raw_train.txt")
    test_raw = read_raw(args.raw_dir / "raw_test.txt")
    history = click_history(train_raw)

    users = sorted({row["user"] for row in train_raw}, key=int)
    random.Random(args.seed).shuffle(users)
    n_test, n_valid = round(len(users) * args.test_fraction), round(len(users) * args.valid_fraction)
    test_users, valid_users = set(users[:n_test]), set(users[n_test : n_test + n_valid])

    splits = {
        "train": [r for r in train_raw if r["user"] not in test_users | valid_users],
        "valid": [r for r in train_raw if r["user"] in valid_users],
        "test_users": [r for r in train_raw if r["user"] in test_users],
        "test_later": test_raw,
    }
    for name, rows in splits.items():
        contract_rows, unscorable = to_contract(rows, history, args.history)
        write_csv(args.out_dir / f"{name}.csv", contract_rows)
        groups = len({r["group"] for r in contract_rows})
        print(
            f"{name}.csv: {len(contract_rows)} rows, {groups} users; {unscorable} rows left out (no click: no context)"
        )


if __name__ == "__main__":
    main()
