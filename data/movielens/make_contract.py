"""Convert MovieLens ml-latest-small (raw/) into click-log contract files: train, valid, test.

Ratings are read as impressions: rating >= 4 is a click, anything lower a movie shown but not clicked.

- Users are split disjointly by a seeded shuffle: ``--valid-fraction`` for validation, ``--test-fraction``
  for testing (users never trained on), the rest for training.
- Each user's ratings, sorted by (timestamp, movieId), are cut into chunks of ``--chunk`` consecutive
  ratings counted back from the end of the timeline; the last ``--chunks-per-user`` chunks are kept (the
  earliest may be shorter). A chunk is one group, ``u{userId}-{k}``, k = 0, 1, ... in time order.
- ``query`` is the titles of the user's liked movies rated strictly before the chunk's first rating, the
  most recent ``--history``, newest first, joined by " | ". Titles of the chunk's own movies never appear
  (five titles in movies.csv belong to two movieIds each).
- ``item`` is "title | genres" plus " | tags: ..." with the movie's three most frequent tags, counted over
  the training users' tags only, so that no held-out user's activity leaks into item text.

Chunks with no earlier liked movie have an empty query and cannot be scored: they are counted and
reported, never dropped silently. Run: ``python data/movielens/make_contract.py``.

``--training-pool FILE`` writes, instead of the three files, every chunk of every training user's timeline
(not only the last ``--chunks-per-user``) with a ``user`` column: bench/curve_logs.py draws its subsets of
training users from it.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
COLUMNS = ("group", "query", "item", "clicked", "item_id", "rating", "timestamp")
LIKED = 4.0  # the rating from which a movie counts as clicked
TOP_TAGS = 3
NO_GENRES = "(no genres listed)"
USER = "user"  # the training pool's extra column: whose timeline a group comes from, u{userId}
POOL_COLUMNS = (*COLUMNS, USER)


class Movie(NamedTuple):
    title: str
    genres: tuple[str, ...]


class Rating(NamedTuple):
    timestamp: int
    movie_id: int
    rating: str  # kept as written in ratings.csv, e.g. "4.5"

    @property
    def liked(self) -> bool:
        return float(self.rating) >= LIKED


def read_rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != columns:
            raise ValueError(f"{path}: expected the header {','.join(columns)}, got {reader.fieldnames}")
        return list(reader)


def read_movies(path: Path) -> dict[int, Movie]:
    movies = {}
    for row in read_rows(path, ("movieId", "title", "genres")):
        genres = tuple(g for g in row["genres"].split("|") if g and g != NO_GENRES)
        movies[int(row["movieId"])] = Movie(row["title"].strip(), genres)
    return movies


def read_ratings(path: Path, movies: dict[int, Movie]) -> dict[int, list[Rating]]:
    """Each user's ratings in time order, ties broken by movieId."""
    timelines: dict[int, list[Rating]] = defaultdict(list)
    for line, row in enumerate(read_rows(path, ("userId", "movieId", "rating", "timestamp")), start=2):
        movie_id = int(row["movieId"])
        if movie_id not in movies:
            raise ValueError(f"{path}:{line}: movieId {movie_id} is not in movies.csv; restore the raw files")
        timelines[int(row["userId"])].append(Rating(int(row["timestamp"]), movie_id, row["rating"]))
    return {user: sorted(ratings) for user, ratings in timelines.items()}


def count_tags(path: Path, users: set[int]) -> dict[int, list[str]]:
    """Each movie's most frequent tags (lower-cased, ties alphabetical), from the given users' tags only."""
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for row in read_rows(path, ("userId", "movieId", "tag", "timestamp")):
        tag = row["tag"].strip().lower()
        if tag and int(row["userId"]) in users:
            counts[int(row["movieId"])][tag] += 1
    return {
        movie: [tag for tag, _ in sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TAGS]]
        for movie, tags in counts.items()
    }


def item_text(movie: Movie, tags: list[str]) -> str:
    parts = [movie.title]
    if movie.genres:
        parts.append(", ".join(movie.genres))
    if tags:
        parts.append("tags: " + ", ".join(tags))
    return " | ".join(parts)


def split_users(users: list[int], valid_fraction: float, test_fraction: float, seed: int) -> dict[str, set[int]]:
    order = sorted(users)
    random.Random(seed).shuffle(order)
    n_test, n_valid = round(len(order) * test_fraction), round(len(order) * valid_fraction)
    return {
        "train": set(order[n_test + n_valid :]),
        "valid": set(order[n_test : n_test + n_valid]),
        "test": set(order[:n_test]),
    }


def chunk_timeline(timeline: list[Rating], size: int, keep: int) -> list[list[Rating]]:
    """The last ``keep`` chunks of ``size`` ratings, counted back from the end, in time order."""
    chunks = []
    for end in range(len(timeline), 0, -size)[:keep]:
        chunks.append(timeline[max(0, end - size) : end])
    return chunks[::-1]


def history_query(timeline: list[Rating], chunk: list[Rating], movies: dict[int, Movie], limit: int) -> str:
    """The most recent liked titles strictly before the chunk's first rating, newest first."""
    start = chunk[0].timestamp
    own = {movies[r.movie_id].title for r in chunk}
    titles: list[str] = []
    for rating in reversed(timeline):
        title = movies[rating.movie_id].title
        if rating.timestamp < start and rating.liked and title not in own and title not in titles:
            titles.append(title)
            if len(titles) == limit:
                break
    return " | ".join(titles)


def to_contract(
    timelines: dict[int, list[Rating]],
    users: set[int],
    movies: dict[int, Movie],
    tags: dict[int, list[str]],
    chunk_size: int,
    chunks_per_user: int,
    history: int,
) -> tuple[list[dict[str, str]], int]:
    """Contract rows for ``users``, ordered by group then time, and the number of chunks left out."""
    rows, skipped = [], 0
    for user in sorted(users):
        timeline = timelines[user]
        for k, chunk in enumerate(chunk_timeline(timeline, chunk_size, chunks_per_user)):
            query = history_query(timeline, chunk, movies, history)
            if not query:
                skipped += 1
                continue
            rows.extend(
                {
                    "group": f"u{user}-{k}",
                    "query": query,
                    "item": item_text(movies[r.movie_id], tags.get(r.movie_id, [])),
                    "clicked": str(int(r.liked)),
                    "item_id": f"m{r.movie_id}",
                    "rating": r.rating,
                    "timestamp": str(r.timestamp),
                }
                for r in chunk
            )
    return rows, skipped


def summarize(rows: list[dict[str, str]], skipped: int) -> dict[str, float]:
    clicks: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        clicks[row["group"]].add(row["clicked"])
    return {
        "rows": len(rows),
        "users": len({row["group"].rsplit("-", 1)[0] for row in rows}),
        "groups": len(clicks),
        "mixed_groups": sum(labels == {"0", "1"} for labels in clicks.values()),
        "click_rate": sum(row["clicked"] == "1" for row in rows) / max(len(rows), 1),
        "skipped": skipped,
    }


def write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def training_pool(
    raw_dir: Path, chunk: int, history: int, valid_fraction: float, test_fraction: float, seed: int
) -> tuple[list[dict[str, str]], int]:
    """Every chunk of every training user's timeline, with a ``user`` column, and the chunks left out.

    The users, queries, items and tags are train.csv's (same split, same rules): only more chunks per user, so
    train.csv's groups are among these, by their rows. Their names differ: k counts every chunk of the timeline.
    """
    movies = read_movies(raw_dir / "movies.csv")
    timelines = read_ratings(raw_dir / "ratings.csv", movies)
    splits = split_users(list(timelines), valid_fraction, test_fraction, seed)
    tags = count_tags(raw_dir / "tags.csv", splits["train"])
    every_chunk = max(-(-len(timeline) // chunk) for timeline in timelines.values())  # the most any timeline has
    rows, skipped = to_contract(timelines, splits["train"], movies, tags, chunk, every_chunk, history)
    return [{**row, USER: row["group"].rsplit("-", 1)[0]} for row in rows], skipped


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-dir", type=Path, default=HERE / "raw")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--chunk", type=int, default=10, help="ratings per impression (group)")
    parser.add_argument("--chunks-per-user", type=int, default=2, help="the user's last chunks kept")
    parser.add_argument("--history", type=int, default=8, help="most liked titles in a query")
    parser.add_argument("--valid-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--training-pool",
        type=Path,
        help="write every chunk of the training users to this file, with a user column, instead of train/valid/test",
    )
    args = parser.parse_args(argv)

    if args.training_pool:
        split = (args.valid_fraction, args.test_fraction, args.seed)
        rows, skipped = training_pool(args.raw_dir, args.chunk, args.history, *split)
        write_csv(args.training_pool, rows, POOL_COLUMNS)
        s = summarize(rows, skipped)
        print(
            f"{args.training_pool}: {s['rows']} rows, {s['users']} users, {s['groups']} groups "
            f"({s['mixed_groups']} with both a click and a non-click); {s['skipped']} chunks left out"
        )
        return {"training_pool": s}

    movies = read_movies(args.raw_dir / "movies.csv")
    timelines = read_ratings(args.raw_dir / "ratings.csv", movies)
    splits = split_users(list(timelines), args.valid_fraction, args.test_fraction, args.seed)
    tags = count_tags(args.raw_dir / "tags.csv", splits["train"])

    summaries = {}
    for name, users in splits.items():
        rows, skipped = to_contract(timelines, users, movies, tags, args.chunk, args.chunks_per_user, args.history)
        write_csv(args.out_dir / f"{name}.csv", rows)
        s = summaries[name] = summarize(rows, skipped)
        print(
            f"{name}.csv: {s['rows']} rows, {s['users']} users, {s['groups']} groups "
            f"({s['mixed_groups']} with both a click and a non-click), click rate {s['click_rate']:.3f}; "
            f"{s['skipped']} chunks left out (no earlier liked movie)"
        )
    return summaries


if __name__ == "__main__":
    main()
