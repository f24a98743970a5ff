"""The learning curve's logs and subsets: each bundled log's pool of training users (Bing News' train.csv; for
MovieLens every chunk of its training users' timelines, built once into bench/curve-data/), the files its runs
early-stop on and are scored on, and the nested whole-user subsets of a pool that each seed draws."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from bench.common import DATA, DATASETS
from finetune.data import USER
from recsys.data.contract import GROUP

HERE = Path(__file__).resolve().parent
FRACTIONS = (0.1, 0.25, 0.5, 1.0)  # Bing News'
MOVIELENS_FRACTIONS = (0.025, 0.05)
MOVIELENS_POOL = HERE / "curve-data" / "movielens_train_all.csv"


def make_contract() -> ModuleType:
    """data/movielens/make_contract.py, a script rather than a package module."""
    spec = importlib.util.spec_from_file_location("movielens_make_contract", DATA / "movielens" / "make_contract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_movielens_pool(path: Path) -> None:
    """Every chunk of the MovieLens training users' timelines, written aside and then renamed into ``path``:
    a stopped build leaves no half a pool to train on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    make_contract().main(["--training-pool", str(partial)])
    partial.replace(path)


@dataclass(frozen=True)
class Log:
    pool: Path  # the training users' clicks that the subsets are drawn from
    user: str  # the pool's column that names each row's user
    valid: Path  # training early-stops on it
    held_out: Path  # the curve's y
    fractions: tuple[float, ...]  # of the pool's users, unless --fractions names others
    build: Callable[[Path], None] | None = None  # how to make the pool where it is missing

    def pool_file(self) -> Path:
        if not self.pool.is_file() and self.build is not None:
            self.build(self.pool)
        return self.pool


BING_NEWS, MOVIELENS = DATASETS["bing_news"], DATASETS["movielens"]
LOGS = {
    "bing_news": Log(
        pool=BING_NEWS.path("train"),
        user=GROUP,  # the bundled sample's groups are one user each
        valid=BING_NEWS.path("valid"),
        held_out=BING_NEWS.path("test_users"),
        fractions=FRACTIONS,
    ),
    "movielens": Log(
        pool=MOVIELENS_POOL,
        user=USER,
        valid=MOVIELENS.path("valid"),
        held_out=MOVIELENS.path("test"),
        fractions=MOVIELENS_FRACTIONS,
        build=build_movielens_pool,
    ),
}


def subset_size(fraction: float, users: int) -> int:
    """ceil(fraction × users), without float noise: 0.07 × 100 is 7 users, not 8."""
    return math.ceil(round(fraction * users, 9))


def user_subsets(frame: pd.DataFrame, user: str, fractions: Sequence[float], seed: int) -> dict[float, pd.DataFrame]:
    """Each fraction's rows: those of the first ceil(fraction × users) users of one seeded shuffle of the users.

    Users come whole, and the subsets are nested: a smaller fraction's users are a larger one's first ones.
    """
    users = np.random.default_rng(seed).permutation(np.sort(frame[user].unique()))
    return {f: frame[frame[user].isin(users[: subset_size(f, len(users))])] for f in fractions}
