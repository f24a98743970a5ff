"""Write the app's one-click examples: held-out users' real lists, with their real clicks.

    python data/examples/make_examples.py [--seed 0] [--out-dir data/examples]

For each bundled click log, ``LISTS`` groups of its held-out file are drawn at random (numpy's
``default_rng(seed)``) among those with at least one click, one non-click and ``MIN_ITEMS`` items;
nothing is hand-picked. A group's context is its ``query`` (the user's earlier clicks) and its
rows, put in a random order (logs list a group's non-clicks first, so file order would give the
answer away), are the candidate list:

- ``bing_news`` (``data/bing_news/test_users.csv``, one group per user): ``item_id``, ``item``,
  ``entities``, ``popularity`` (the item's clicks in ``train.csv``, 0 for an item never shown there),
  ``clicked``;
- ``movielens`` (``data/movielens/test.csv``, ten ratings of a user per group): ``item_id``, ``item``
  (``title (year) | genres | tags: …``), ``year``, ``popularity`` (the movie's likes in ``train.csv``),
  ``clicked``; never the row's own ``rating``, which ``clicked`` is made of.

``clicked`` is the real label, kept as the list's ground truth (``recsys.data.contract.CLICKED``). The
lists are saved in turn as .csv, .tsv and .jsonl (a .txt has no room for ``clicked``) in
``OUT/<log>/``, whose old lists are removed first, beside ``examples.json``: the seed, the source,
how the lists were drawn, the lists with their contexts (``rank``), and for the Classify tab the
first click and first non-click of each list with its context (``classify``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE.parent
SEED = 0
LISTS = 6  # lists drawn per log
MIN_ITEMS = 8  # items in a drawn list, at least
SUFFIXES = (".csv", ".tsv", ".jsonl")  # the drawn lists' formats, in turn
EXAMPLES_FILE = "examples.json"


def year_of(items: pd.Series) -> pd.Series:
    """The year in a MovieLens item's title, ``Title (1997) | genres | …``."""
    return items.str.split(" | ", regex=False).str[0].str.extract(r"\((\d{4})\)\s*$", expand=False).astype(int)


class Log(NamedTuple):
    """A bundled click log the examples are drawn from."""

    name: str  # its folder under data/, and the examples' folder under the output
    held_out: str  # the held-out file the lists are drawn from
    features: Callable[[pd.DataFrame], dict[str, pd.Series]]  # columns beside item_id, item, popularity, clicked
    train: str = "train.csv"  # the training log that popularity is counted in


LOGS = (
    Log("bing_news", "test_users.csv", lambda rows: {"entities": rows["entities"]}),
    Log("movielens", "test.csv", lambda rows: {"year": year_of(rows["item"])}),
)


def read_log(path: Path) -> pd.DataFrame:
    """A click log as text, ``clicked`` as 0/1."""
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    return log.assign(clicked=log["clicked"].astype(int))


def eligible_groups(log: pd.DataFrame) -> list[str]:
    """The groups, in file order, with at least one click, one non-click and ``MIN_ITEMS`` items."""
    stats = log.groupby("group", sort=False)["clicked"].agg(["size", "sum"])
    keep = stats["sum"].gt(0) & stats["sum"].lt(stats["size"]) & stats["size"].ge(MIN_ITEMS)
    return stats.index[keep].tolist()


def draw_lists(log: pd.DataFrame, rng: np.random.Generator) -> list[pd.DataFrame]:
    """``LISTS`` eligible groups drawn without replacement, each with its rows in a random order."""
    groups = rng.choice(eligible_groups(log), size=LISTS, replace=False)
    lists = []
    for group in groups:
        rows = log[log["group"] == group]
        lists.append(rows.iloc[rng.permutation(len(rows))])
    return lists


def candidates_of(rows: pd.DataFrame, log: Log, popularity: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": rows["item_id"],
            "item": rows["item"],
            **log.features(rows),
            "popularity": rows["item_id"].map(popularity).fillna(0).astype(int),
            "clicked": rows["clicked"],
        }
    )


def write_candidates(table: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".jsonl":
        table.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        table.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",", lineterminator="\n")


def write_examples(log: Log, seed: int, out: Path) -> Path:
    """Draw ``log``'s lists, write them and their ``examples.json`` into ``out``; returns that file."""
    held_out = read_log(DATA / log.name / log.held_out)
    train = read_log(DATA / log.name / log.train)
    popularity = train.groupby("item_id")["clicked"].sum()
    out.mkdir(parents=True, exist_ok=True)
    for stale in (p for p in out.iterdir() if p.suffix in SUFFIXES or p.name == EXAMPLES_FILE):
        stale.unlink()
    examples: dict = {
        "seed": seed,
        "source": f"{DATA.name}/{log.name}/{log.held_out}",
        "drawn": f"{LISTS} groups of {log.held_out} with at least one click, one non-click and {MIN_ITEMS}+ items, "
        f"numpy default_rng(seed).choice without replacement, each group's rows then in rng.permutation order",
        "rank": [],
        "classify": [],
    }
    rng = np.random.default_rng(seed)
    for n, rows in enumerate(draw_lists(held_out, rng)):
        group, context = rows["group"].iloc[0], rows["query"].iloc[0]
        path = out / f"{group}{SUFFIXES[n % len(SUFFIXES)]}"
        write_candidates(candidates_of(rows, log, popularity), path)
        examples["rank"].append({"context": context, "file": path.name, "group": group})
        for label in (1, 0):
            item = rows.loc[rows["clicked"] == label, "item"].iloc[0]
            examples["classify"].append({"context": context, "item": item, "clicked": label})
    path = out / EXAMPLES_FILE
    path.write_text(json.dumps(examples, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=SEED, help="the draw's seed")
    parser.add_argument("--out-dir", type=Path, default=HERE, help="where the <log>/ folders go")
    args = parser.parse_args(argv)
    for log in LOGS:
        path = write_examples(log, args.seed, args.out_dir / log.name)
        print(f"{log.name}: {LISTS} lists and {path.name} in {path.parent}")


if __name__ == "__main__":
    main()
