"""data/movielens/make_contract.py: disjoint users, no look-ahead in queries, no held-out tags in item text."""

from __future__ import annotations

import csv
import importlib.util
import re
from collections import defaultdict
from pathlib import Path

import pytest

from recsys.data.contract import read_clicks

REPO = Path(__file__).resolve().parents[1]
MOVIELENS = REPO / "data" / "movielens"
SPLITS = ("train", "valid", "test")

_spec = importlib.util.spec_from_file_location("movielens_make_contract", MOVIELENS / "make_contract.py")
make_contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_contract)


def write_csv(path: Path, header: str, rows: list[tuple]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header.split(","))
        writer.writerows(rows)


def write_raw(directory: Path, ratings: list[tuple], tags: list[tuple] = ()) -> Path:
    """A raw folder in the ml-latest-small format: movies 1-9 plus two movies (90, 91) sharing one title."""
    directory.mkdir()
    movies = [(i, f"Movie {i} (2000)", "Drama|Comedy") for i in range(1, 10)]
    movies += [(90, "Twin (1999)", "(no genres listed)"), (91, "Twin (1999)", "Horror")]
    write_csv(directory / "movies.csv", "movieId,title,genres", movies)
    write_csv(directory / "ratings.csv", "userId,movieId,rating,timestamp", ratings)
    write_csv(directory / "tags.csv", "userId,movieId,tag,timestamp", list(tags))
    return directory


def read_split(directory: Path, name: str) -> list[dict[str, str]]:
    with (directory / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def by_group(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    groups = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
    return groups


def test_query_holds_only_earlier_likes_never_the_chunk_itself(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ratings = [  # user, movie, rating, timestamp; chunks of 3 from the end: rows 3-5 and 6-8
        (1, 1, "5.0", 10),
        (1, 2, "4.0", 20),  # liked in the same second as the first chunk starts: not "earlier"
        (1, 3, "3.0", 20),
        (1, 90, "4.0", 30),
        (1, 4, "5.0", 40),
        (1, 5, "1.0", 50),
        (1, 91, "4.5", 60),  # same title as movie 90, liked in the first chunk
        (1, 6, "4.0", 70),
        (2, 1, "5.0", 100),  # user 2 rated everything in one second: no chunk has an earlier like
        (2, 2, "5.0", 100),
        (2, 3, "5.0", 100),
        (2, 4, "5.0", 100),
    ]
    raw = write_raw(tmp_path / "raw", ratings)
    argv = ["--raw-dir", str(raw), "--out-dir", str(tmp_path), "--chunk", "3", "--valid-fraction", "0"]
    summaries = make_contract.main([*argv, "--test-fraction", "0"])

    groups = by_group(read_split(tmp_path, "train"))
    assert list(groups) == ["u1-0", "u1-1"]
    assert {row["query"] for row in groups["u1-0"]} == {"Movie 1 (2000)"}
    assert {row["query"] for row in groups["u1-1"]} == {"Movie 4 (2000) | Movie 2 (2000) | Movie 1 (2000)"}
    assert [row["item_id"] for row in groups["u1-1"]] == ["m5", "m91", "m6"]
    assert [row["clicked"] for row in groups["u1-1"]] == ["0", "1", "1"]
    assert groups["u1-0"][1]["item"] == "Twin (1999)"  # "(no genres listed)" is left out
    assert summaries["train"]["skipped"] == 2
    printed = capsys.readouterr().out
    assert "train.csv: 6 rows, 1 users, 2 groups" in printed
    assert "2 chunks left out" in printed


def test_tags_come_from_training_users_only(tmp_path: Path) -> None:
    timeline = [(1, "5.0", 10), (2, "2.0", 20), (3, "4.0", 30), (7, "4.0", 40)]
    ratings = [(user, movie, rating, ts) for user in (1, 2) for movie, rating, ts in timeline]
    tags = [(user, 7, tag, 1) for user in (1, 2) for tag in ("Zeta", "alpha", "beta", "Beta ", "gamma")]
    tags += [(user, 7, f"only-user-{user}", 1) for user in (1, 2) for _ in range(3)]
    raw = write_raw(tmp_path / "raw", ratings, tags)
    split = ["--valid-fraction", "0", "--test-fraction", "0.5"]  # one user trains, the other is held out
    make_contract.main(["--raw-dir", str(raw), "--out-dir", str(tmp_path), "--chunk", "2", *split])

    (train_user,) = {row["group"].split("-")[0][1:] for row in read_split(tmp_path, "train")}
    held_out = read_split(tmp_path, "valid") + read_split(tmp_path, "test")
    (held_out_user,) = {row["group"].split("-")[0][1:] for row in held_out}
    items = {row["item"] for name in SPLITS for row in read_split(tmp_path, name) if row["item_id"] == "m7"}
    # most frequent first, lower-cased ("Beta " joins "beta"), ties alphabetical ("zeta" loses the tie)
    assert items == {f"Movie 7 (2000) | Drama, Comedy | tags: only-user-{train_user}, beta, alpha"}
    assert f"only-user-{held_out_user}" not in "".join(items)


@pytest.fixture(scope="module")
def real_splits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("movielens")
    return out, make_contract.main(["--out-dir", str(out)])


@pytest.mark.slow
def test_real_data_splits_are_disjoint_and_match_the_bundled_files(real_splits: tuple[Path, dict]) -> None:
    out, summaries = real_splits
    users = {name: {row["group"].split("-")[0] for row in read_split(out, name)} for name in SPLITS}
    assert not users["train"] & users["valid"]
    assert not users["train"] & users["test"]
    assert not users["valid"] & users["test"]
    for name in SPLITS:
        assert summaries[name]["users"] == len(users[name]) > 0
        assert (out / f"{name}.csv").read_bytes() == (MOVIELENS / f"{name}.csv").read_bytes(), (
            f"data/movielens/{name}.csv is stale: rerun python data/movielens/make_contract.py"
        )
        assert len(read_clicks(MOVIELENS / f"{name}.csv")) == summaries[name]["rows"]


@pytest.mark.slow
def test_real_data_rows_obey_the_design(real_splits: tuple[Path, dict]) -> None:
    out, _ = real_splits
    raw = MOVIELENS / "raw"
    movies = make_contract.read_movies(raw / "movies.csv")
    liked = defaultdict(list)  # user -> (timestamp, title) of every rating >= 4
    for row in csv.DictReader((raw / "ratings.csv").open(encoding="utf-8")):
        if float(row["rating"]) >= 4:
            liked[row["userId"]].append((int(row["timestamp"]), movies[int(row["movieId"])].title))

    for name in SPLITS:
        groups = by_group(read_split(out, name))
        for group, rows in groups.items():
            user = re.fullmatch(r"u(\d+)-\d", group).group(1)
            assert len(rows) <= 10
            assert [int(r["timestamp"]) for r in rows] == sorted(int(r["timestamp"]) for r in rows)
            assert all(r["clicked"] == str(int(float(r["rating"]) >= 4)) for r in rows)
            (query,) = {r["query"] for r in rows}
            titles = query.split(" | ")
            start = min(int(r["timestamp"]) for r in rows)
            earlier = {title for ts, title in liked[user] if ts < start}
            assert 1 <= len(titles) <= 8
            assert set(titles) <= earlier, f"{name}.csv {group}: a query title is not an earlier like"
            assert not set(titles) & {r["item"].split(" | ")[0] for r in rows}
        assert sum(group.endswith(("-0", "-1")) for group in groups) == len(groups)
