"""Regenerate the app's screenshots: docs/{rank,classify,compare,model,feedback}.png on a laptop screen, and
docs/phone-{rank,compare,model}.png on a phone (390 x 844).

    make demo                  # trains both logs' models and evaluates them on their held-out users; then stop it
    HF_HUB_OFFLINE=1 .venv/bin/python docs/screenshots.py

Serves the app as ``make demo`` does (both bundled logs' models; ``--model-dir`` serves one) with a
fresh feedback store that starts from the held-out evaluations already cached in ``feedback-data``
(where missing, the app runs them: a few minutes on two CPU cores), then drives headless Chromium
(Debian's, at /usr/bin/chromium) through each tab's first example: Bing News on Rank and Classify,
MovieLens on Compare and both on Model.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # app.py sits at the repository root

from clicktune_app.layout import create_app, launch_options  # noqa: E402
from recsys.defaults import FEEDBACK_DIR, MOVIELENS  # noqa: E402
from recsys.model.artifact import is_model_folder  # noqa: E402
from recsys.serving.evaluations import EVALUATIONS_FOLDER  # noqa: E402
from recsys.serving.settings import AppConfig  # noqa: E402

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}  # a laptop screen
PHONE = {"width": 390, "height": 844}


def open_log(page: Page, name: str) -> None:
    """Choose a log at the top, where the app serves more than one."""
    log = page.get_by_role("tab", name=name, exact=True)
    if log.count():
        log.click()


def open_tab(page: Page, ids: str, name: str) -> None:
    page.locator(f"#{ids}tabs").get_by_role("tab", name=name).click()
    expect(page.locator(f"#{ids}tab-{name.lower()}")).to_be_visible()


def run_first_example(page: Page, ids: str, tab: str) -> None:
    """Click the tab's first example, wait until its file shows, and run it."""
    panel = page.locator(f"#{ids}tab-{tab}")
    example = panel.locator("button.gallery-item").first
    example.click()
    expect(panel.get_by_text(example.inner_text().split(":")[0]).first).to_be_visible()
    expect(page.locator(f"#{ids}{tab}-context textarea")).not_to_have_value("")
    page.locator(f"#{ids}{tab}-button").click()


def wait_for_verdict(page: Page, ids: str, timeout_s: float) -> None:
    """The Model tab's verdict: reload until the app has evaluated the model on its held-out users."""
    for _ in range(int(timeout_s / 10) + 1):
        if "being evaluated" not in page.locator(f"#{ids}model-verdict").inner_text():
            return
        page.wait_for_timeout(10_000)
        page.reload()
        open_log(page, "MovieLens" if ids else "Bing News")
        open_tab(page, ids, "Model")
    raise TimeoutError(f"no verdict after {timeout_s:g} s")


def shoot(page: Page, out: Path, name: str) -> None:
    page.wait_for_timeout(500)  # let the last update paint
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    logging.info("wrote %s", out / f"{name}.png")


def take_screenshots(url: str, out: Path, evaluate_timeout_s: float, movielens: str) -> None:
    """``movielens``: the MovieLens panel's id prefix, or "" where the app serves one log only."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS, headless=True)
        for viewport, prefix in ((VIEWPORT, ""), (PHONE, "phone-")):
            page = browser.new_page(viewport=viewport)
            page.set_default_timeout(120_000)
            page.goto(url)

            open_log(page, "Bing News")
            run_first_example(page, "", "rank")
            expect(page.locator("#rank-status")).to_contain_text("Ranked")
            if not prefix:
                for row in (1, 3):
                    page.locator("#ranked [role=row]").nth(row).locator("input[type=checkbox]").check()
                page.locator("#save-feedback").click()
                expect(page.locator("#feedback-status")).to_contain_text("Saved")
            shoot(page, out, f"{prefix}rank")

            if not prefix:
                open_tab(page, "", "Classify")
                page.locator("#tab-classify button.gallery-item").first.click()
                expect(page.locator("#classify-item textarea")).not_to_have_value("")
                page.locator("#classify-button").click()
                expect(page.locator("#classify-label textarea")).not_to_have_value("")
                shoot(page, out, "classify")

            open_log(page, "MovieLens")
            open_tab(page, movielens, "Compare")
            run_first_example(page, movielens, "compare")
            expect(page.locator(f"#{movielens}compare-tuned [role=row]").nth(1)).to_be_visible()
            shoot(page, out, f"{prefix}compare")

            open_tab(page, movielens, "Model")
            wait_for_verdict(page, movielens, evaluate_timeout_s)
            expect(page.locator(f"#{movielens}model-metrics table").first).to_be_visible()
            shoot(page, out, f"{prefix}model")

            if not prefix:
                open_log(page, "Bing News")
                open_tab(page, "", "Feedback")
                expect(page.locator("#feedback-overview")).to_contain_text("click")
                page.locator("#feedback-export").click()
                expect(page.locator("#feedback-file")).to_contain_text("feedback-clicks")
                shoot(page, out, "feedback")
            page.close()
        browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="one model to serve (default: each bundled log's, as make demo serves)")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where the PNGs go (default: docs/)")
    parser.add_argument("--port", type=int, default=7899)
    parser.add_argument("--evaluate-timeout", type=float, default=900, help="seconds to wait for the Model tab")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="clicktune-screenshots-") as data_dir:
        cached = FEEDBACK_DIR / EVALUATIONS_FOLDER
        if cached.is_dir():  # the held-out evaluations `make demo` ran, not the feedback
            shutil.copytree(cached, Path(data_dir) / EVALUATIONS_FOLDER)
        # As `make demo` serves it: the local operator may browse and export the feedback.
        config = replace(
            AppConfig.from_env(), model_dir=args.model_dir, data_dir=data_dir, port=args.port, feedback_browsing=True
        )
        demo = create_app(config)
        demo.launch(prevent_thread_lock=True, quiet=True, **launch_options(config))
        # Served beside Bing News, MovieLens' panel prefixes its ids; served alone, a log's ids have no prefix.
        movielens = f"{MOVIELENS.key}-" if args.model_dir is None and is_model_folder(MOVIELENS.model_dir) else ""
        try:
            take_screenshots(f"http://127.0.0.1:{config.port}/", args.out, args.evaluate_timeout, movielens)
        finally:
            demo.close()


if __name__ == "__main__":
    main()
