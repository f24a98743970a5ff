"""Regenerate the app's screenshots, docs/{rank,classify,compare,model,feedback}.png.

    HF_HUB_OFFLINE=1 .venv/bin/python docs/screenshots.py [--model-dir models/clicktune]

Serves the app over the model (a fine-tuned one shows Compare at its best; without one the app
serves the zero-shot base model) with a fresh feedback store, then drives headless Chromium
(Debian's, at /usr/bin/chromium) through each tab's first example. The Model tab's evaluation
scores the held-out split with the model and the baselines: a few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # app.py sits at the repository root

from app import create_app, launch_options  # noqa: E402
from recsys.settings import AppConfig  # noqa: E402

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


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    expect(page.locator(f"#tab-{name.lower()}")).to_be_visible()


def run_first_example(page: Page, tab: str, button: str, loaded: str) -> None:
    """Click the tab's first example, wait until ``loaded`` (a file name, or an item) shows, and run it."""
    panel = page.locator(f"#tab-{tab}")
    panel.locator("button.gallery-item").first.click()
    expect(panel.get_by_text(loaded).first).to_be_visible()
    expect(page.locator(f"#{tab}-context textarea")).not_to_have_value("")
    page.locator(f"#{button}").click()


def shoot(page: Page, out: Path, name: str) -> None:
    page.wait_for_timeout(500)  # let the last update paint
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    logging.info("wrote %s", out / f"{name}.png")


def take_screenshots(url: str, out: Path, evaluate_timeout_s: float) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS, headless=True)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(120_000)
        page.goto(url)

        run_first_example(page, "rank", "rank-button", "u90900")
        expect(page.locator("#rank-status")).to_contain_text("Ranked")
        for row in (1, 3):
            page.locator("#ranked [role=row]").nth(row).locator("input[type=checkbox]").check()
        page.locator("#save-feedback").click()
        expect(page.locator("#feedback-status")).to_contain_text("Saved")
        shoot(page, out, "rank")

        open_tab(page, "Classify")
        page.locator("#tab-classify button.gallery-item").first.click()
        expect(page.locator("#classify-item textarea")).not_to_have_value("")
        page.locator("#classify-button").click()
        expect(page.locator("#classify-label textarea")).not_to_have_value("")
        shoot(page, out, "classify")

        open_tab(page, "Compare")
        run_first_example(page, "compare", "compare-button", "u90900")
        expect(page.locator("#compare-tuned [role=row]").nth(1)).to_be_visible()
        shoot(page, out, "compare")

        open_tab(page, "Model")
        page.locator("#model-evaluate").click()
        expect(page.locator("#model-metrics table").first).to_be_visible(timeout=evaluate_timeout_s * 1000)
        shoot(page, out, "model")

        open_tab(page, "Feedback")
        expect(page.locator("#feedback-overview")).to_contain_text("click")
        page.locator("#feedback-export").click()
        expect(page.locator("#feedback-file")).to_contain_text("feedback-clicks")
        shoot(page, out, "feedback")
        browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=AppConfig().model_dir, help="the model to serve (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where the PNGs go (default: docs/)")
    parser.add_argument("--port", type=int, default=7899)
    parser.add_argument("--evaluate-timeout", type=float, default=900, help="seconds to wait for the Model tab")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="clicktune-screenshots-") as data_dir:
        # As `make demo` serves it: the local operator may browse and export the feedback.
        config = replace(
            AppConfig.from_env(), model_dir=args.model_dir, data_dir=data_dir, port=args.port, feedback_browsing=True
        )
        demo = create_app(config)
        demo.launch(prevent_thread_lock=True, quiet=True, **launch_options(config))
        try:
            take_screenshots(f"http://127.0.0.1:{config.port}/", args.out, args.evaluate_timeout)
        finally:
            demo.close()


if __name__ == "__main__":
    main()
