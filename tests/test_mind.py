"""MIND import: small MIND-format files written here, converted, read by the contract, and trained on."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

from recsys.data.contract import CLICKED, GROUP, ITEM, ITEM_ID, POSITION, QUERY, TIMESTAMP, read_clicks
from recsys.data.mind import USER, build_parser, convert, main
from recsys.errors import ContractError, UserError
from recsys.scoring.loading import load_scorer
from recsys.scoring.ranking import rank_candidates

REPO = Path(__file__).resolve().parents[1]

NEWS = [  # id, category, subcategory, title, abstract, url, title entities, abstract entities
    ("N1", "sports", "football_nfl", "Title one", "Abstract one", "https://example.com/1", "[]", "[]"),
    ("N2", "news", "newsus", "Title two", "Abstract two", "https://example.com/2", "[]", "[]"),
    ("N3", "news", "newsworld", "Title three", "", "https://example.com/3", "[]", "[]"),
    ("N4", "news", "newsus", "", "A news item without a title", "https://example.com/4", "[]", "[]"),
]
BEHAVIORS = [  # impression id, user id, time, history, impressions
    ("1", "U1", "11/15/2019 8:55:22 AM", "N1 N9 N2 N3", "N2-1 N9-0 N3-0"),  # N9 is not in news.tsv
    ("2", "U2", "11/15/2019 1:05:00 PM", "", "N1-1 N2-0"),  # a user without history
    ("3", "U3", "11/15/2019 1:06:00 PM", "N8 N9", "N1-0 N2-1"),  # no history id is known
    ("4", "U1", "11/16/2019 12:00:01 AM", "N1", "N9-1 N4-0"),  # no candidate is known
    ("5", "U4", "11/16/2019 9:30:00 PM", "N2", "N1-0 N3-1"),
]


def write_tsv(path: Path, rows: list[tuple[str, ...]]) -> Path:
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def mind(tmp_path: Path) -> tuple[Path, Path]:
    return write_tsv(tmp_path / "behaviors.tsv", BEHAVIORS), write_tsv(tmp_path / "news.tsv", NEWS)


@pytest.fixture
def mind_from_clicks(tmp_path: Path, clicks_path: Path) -> tuple[Path, Path]:
    """The 12 users of tests/data/clicks.csv as MIND: one impression each, with another user's clicks as history
    (so that the tiny model's vocabulary covers the text)."""
    clicks = pd.read_csv(clicks_path)
    ids = {title: f"N{i}" for i, title in enumerate(clicks[ITEM].drop_duplicates(), 1)}
    news = [(i, "news", "newsus", title, "", "", "[]", "[]") for title, i in ids.items()]
    groups = [part for _, part in clicks.groupby(GROUP, sort=False)]
    behaviors = []
    for number, part in enumerate(groups, 1):
        before = groups[number - 2]  # the previous user's clicks
        history = " ".join(ids[t] for t in before.loc[before[CLICKED] == 1, ITEM])
        shown = " ".join(f"{ids[t]}-{label}" for t, label in zip(part[ITEM], part[CLICKED], strict=True))
        behaviors.append((str(number), f"U{number}", f"11/{number}/2019 9:00:00 AM", history, shown))
    return write_tsv(tmp_path / "behaviors.tsv", behaviors), write_tsv(tmp_path / "news.tsv", news)


def test_converts_mind_into_a_click_log_the_contract_reads(mind: tuple[Path, Path], tmp_path: Path) -> None:
    behaviors, news = mind
    out = tmp_path / "clicks.csv"
    report = convert(behaviors, news, out, history_titles=2)
    clicks = read_clicks(out)
    assert list(clicks.columns) == [GROUP, QUERY, ITEM, CLICKED, ITEM_ID, POSITION, TIMESTAMP, USER]
    first = clicks[clicks[GROUP] == "1"]
    assert first[ITEM].tolist() == ["Title two", "Title three"]
    assert first[QUERY].unique().tolist() == ["Title three | Title two"]  # the 2 newest known, newest first
    assert first[CLICKED].tolist() == [1, 0]
    assert first[ITEM_ID].tolist() == ["N2", "N3"]
    assert first[POSITION].tolist() == [1, 3]  # N9, at 2, is left out; the others keep their place
    assert first[TIMESTAMP].unique().tolist() == ["2019-11-15T08:55:22"]
    assert clicks.loc[clicks[GROUP] == "5", TIMESTAMP].unique().tolist() == ["2019-11-16T21:30:00"]
    assert set(clicks[GROUP]) == {"1", "5"} and report.rows == len(clicks) == 4


def test_what_is_left_out_is_counted_and_reported(mind: tuple[Path, Path], tmp_path: Path) -> None:
    report = main(["--behaviors", str(mind[0]), "--news", str(mind[1]), "--out", str(tmp_path / "clicks.csv")])
    assert (report.impressions, report.impressions_written, report.rows) == (5, 2, 4)
    assert (report.empty_history, report.unknown_history, report.no_candidate_left) == (1, 1, 1)
    assert report.missing_candidates == 3  # N9 of impression 1; N9 and N4 (no title) of impression 4
    assert report.missing_history == 3  # N9 of impression 1; N8 and N9 of impression 3
    assert report.news == 3 and report.news_without_title == 1
    assert report.missing_examples == ["N9", "N8", "N4"]
    summary = report.summary()
    assert "2 of 5 impressions written, 4 rows" in summary and "1 impressions with an empty history" in summary


def test_the_abstract_and_category_go_into_the_item_not_the_query(mind: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "clicks.csv"
    convert(*mind, out, history_titles=1, abstract=True, category=True)
    clicks = read_clicks(out)
    first = clicks[clicks[GROUP] == "1"]
    assert first[ITEM].tolist() == ["Title two | Abstract two | news / newsus", "Title three | news / newsworld"]
    assert first[QUERY].unique().tolist() == ["Title three"]  # titles only


BAD_BEHAVIORS = {
    "a missing field": (("2", "U2", "11/15/2019 1:05:00 PM", "N1-1 N2-0"), r"line 2 has 4 tab-separated fields"),
    "a label other than 0/1": (("2", "U2", "11/15/2019 1:05:00 PM", "N1", "N1-2 N2-0"), r"line 2: .*label '2'"),
    "no label (the test split)": (("2", "U2", "11/15/2019 1:05:00 PM", "N1", "N1 N2"), r"line 2: .*has no label"),
    "a bad time": (("2", "U2", "2019-11-15 13:05", "N1", "N1-1 N2-0"), r"line 2: time '2019-11-15 13:05'"),
    "no candidates": (("2", "U2", "11/15/2019 1:05:00 PM", "N1", ""), r"line 2 has no candidates"),
    "no impression id": (("", "U2", "11/15/2019 1:05:00 PM", "N1", "N1-1"), r"line 2 has an empty impression id"),
}


@pytest.mark.parametrize("case", BAD_BEHAVIORS)
def test_a_malformed_behaviors_line_is_named_and_nothing_is_written(
    case: str, mind: tuple[Path, Path], tmp_path: Path
) -> None:
    line, message = BAD_BEHAVIORS[case]
    behaviors = write_tsv(tmp_path / "behaviors.tsv", [BEHAVIORS[0], line, BEHAVIORS[4]])
    out = tmp_path / "clicks.csv"
    with pytest.raises(ContractError, match=rf"behaviors\.tsv: {message}") as caught:
        convert(behaviors, mind[1], out)
    assert caught.value.rows == (2,)
    assert list(tmp_path.glob("clicks.csv*")) == []  # neither the output nor its temporary file


def test_a_malformed_news_line_is_named(mind: tuple[Path, Path], tmp_path: Path) -> None:
    news = write_tsv(tmp_path / "news.tsv", [NEWS[0], NEWS[1][:7]])
    with pytest.raises(ContractError, match=r"news\.tsv: line 2 has 7 tab-separated fields where MIND has 8"):
        convert(mind[0], news, tmp_path / "clicks.csv")


def test_a_non_utf8_line_is_named(mind: tuple[Path, Path], tmp_path: Path) -> None:
    behaviors = tmp_path / "latin1.tsv"
    behaviors.write_bytes(mind[0].read_bytes() + "6\tU\xe9\t11/15/2019 8:55:22 AM\tN1\tN2-1\n".encode("latin-1"))
    with pytest.raises(ContractError, match=r"latin1\.tsv: line 6 is not UTF-8"):
        convert(behaviors, mind[1], tmp_path / "clicks.csv")


def test_news_of_another_split_converts_nothing_and_says_so(mind: tuple[Path, Path], tmp_path: Path) -> None:
    other = write_tsv(tmp_path / "other.tsv", [("N100", "news", "newsus", "Elsewhere", "", "", "[]", "[]")])
    with pytest.raises(ContractError, match=r"no row could be converted \(0 of 5 impressions.*same MIND split"):
        convert(mind[0], other, tmp_path / "clicks.csv")
    assert not (tmp_path / "clicks.csv").exists()


def test_bad_settings_are_refused(mind: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"clicks\.tsv: the output must be a \.csv file"):
        convert(*mind, tmp_path / "clicks.tsv")
    with pytest.raises(ContractError, match=r"clicks\.csv: the folder .*nowhere' does not exist"):
        convert(*mind, tmp_path / "nowhere" / "clicks.csv")
    with pytest.raises(UserError, match=r"--history-titles must be at least 1, not 0"):
        convert(*mind, tmp_path / "clicks.csv", history_titles=0)


def test_help_gives_every_flag_its_help_and_default() -> None:
    text = " ".join(build_parser().format_help().split())
    for flag in ("--behaviors", "--news", "--out", "--history-titles K", "--abstract", "--category"):
        assert flag in text
    assert "newest first (default: 5)" in text and "to the item (default: False)" in text


@pytest.mark.slow
def test_the_command_line_reports_a_bad_line_in_one_line(tmp_path: Path, mind: tuple[Path, Path]) -> None:
    behaviors = write_tsv(tmp_path / "bad.tsv", [BEHAVIORS[0][:4]])
    argv = ["--behaviors", str(behaviors), "--news", str(mind[1]), "--out", str(tmp_path / "clicks.csv")]
    done = subprocess.run([sys.executable, "-m", "recsys.data.mind", *argv], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [f"error: {behaviors}: line 1 has 4 tab-separated fields where MIND has 5 "
                                        "(impression id, user id, time, history, impressions); give the MIND file "
                                        "as released, without a header row"]  # fmt: skip


def peak_memory_converting(lines: int, news: Path, directory: Path) -> tuple[int, int]:
    """The size of a behaviors.tsv of ``lines`` impressions, and the peak of memory allocated converting it."""
    behaviors = write_tsv(directory / f"{lines}.tsv", [(str(i), *BEHAVIORS[0][1:]) for i in range(lines)])
    tracemalloc.start()
    try:
        convert(behaviors, news, directory / "clicks.csv")
        return behaviors.stat().st_size, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_does_not_grow_with_the_behaviors_file(mind: tuple[Path, Path], tmp_path: Path) -> None:
    peak_memory_converting(10, mind[1], tmp_path)  # first-use caches (strptime's patterns) are not the file's
    small_size, small_peak = peak_memory_converting(500, mind[1], tmp_path)
    large_size, large_peak = peak_memory_converting(4000, mind[1], tmp_path)
    assert large_size - small_size > 150_000
    assert large_peak - small_peak < (large_size - small_size) / 10


@pytest.mark.usefixtures("reset_accelerate")
def test_a_converted_log_trains(mind_from_clicks: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path) -> None:
    from finetune.train import main as train

    out = tmp_path / "clicks.csv"
    report = convert(*mind_from_clicks, out)
    clicks = read_clicks(out)
    assert report.impressions_written == clicks[GROUP].nunique() == 12 and report.missing_candidates == 0
    summary = train(
        [
            "--model-name-or-path", str(tiny_model_dir),
            "--train-file", str(out),
            "--eval-file", str(out),
            "--output-dir", str(tmp_path / "model"),
            "--report-to", "none",
            "--max-length", "32",
            "--batch-size", "8",
            "--eval-batch-size", "256",
            "--lora-rank", "0",
            "--max-steps", "2",
        ]
    )  # fmt: skip
    assert summary["steps"] == 2
    scorer = load_scorer(str(tmp_path / "model"))
    ranked = rank_candidates(scorer, clicks[QUERY].iloc[0], clicks[[ITEM]].head(3))
    assert scorer.metadata.fine_tuned and ranked["rank"].tolist() == [1, 2, 3]
