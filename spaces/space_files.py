"""What the Space copies from the repository, at the same paths: the app (``app.py``) and the packages it imports,
and the data files it shows. No link is followed into the Space: a link among these files is left out, named in a
warning, and an app file that is a link is refused.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from recsys.defaults import BUNDLED_FOLDER, CURVE_FILES, EXAMPLES_FOLDER, HELD_OUT_FILES, TRAIN_FILE
from recsys.errors import UserError

logger = logging.getLogger("spaces.build")

APP_FILE = "app.py"  # the Space's app_file
PACKAGES = ("recsys", "clicktune_app")  # the library and the app's front end, copied whole, without caches
# What the app reads by default (recsys.defaults), at the same paths relative to app.py: its examples (one
# folder per click log), its held-out and training click logs; the model goes to MODEL_FOLDER, its default MODEL_DIR.
DATA_FILES = (
    *(f"{EXAMPLES_FOLDER}/*/*{suffix}" for suffix in (".json", ".csv", ".tsv", ".jsonl")),
    *(f"{BUNDLED_FOLDER}/{path.name}" for path in (*HELD_OUT_FILES, TRAIN_FILE)),
    f"{BUNDLED_FOLDER}/raw/LICENSE",  # the sample's MIT licence travels with it
    f"{BUNDLED_FOLDER}/raw/PROVENANCE.md",
    # The MovieLens examples are a transformation of ml-latest-small, whose licence must travel with them.
    "data/movielens/raw/README.txt",
    "data/movielens/raw/PROVENANCE.md",
    *CURVE_FILES,  # the Model tab's learning curve, where `make curve` drew it
)


def _is_link(repo: Path, source: Path) -> bool:
    """Whether ``source``, or a folder between the repository and it, is a link."""
    relative = source.relative_to(repo)
    return any((repo / path).is_symlink() for path in (relative, *relative.parents[:-1]))


def _leave_out_link(repo: Path, source: Path) -> bool:
    """Whether to leave ``source`` out of the Space as a link, saying so: a link is never followed into it."""
    if not _is_link(repo, source):
        return False
    logger.warning("%s: left out of the Space: a link, which the build never follows", source.relative_to(repo))
    return True


def copy_data(repo: Path, out: Path) -> list[str]:
    """Copy the repository's files that match ``DATA_FILES`` into ``out``, keeping their paths; links left out."""
    copied = []
    for pattern in DATA_FILES:
        for source in sorted(repo.glob(pattern)):
            if _leave_out_link(repo, source) or not source.is_file():
                continue
            target = out / source.relative_to(repo)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            copied.append(source.relative_to(repo).as_posix())
    return copied


def check_app_file(repo: Path) -> None:
    """The repository's app file is there, and no link."""
    if not (repo / APP_FILE).is_file():
        raise FileNotFoundError(f"{repo / APP_FILE} not found: the Space serves the repository's app")
    if _is_link(repo, repo / APP_FILE):
        raise UserError(f"{repo / APP_FILE} is a link, which the build never follows; put the file itself there")


def copy_app(repo: Path, out: Path) -> None:
    """Copy the app file and its packages into ``out``; links in the packages left out."""
    shutil.copy2(repo / APP_FILE, out / APP_FILE)
    for package in PACKAGES:
        shutil.copytree(repo / package, out / package, ignore=_package_files(repo))


def _package_files(repo: Path) -> Callable[[str, list[str]], set[str]]:
    """``copytree``'s ``ignore``: a package without caches, and without links (each named in a warning)."""
    caches = shutil.ignore_patterns("__pycache__", "*.pyc")

    def ignore(folder: str, names: list[str]) -> set[str]:
        left_out = set(caches(folder, names))
        return left_out | {
            name for name in names if name not in left_out and _leave_out_link(repo, Path(folder) / name)
        }

    return ignore
