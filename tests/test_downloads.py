"""Files the app hands to people: unique paths, removed after an hour, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import os
import time

import pandas as pd

from recsys.serving.downloads import Downloads, for_spreadsheets

FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-1+1", "@SUM(A1)", "\tleading tab", "\rcarriage"]


def test_download_paths_never_clash_and_old_ones_are_removed() -> None:
    downloads = Downloads()
    first, second = downloads.path("ranked.csv"), downloads.path("ranked.csv")
    assert first != second and first.name == second.name == "ranked.csv"
    assert first.parent.parent == second.parent.parent == downloads.root
    first.write_text("a")
    second.write_text("b")
    an_hour_ago = time.time() - 3601
    os.utime(first.parent, (an_hour_ago, an_hour_ago))
    downloads.path("feedback-clicks.csv")
    assert not first.parent.exists() and second.read_text() == "b"


def test_text_that_starts_a_formula_is_neutralised_and_numbers_stay_numbers() -> None:
    table = pd.DataFrame({"item": [*FORMULAS, "plain title"], "score": [-2.5, 1.0, -1.0, 0.0, 3.0, 4.0, -0.5]})
    safe = for_spreadsheets(table)
    assert safe["item"].tolist() == [*(f"'{text}" for text in FORMULAS), "plain title"]
    assert safe["score"].tolist() == table["score"].tolist()  # a negative score is a number, not a formula
    assert table["item"].tolist()[0] == FORMULAS[0]  # the caller's table is left as it was


def test_a_downloaded_csv_reads_back_with_every_formula_neutralised() -> None:
    table = pd.DataFrame({"item": FORMULAS, "note": ["a, b", 'say "hi"', "x\ny", "", "=1", "ok"]})
    downloads = Downloads()  # the folder lives as long as the object (the app's lifetime)
    path = downloads.write_csv(table, "ranked.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(table)  # a carriage return or a newline inside a cell does not split a row
    assert all(row["item"].startswith("'") for row in rows)
    assert [row["note"] for row in rows] == ["a, b", 'say "hi"', "x\ny", "", "'=1", "ok"]


def test_column_names_are_neutralised_like_cells_and_numbers_read_as_text_stay_numbers() -> None:
    """A CSV upload's columns arrive as text: ``-5`` in one is a number, not a formula; its header is text too."""
    table = pd.DataFrame({"item": ["a", "b"], '=HYPERLINK("http://x","y")': ["1", "2"], "@SUM(A1)": ["-5", "+1.5e3"]})
    table["-1+1"] = ["-1+1", "-.5"]
    downloads = Downloads()
    with downloads.write_csv(table, "ranked.csv").open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == ["item", '\'=HYPERLINK("http://x","y")', "'@SUM(A1)", "'-1+1"]
    assert rows == [["a", "1", "-5", "'-1+1"], ["b", "2", "+1.5e3", "-.5"]]
