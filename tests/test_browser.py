"""End to end in a real browser: Debian's Chromium, headless, driven by Playwright.

Upload a CSV, rank it, read the ranked table from the page, mark feedback, download the CSV.
Never `playwright install` (it downloads a browser); `.ci/run` installs Debian's chromium.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from clicktune_app.display import RANK_HEADERS, REAL_CLICK
from clicktune_app.layout import build_demo, launch_options
from recsys.data.contract import ITEM, ITEM_ID
from recsys.defaults import BING_NEWS
from recsys.feedback.store import FeedbackStore
from recsys.scoring.loading import load_scorer
from recsys.serving.service import ServedModels
from recsys.serving.settings import AppConfig, Limits

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXAMPLES = BING_NEWS.examples_dir
# A held-out user's list as a .csv, with the user's real clicks in its clicked column.
EXAMPLE = next(e for e in json.loads((EXAMPLES / "examples.json").read_text())["rank"] if e["file"].endswith(".csv"))
CSV = EXAMPLES / EXAMPLE["file"]
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def app(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]
) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("browser-feedback")
    models = ServedModels(load_scorer(str(tiny_model_dir)), None, model_dir=str(tiny_model_dir))  # zero-shot
    limits = Limits()
    clicks = Path(__file__).parent / "data" / "clicks.csv"  # the Model tab's click log, scored in seconds
    demo = build_demo(models, data_dir, limits=limits, eval_file=clicks, train_file=clicks)
    config = replace(AppConfig(), port=free_port(), limits=limits)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_options(config))
    try:
        yield f"http://127.0.0.1:{config.port}/", data_dir
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); .ci/run does")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, app: tuple[str, Path]) -> Iterator[Page]:
    page = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app[0])
    yield page
    page.close()


def ranked_rows(page: Page) -> list[list[str]]:
    """The ranked table as the page shows it: its header row, then one list of cell texts per item."""
    rows = page.locator("#ranked [role=row]")
    return [rows.nth(i).locator("[role=gridcell], [role=columnheader]").all_inner_texts() for i in range(rows.count())]


@pytest.mark.slow
def test_upload_rank_mark_feedback_and_download(page: Page, app: tuple[str, Path], tmp_path: Path) -> None:
    page.locator("#rank-context textarea").fill(EXAMPLE["context"])
    page.locator("#rank-file input[type=file]").set_input_files(CSV)
    expect(page.locator("#rank-file")).to_contain_text(CSV.stem)  # uploaded
    page.locator("#rank-button").click()
    source = pd.read_csv(CSV, dtype=str)
    expect(page.locator("#rank-status")).to_contain_text(f"Ranked {len(source)} items from {CSV.name}")
    clicks = int(source["clicked"].astype(int).sum())
    expect(page.locator("#rank-status")).to_contain_text(f"of {clicks} real clicks in the top 5 · AUC")

    header, *rows = ranked_rows(page)
    assert headers_on_more_than_one_line(page, "#ranked") == []
    assert header == [*RANK_HEADERS, "entities", "popularity"]
    column = {name: header.index(name) for name in header}
    item, real_click = column[ITEM], column[REAL_CLICK]
    assert [row[column["rank"]] for row in rows] == [str(rank) for rank in range(1, 11)]
    assert {row[item] for row in rows} <= set(source[ITEM])
    assert all(0 <= float(row[column["click_probability"]]) <= 1 for row in rows)
    # The user's real clicks are ticked beside their items.
    truth = dict(zip(source[ITEM], source["clicked"], strict=True))
    assert [row[real_click] == "✓" for row in rows] == [truth[row[item]] == "1" for row in rows]

    # Mark the first and third items as clicked, as a stakeholder ticks them.
    for index in (0, 2):
        page.locator("#ranked [role=row]").nth(index + 1).locator("input[type=checkbox]").check()
    posted: list[str] = []
    page.on("request", lambda request: posted.append(request.post_data or "") if request.method == "POST" else None)
    page.locator("#save-feedback").click()
    expect(page.locator("#feedback-status")).to_contain_text("Saved 2 of 10 items as clicked")
    # Only the marks travel back, read from the table in the browser: none of the table's columns.
    assert posted and not [body for body in posted if "click_probability" in body]
    stored = FeedbackStore(app[1]).read()
    assert stored["item"].tolist() == [row[item] for row in rows]
    assert stored.loc[stored["clicked"] == 1, "position"].tolist() == [1, 3]
    assert set(stored["context"]) == {EXAMPLE["context"]}

    with page.expect_download() as download_info:
        page.locator("#rank-download a").first.click()
    path = tmp_path / "ranked.csv"
    download_info.value.save_as(path)
    downloaded = pd.read_csv(path, dtype={ITEM_ID: str})
    assert downloaded[ITEM].tolist() == [row[item] for row in rows]
    assert downloaded[ITEM_ID].tolist() == [row[column[ITEM_ID]] for row in rows]
    assert downloaded["score"].round(4).tolist() == [float(row[column["score"]]) for row in rows]
    assert downloaded["clicked"].tolist() == [int(row[real_click] == "✓") for row in rows]


def headers_on_more_than_one_line(page: Page, table: str, cells: str = "thead th") -> list[str]:
    """The table's header cells (or other ``cells``) whose text the browser broke across lines (each text node's
    line boxes)."""
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].filter(th => {
            const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                if (!node.textContent.trim()) continue;
                const range = document.createRange();
                range.selectNodeContents(node);
                const tops = new Set([...range.getClientRects()].map(rect => Math.round(rect.top)));
                if (tops.size > 1) return true;
            }
            return false;
        }).map(th => th.innerText.trim())""",
        f"{table} {cells}",
    )


@pytest.mark.slow
def test_bad_upload_shows_what_to_fix_and_the_app_stays_up(page: Page, tmp_path: Path) -> None:
    no_item = tmp_path / "titles.csv"
    no_item.write_text("title,price\nred shoes,10\nblue hat,5\n", encoding="utf-8")
    page.locator("#rank-context textarea").fill("warm clothes")
    page.locator("#rank-file input[type=file]").set_input_files(no_item)
    expect(page.locator("#rank-file")).to_contain_text("titles")
    page.locator("#rank-button").click()
    # Said beside the inputs, and nothing of an earlier ranking is left standing as if it answered this one.
    expect(page.locator("#rank-error")).to_contain_text("missing required column(s) item")
    expect(page.locator("#rank-error")).to_contain_text("or choose the column that holds the item text")
    expect(page.locator("#ranked [role=row]")).to_have_count(1)  # the header only
    expect(page.locator("#rank-status")).to_have_text("")

    # The user picks the column that holds the text, and the same page ranks the file.
    page.locator("#rank-column input").fill("title")
    page.locator("#rank-column input").press("Enter")
    page.locator("#rank-button").click()
    expect(page.locator("#rank-status")).to_contain_text("Ranked 2 items from titles.csv")
    expect(page.locator("#rank-error")).to_have_text("")


@pytest.mark.slow
def test_a_phone_reads_the_ranked_items_and_reaches_every_tab(browser: Browser, app: tuple[str, Path]) -> None:
    page = browser.new_page(viewport=PHONE)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app[0])
    try:
        page.locator("#rank-context textarea").fill(EXAMPLE["context"])
        page.locator("#rank-file input[type=file]").set_input_files(CSV)
        expect(page.locator("#rank-file")).to_contain_text(CSV.stem)
        page.locator("#rank-button").click()
        expect(page.locator("#rank-status")).to_contain_text("Ranked")
        # The item's text takes most of the width, in view beside the mark and the rank, and wraps within it.
        cell = page.locator("#ranked [role=row]").nth(1).locator("[role=gridcell]").nth(2)
        box = cell.bounding_box()
        assert box["width"] >= PHONE["width"] / 2 and box["x"] + box["width"] <= PHONE["width"]
        assert cell.inner_text() in set(pd.read_csv(CSV)[ITEM])

        # Every tab is on the bar, none behind Gradio's overflow menu (which it lays out once the page has settled).
        tabs = page.get_by_role("tab")
        expect(tabs).to_have_count(5)
        for tab in tabs.all():
            assert tab.is_visible() and tab.bounding_box()["x"] + tab.bounding_box()["width"] <= PHONE["width"]

        # The Model tab's tables scroll sideways rather than breaking their headers and cells letter by letter.
        page.get_by_role("tab", name="Model").click()
        page.locator("#model-evaluate").click()
        expect(page.locator("#model-metrics table").first).to_be_visible()
        assert headers_on_more_than_one_line(page, "#model-metrics", "th") == []
        assert headers_on_more_than_one_line(page, "#model-metrics", "td") == []
    finally:
        page.close()
