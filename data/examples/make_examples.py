"""Write the app's one-click examples from the bundled Bing News test split: ``python data/examples/make_examples.py``.

For each chosen held-out user, the context is the user's ``query`` in the click log (the first half
of the user's clicks in file order, at most 8, joined by " | "); the rest of the items the user was
shown (the other clicks and the non-clicks) are the candidates, with ``item_id``,
``entities`` and ``popularity`` (the item's clicks in train.csv, 0 for an item never shown there)
but not the held-out label.
The lists are saved as .csv, .tsv, .jsonl and .txt, one format each, and ``examples.json``
names them with their contexts, beside (context, item) pairs for the Classify tab.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
BUNDLED = HERE.parent / "bing_news"
USERS = {"u90900": ".csv", "u125700": ".tsv", "u47100": ".jsonl", "u52200": ".txt"}


def split_history(rows: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The context (the group's query: the user's first clicks) and the candidates (the group's rows)."""
    return rows["query"].iloc[0], rows


def write_candidates(rows: pd.DataFrame, path: Path, popularity: pd.Series) -> None:
    table = rows[["item_id", "item", "entities"]].assign(
        popularity=rows["item_id"].map(popularity).fillna(0).astype(int)
    )
    if path.suffix == ".txt":
        path.write_text("\n".join(table["item"]) + "\n", encoding="utf-8")
    elif path.suffix == ".jsonl":
        table.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        table.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")


def main() -> None:
    test = pd.concat(
        pd.read_csv(BUNDLED / f"{name}.csv", dtype=str, keep_default_na=False) for name in ("test_users", "test_later")
    )
    train = pd.read_csv(BUNDLED / "train.csv", dtype=str, keep_default_na=False)
    popularity = train.assign(clicked=train["clicked"].astype(int)).groupby("item_id")["clicked"].sum()
    examples: dict[str, list] = {"rank": [], "classify": []}
    for user, suffix in USERS.items():
        context, rows = split_history(test[test["group"] == user])
        path = HERE / f"{user}{suffix}"
        write_candidates(rows, path, popularity)
        examples["rank"].append({"context": context, "file": path.name})
        for label in ("1", "0"):
            row = rows[rows["clicked"] == label].iloc[0]
            examples["classify"].append({"context": context, "item": row["item"], "clicked": int(label)})
    (HERE / "examples.json").write_text(json.dumps(examples, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
