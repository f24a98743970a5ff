"""Convert the Microsoft News Dataset (MIND) into a click log of the contract.

    python -m recsys.data.mind --behaviors behaviors.tsv --news news.tsv --out clicks.csv

A MIND split is two tab-separated files without a header row:

    behaviors.tsv  impression id, user id, time ("11/15/2019 8:55:22 AM"), history (the news ids the
                   user clicked before, oldest first, space-separated), impressions (the candidates
                   shown, in shuffled order, space-separated ``newsid-label`` pairs, label 1 for a click)
    news.tsv       news id, category, subcategory, title, abstract, url, title entities, abstract entities

Each candidate of an impression becomes one row of the click log:

    group      the impression id
    query      the titles of the user's ``--history-titles`` most recent clicks, newest first, joined
               by " | " (newest first, so that truncation to a model's max_length drops the oldest)
    item       the title; ``--abstract`` and ``--category`` append the abstract and "category / subcategory"
    clicked    the label
    item_id    the news id
    position   the candidate's place in the impression's list, from 1 (kept where candidates are left out);
               MIND shuffled each impression's list, so this is not where the item was shown
    timestamp  the impression's time in ISO 8601 (MIND gives no time zone; none is added)
    user       the user id, for splitting a log by user

Left out, counted and reported, never silently: an impression with an empty history (nothing to
rank against); a history id that news.tsv lacks, from the query (an impression none of whose
history ids are known is left out); a candidate that news.tsv lacks, its row (the impression's
other rows stay); an impression with no candidate left. A news line with an empty title counts
as missing. A malformed line stops the conversion with an error naming the file and the line.

Memory stays bounded on MIND-large: news.tsv is held as a dict of id to the text the rows need,
behaviors.tsv is read one line at a time, and the CSV is written as it goes, to a temporary file
renamed over ``--out`` at the end, so that a failed run leaves no half-written click log. ``--out``
(and that temporary file) is never one of the inputs, by its own path or through a link.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from recsys.cli import run_cli, say
from recsys.data.atomic_files import atomic_write, partial_path
from recsys.data.cells import MISSING_TEXT
from recsys.data.contract import CLICKED, GROUP, ITEM, ITEM_ID, POSITION, QUERY, TIMESTAMP
from recsys.data.file_checks import check_not_an_input
from recsys.errors import ContractError, UserError

USER = "user"
COLUMNS = (GROUP, QUERY, ITEM, CLICKED, ITEM_ID, POSITION, TIMESTAMP, USER)
BEHAVIORS_FIELDS = ("impression id", "user id", "time", "history", "impressions")
NEWS_FIELDS = (
    "news id", "category", "subcategory", "title", "abstract", "url", "title entities", "abstract entities",
)  # fmt: skip
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"  # MIND's "11/15/2019 8:55:22 AM"
HISTORY_TITLES = 5  # default K: enough context for a user's interests, short enough for a 96-token pair
SEPARATOR = " | "  # between the titles of a query (as in the bundled logs) and the parts of an item
EXAMPLES_KEPT = 5  # unknown news ids named in the report


@dataclass
class Conversion:
    """What a conversion read, wrote and left out; :meth:`summary` is the report."""

    news: int = 0  # news.tsv lines with a title
    news_without_title: int = 0  # news.tsv lines with an empty title: their id counts as missing
    impressions: int = 0  # behaviors.tsv lines
    impressions_written: int = 0
    rows: int = 0  # rows of the click log
    empty_history: int = 0  # impressions left out: the user had no click before
    unknown_history: int = 0  # impressions left out: no history id is in news.tsv
    no_candidate_left: int = 0  # impressions left out: no candidate is in news.tsv
    missing_candidates: int = 0  # candidate rows left out: not in news.tsv
    missing_history: int = 0  # history ids left out of queries: not in news.tsv (counted per impression)
    missing_examples: list[str] = field(default_factory=list)  # the first few unknown news ids

    def note_missing(self, news_id: str) -> None:
        if len(self.missing_examples) < EXAMPLES_KEPT and news_id not in self.missing_examples:
            self.missing_examples.append(news_id)

    def summary(self) -> str:
        lines = [
            f"{self.impressions_written} of {self.impressions} impressions written, {self.rows} rows",
            f"left out: {self.empty_history} impressions with an empty history, "
            f"{self.unknown_history} whose history ids are all missing from news.tsv, "
            f"{self.no_candidate_left} whose candidates are all missing from news.tsv",
            f"missing from news.tsv: {self.missing_candidates} candidates (their rows left out), "
            f"{self.missing_history} history ids (left out of the query)"
            + (f", e.g. {', '.join(self.missing_examples)}" if self.missing_examples else ""),
        ]
        if self.news_without_title:
            lines.append(f"news.tsv: {self.news_without_title} news with an empty title, counted as missing")
        return "\n".join(lines)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """The lines of a UTF-8 file with their numbers from 1, one at a time; blank lines skipped."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise ContractError(
                    str(path), f"line {number} is not UTF-8 text ({err.reason})", rows=(number,)
                ) from None
            line = line.rstrip("\r\n")
            if line.strip():
                yield number, line


def _fields(line: str, number: int, path: Path, names: tuple[str, ...]) -> list[str]:
    fields = line.split("\t")
    if len(fields) != len(names):
        raise ContractError(
            str(path), f"line {number} has {len(fields)} tab-separated fields where MIND has {len(names)} "
            f"({', '.join(names)})", "give the MIND file as released, without a header row", rows=(number,),
        )  # fmt: skip
    return fields


class News(NamedTuple):
    title: str  # what a query is made of
    text: str  # the item: the title, with the abstract and category where asked


def read_news(
    path: Path, abstract: bool = False, category: bool = False, report: Conversion | None = None
) -> dict[str, News]:
    """Each news id's title and item text (the title, then the abstract and "category / subcategory" where asked).

    The first line of an id wins: a news.tsv concatenated from several splits repeats ids.
    """
    report = report if report is not None else Conversion()
    news: dict[str, News] = {}
    for number, line in _lines(path):
        news_id, kind, subkind, title, summary, *_ = _fields(line, number, path, NEWS_FIELDS)
        news_id, title = news_id.strip(), title.strip()
        if not news_id:
            raise ContractError(str(path), f"line {number} has an empty news id", rows=(number,))
        if not title or title.lower() in MISSING_TEXT:  # the contract refuses such items
            report.news_without_title += 1
            continue
        if news_id in news:
            continue
        parts = [title]
        if abstract and summary.strip():
            parts.append(summary.strip())
        if category and kind.strip():
            parts.append(" / ".join(p for p in (kind.strip(), subkind.strip()) if p))
        news[news_id] = News(title, SEPARATOR.join(parts))
    report.news = len(news)
    return news


def _timestamp(text: str, number: int, path: Path) -> str:
    try:
        return datetime.strptime(text.strip(), TIME_FORMAT).isoformat()
    except ValueError:
        raise ContractError(
            str(path), f"line {number}: time {text!r} is not MIND's month/day/year hour:minute:second AM/PM",
            'give it as "11/15/2019 8:55:22 AM"', rows=(number,),
        ) from None  # fmt: skip


def _candidates(text: str, number: int, path: Path) -> list[tuple[str, str]]:
    """The impression's ``(news id, label)`` pairs, in the file's order."""
    pairs = []
    for token in text.split():
        news_id, dash, label = token.rpartition("-")
        if not dash or not news_id:
            raise ContractError(
                str(path), f"line {number}: candidate {token!r} has no label",
                "give labelled impressions (newsid-1 for a click, newsid-0 otherwise); MIND's test split has no "
                "labels and cannot be converted", rows=(number,),
            )  # fmt: skip
        if label not in ("0", "1"):
            raise ContractError(
                str(path), f"line {number}: candidate {token!r} has label {label!r}",
                "labels are 1 (clicked) or 0 (not clicked)", rows=(number,),
            )  # fmt: skip
        pairs.append((news_id, label))
    if not pairs:
        raise ContractError(str(path), f"line {number} has no candidates in its impressions field", rows=(number,))
    return pairs


def _query(history: list[str], news: dict[str, News], limit: int, report: Conversion) -> str:
    """The titles of the ``limit`` most recent history ids that news.tsv knows, newest first."""
    titles = []
    for news_id in reversed(history):
        if news_id not in news:
            report.missing_history += 1
            report.note_missing(news_id)
        elif len(titles) < limit:
            titles.append(news[news_id].title)
    return SEPARATOR.join(titles)


def impression_rows(
    line: str, number: int, path: Path, news: dict[str, News], history_titles: int, report: Conversion
) -> list[tuple]:
    """The click-log rows (in :data:`COLUMNS` order) of line ``number`` of behaviors.tsv; none where it is left out."""
    impression, user, time, history, shown = _fields(line, number, path, BEHAVIORS_FIELDS)
    impression = impression.strip()
    if not impression:
        raise ContractError(str(path), f"line {number} has an empty impression id", rows=(number,))
    timestamp = _timestamp(time, number, path)
    candidates = _candidates(shown, number, path)
    report.impressions += 1
    clicked_before = history.split()
    if not clicked_before:
        report.empty_history += 1
        return []
    query = _query(clicked_before, news, history_titles, report)
    if not query:
        report.unknown_history += 1
        return []
    rows = []
    for position, (news_id, label) in enumerate(candidates, 1):
        if news_id in news:
            rows.append((impression, query, news[news_id].text, label, news_id, position, timestamp, user.strip()))
        else:
            report.missing_candidates += 1
            report.note_missing(news_id)
    if not rows:
        report.no_candidate_left += 1
    return rows


def convert(
    behaviors: Path,
    news: Path,
    out: Path,
    history_titles: int = HISTORY_TITLES,
    abstract: bool = False,
    category: bool = False,
) -> Conversion:
    """Write ``out``, a click-log CSV of the contract, from a MIND split; return what was written and left out."""
    if out.suffix.lower() != ".csv":
        raise ContractError(str(out), f"the output must be a .csv file, not {out.suffix or 'a name without one'!r}")
    if not out.parent.is_dir():
        raise ContractError(str(out), f"the folder {str(out.parent)!r} does not exist", "create it or choose another")
    if history_titles < 1:
        raise UserError(f"--history-titles must be at least 1, not {history_titles}")
    for written in (out, partial_path(out)):
        check_not_an_input(written, [behaviors, news], "write the click log to another file")
    report = Conversion()
    known = read_news(news, abstract=abstract, category=category, report=report)
    with atomic_write(out) as partial:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for number, line in _lines(behaviors):
                rows = impression_rows(line, number, behaviors, known, history_titles, report)
                if rows:
                    writer.writerows(rows)
                    report.impressions_written += 1
                    report.rows += len(rows)
        if report.rows == 0:
            raise ContractError(
                str(behaviors), "no row could be converted (" + report.summary().replace("\n", "; ") + ")",
                "check that news.tsv is the one of the same MIND split",
            )  # fmt: skip
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys.data.mind",
        description="Convert a MIND split (behaviors.tsv, news.tsv) into a ClickTune click-log CSV.",
        epilog="One row per candidate: group = impression id, query = the newest history titles, item = the "
        "title. Impressions with an empty history, and news ids missing from news.tsv, are left out and counted. "
        "Installed as a package (pip install .), the same command is clicktune-mind.",
    )
    parser.add_argument("--behaviors", required=True, type=Path, help="MIND's behaviors.tsv (no header row)")
    parser.add_argument("--news", required=True, type=Path, help="MIND's news.tsv of the same split (no header row)")
    parser.add_argument("--out", required=True, type=Path, help="the click-log CSV to write")
    parser.add_argument(
        "--history-titles", type=int, default=HISTORY_TITLES, metavar="K",
        help="the query holds the titles of the user's K most recent clicks, newest first (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--abstract", action=argparse.BooleanOptionalAction, default=False,
        help="append the abstract to the item (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--category", action=argparse.BooleanOptionalAction, default=False,
        help='append "category / subcategory" to the item (default: %(default)s)',
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> Conversion:
    args = build_parser().parse_args(argv)
    report = convert(args.behaviors, args.news, args.out, args.history_titles, args.abstract, args.category)
    say(f"{args.out}: {report.summary()}")
    return report


def cli() -> None:
    """``python -m recsys.data.mind``, installed as ``clicktune-mind``."""
    run_cli(main)


if __name__ == "__main__":
    cli()
