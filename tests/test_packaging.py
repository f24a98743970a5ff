"""``pip install .``: the wheel holds the package and its console scripts, building it writes nothing into the
checkout (setuptools left ``build/`` and ``clicktune.egg-info/`` there), and the installed app, which has no
bundled data, shows nothing that needs it and advises what works for an installed package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tracked(root: Path) -> list[str]:
    return subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout.split()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    """The wheel built from a copy of the tracked files, the copy's files before the build, and after it."""
    checkout = tmp_path_factory.mktemp("checkout")
    for name in _tracked(REPO):
        if (REPO / name).is_file() and not name.startswith(("data/", "bench/", "docs/", "tests/")):
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, checkout / name)
    before = sorted(p.relative_to(checkout).as_posix() for p in checkout.rglob("*"))
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), "."],
        cwd=checkout, check=True, capture_output=True,
    )  # fmt: skip
    after = sorted(p.relative_to(checkout).as_posix() for p in checkout.rglob("*"))
    (wheel,) = wheels.glob("clicktune-*.whl")
    return wheel, before, after


@pytest.mark.slow
def test_the_wheel_holds_the_package_and_building_it_leaves_the_checkout_as_it_was(built: tuple) -> None:
    wheel, before, after = built
    assert after == before
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.startswith("clicktune-")}
    assert tops == {"recsys", "finetune", "app.py", "clicktune_app"}
    assert {name for name in _tracked(REPO) if name.startswith("recsys/")} <= set(names)  # its wings too
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "clicktune-app = app:main" in entry_points and "clicktune-train = finetune.train:cli" in entry_points
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    pins = [line for line in (REPO / "requirements.txt").read_text().splitlines() if line and line[0].isalpha()]
    assert all(f"Requires-Dist: {pin.split('#')[0].strip()}" in metadata for pin in pins)


# The installed app's page in an empty folder: its markdown, and the labels of its examples and dropdowns.
PAGE = """
import json
from clicktune_app.layout import create_app
from recsys.serving.settings import AppConfig

config = create_app(AppConfig.from_env()).get_config_file()
shown = [
    (c["type"], c["props"].get("label"), str(c["props"].get("value", "")))
    for c in config["components"] if c["type"] in ("markdown", "dataset")
]
print(json.dumps(shown))
"""


@pytest.mark.slow
def test_the_installed_app_in_an_empty_folder_shows_nothing_that_needs_the_bundled_data(
    built: tuple, tmp_path: Path
) -> None:
    """It said "Run `make demo`" and showed empty examples of Bing News users and an empty dropdown of click logs."""
    wheel, _, _ = built
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    env = {k: v for k, v in env.items() if k not in ("MODEL_DIR", "EVAL_FILE", "TRAIN_FILE", "FEEDBACK_DIR")}
    page = subprocess.run(
        [sys.executable, "-c", PAGE], cwd=empty, env=env, check=True, capture_output=True, text=True
    ).stdout.splitlines()[-1]
    shown = json.loads(page)
    text = " ".join(value for _, _, value in shown)
    assert [label for kind, label, _ in shown if kind == "dataset"] == []  # no examples, no splits
    assert "make demo" not in text and "clicktune-train --train-file your_log.csv" in text
