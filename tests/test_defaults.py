"""Where the defaults point: the repository (or a Space bundle) it sits in, else the working directory."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from recsys import defaults
from recsys.defaults import BUNDLED_FOLDER, find_root

REPO = Path(__file__).resolve().parents[1]


def load_copy(package_parent: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``recsys/defaults.py`` copied under ``package_parent/recsys/`` and imported from there, as an install would."""
    target = package_parent / "recsys" / "defaults.py"
    target.parent.mkdir(parents=True)
    shutil.copy(REPO / "recsys" / "defaults.py", target)
    spec = importlib.util.spec_from_file_location("clicktune_defaults_copy", target)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_in_the_repository_defaults_point_into_it_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_root(REPO) == REPO == defaults.ROOT
    assert defaults.MODEL_DIR == REPO / "models" / "clicktune"
    assert defaults.TRAIN_FILE.is_file() and defaults.EVAL_FILE.is_file()


def test_installed_without_data_beside_it_defaults_point_into_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site_packages, work = tmp_path.resolve() / "site-packages", tmp_path.resolve() / "work"
    site_packages.mkdir()
    (site_packages / "app.py").write_text("")  # an install puts app.py beside recsys/: not a sign of a checkout
    work.mkdir()
    monkeypatch.chdir(work)
    installed = load_copy(site_packages, monkeypatch)
    expected = (work, work / "models" / "clicktune", work / "feedback-data")
    assert expected == (installed.ROOT, installed.MODEL_DIR, installed.FEEDBACK_DIR)
    paths = [installed.MODEL_DIR, installed.FEEDBACK_DIR, installed.TRAIN_FILE, installed.EXAMPLES_DIR]
    assert not any(path.is_relative_to(site_packages) for path in paths)


def test_a_space_bundle_is_its_own_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path.resolve() / "space"
    (bundle / BUNDLED_FOLDER).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    bundled = load_copy(bundle, monkeypatch)
    assert (bundle, bundle / BUNDLED_FOLDER / "train.csv") == (bundled.ROOT, bundled.TRAIN_FILE)
