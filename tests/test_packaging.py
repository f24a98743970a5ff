"""``pip install .``: the wheel holds the package and its console scripts, and building it writes nothing into
the checkout (setuptools left ``build/`` and ``clicktune.egg-info/`` there)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tracked(root: Path) -> list[str]:
    return subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout.split()


def test_the_wheel_holds_the_package_and_building_it_leaves_the_checkout_as_it_was(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    for name in _tracked(REPO):
        if (REPO / name).is_file() and not name.startswith(("data/", "bench/", "docs/", "tests/")):
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, checkout / name)
    before = sorted(p.relative_to(checkout).as_posix() for p in checkout.rglob("*"))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), "."],
        cwd=checkout, check=True, capture_output=True,
    )  # fmt: skip
    assert sorted(p.relative_to(checkout).as_posix() for p in checkout.rglob("*")) == before
    (wheel,) = wheels.glob("clicktune-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.startswith("clicktune-")}
    assert tops == {"recsys", "finetune", "app.py", "app_handlers.py"}
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "clicktune-app = app:main" in entry_points and "clicktune-train = finetune.train:cli" in entry_points
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    pins = [line for line in (REPO / "requirements.txt").read_text().splitlines() if line and line[0].isalpha()]
    assert all(f"Requires-Dist: {pin.split('#')[0].strip()}" in metadata for pin in pins)
