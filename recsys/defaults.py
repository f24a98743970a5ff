"""Where things are when nobody says otherwise: the one place that the app, training and the Space build read.

Paths are absolute, resolved from ``ROOT``:

- in a repository checkout (or a Space bundle, which has the same layout, or an editable install,
  ``pip install -e .``), ``ROOT`` is the folder that holds ``recsys/`` and, beside it, the bundled
  data (``data/bing_news``), whatever the working directory;
- in an installed package (``pip install .``: ``recsys/`` in site-packages, no data beside it),
  ``ROOT`` is the working directory at import time, so that ``clicktune-train`` writes
  ``./models/clicktune``, ``clicktune-app`` serves it and keeps ``./feedback-data``, and nothing
  points into site-packages. The bundled data is not installed; give click logs by flag or
  environment variable there.

The app reads its settings from the environment variables named here; ``spaces/build.py`` sets
them on a Space.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Relative to ROOT, as a Space bundle lays them out too.
MODEL_FOLDER = "models/clicktune"  # what `make demo` trains and the app serves
FEEDBACK_FOLDER = "feedback-data"  # the app's feedback database and cached evaluations
BUNDLED_FOLDER = "data/bing_news"  # the real Bing News click sample
EXAMPLES_FOLDER = "data/examples"  # the app's examples
# The learning curve of both bundled logs (`make curve`): its points, and its chart, which the Model tab shows.
CURVE_FILES = ("bench/curve.json", "docs/curve.png")


def find_root(package_parent: Path) -> Path:
    """The folder that defaults are relative to: ``package_parent`` where the bundled data sits in it, else the
    working directory.

    The data, not ``app.py``, tells a checkout from site-packages: an installed package puts ``app.py`` beside
    ``recsys/`` in site-packages too.
    """
    return package_parent if (package_parent / BUNDLED_FOLDER).is_dir() else Path.cwd()


ROOT = find_root(Path(__file__).resolve().parents[1])  # the repository or a Space bundle; installed: the cwd

MODEL_DIR = ROOT / MODEL_FOLDER
FEEDBACK_DIR = ROOT / FEEDBACK_FOLDER
DB_FILE = "feedback.sqlite3"  # the feedback store's SQLite file in FEEDBACK_DIR
BUNDLED_DATA = ROOT / BUNDLED_FOLDER
EXAMPLES_DIR = ROOT / EXAMPLES_FOLDER
CURVE_FILE, CURVE_CHART = (ROOT / name for name in CURVE_FILES)
TRAIN_FILE = BUNDLED_DATA / "train.csv"
VALID_FILE = BUNDLED_DATA / "valid.csv"  # training selects the model on it
HELD_OUT_FILES = (BUNDLED_DATA / "test_users.csv", BUNDLED_DATA / "test_later.csv")  # never trained or selected on
EVAL_FILE = HELD_OUT_FILES[0]  # the app's Model tab evaluates on it first

HOST, PORT = "127.0.0.1", 7860


def how_to_train() -> str:
    """How to get a fine-tuned model to serve, as a sentence that works where this copy of ClickTune runs: in a
    checkout `make demo`; in an installed package (no bundled data) the console script on one's own click log."""
    if BUNDLED_DATA.is_dir():
        return "Run `make demo` (or set `MODEL_DIR`) to serve a fine-tuned one."
    return (
        "Train one on your click log with `clicktune-train --train-file your_log.csv` (it writes "
        "`./models/clicktune`, which the app then serves), or set `MODEL_DIR` to a model folder or a Hub id."
    )


@dataclass(frozen=True)
class BundledLog:
    """A real click log that ships with ClickTune: its splits, the folder ``make demo`` trains its model into, the
    app's examples of it, and the words a page uses for its items."""

    key: str  # a name for ids and API names: bing_news
    name: str  # as a page shows it: Bing News
    folder: str  # relative to ROOT, as a Space bundle lays it out too
    model_folder: str
    held_out: tuple[str, ...]  # never trained or selected on; the first is the app's default
    train: str = "train.csv"
    valid: str = "valid.csv"  # training selects the model on it
    lists: str = "lists"  # what a group of the log is, in a sentence
    preference: str = "a clicked item above an unclicked one"  # what group AUC counts, in a sentence

    @property
    def data(self) -> Path:
        return ROOT / self.folder

    @property
    def model_dir(self) -> Path:
        return ROOT / self.model_folder

    @property
    def train_file(self) -> Path:
        return self.data / self.train

    @property
    def valid_file(self) -> Path:
        return self.data / self.valid

    @property
    def held_out_files(self) -> tuple[Path, ...]:
        return tuple(self.data / name for name in self.held_out)

    @property
    def examples_dir(self) -> Path:
        return EXAMPLES_DIR / self.key


BING_NEWS = BundledLog(
    "bing_news", "Bing News", BUNDLED_FOLDER, MODEL_FOLDER, ("test_users.csv", "test_later.csv"),
    lists="impressions", preference="a clicked story above an unclicked one",
)  # fmt: skip
MOVIELENS = BundledLog(
    "movielens", "MovieLens", "data/movielens", "models/clicktune-movielens", ("test.csv",),
    lists="rating lists", preference="a liked movie (4 stars or more) above a disliked one",
)  # fmt: skip
BUNDLED_LOGS = (BING_NEWS, MOVIELENS)  # what `make demo` trains and serves, in the order the app shows them


class Env:
    """The names of the app's environment variables (README lists them with their defaults)."""

    MODEL_DIR = "MODEL_DIR"
    FEEDBACK_DIR = "FEEDBACK_DIR"
    EVAL_FILE = "EVAL_FILE"
    TRAIN_FILE = "TRAIN_FILE"
    # A catalog folder (recsys.scoring.catalog) that the Rank tab and /rank_catalog rank whole.
    CATALOG_DIR = "CATALOG_DIR"
    CHALLENGER_DIR = "CHALLENGER_DIR"  # a second model that the first log's Rank tab may interleave with the served one
    MAX_ITEMS = "MAX_ITEMS"
    MAX_UPLOAD_MB = "MAX_UPLOAD_MB"
    MAX_TEXT_CHARS = "MAX_TEXT_CHARS"
    FEEDBACK_BROWSING = "FEEDBACK_BROWSING"
    FEEDBACK_REPO = "FEEDBACK_REPO"  # a Hub dataset repo that the feedback is mirrored to (recsys.feedback.hub_mirror)
    FEEDBACK_PUSH_MINUTES = "FEEDBACK_PUSH_MINUTES"
    HOST = "HOST"
    PORT = "PORT"
    GRADIO_SERVER_NAME = "GRADIO_SERVER_NAME"  # Gradio's own names for HOST and PORT; Spaces set the name
    GRADIO_SERVER_PORT = "GRADIO_SERVER_PORT"
    # Serve a bi-encoder's ONNX export where `python -m recsys.scoring.onnx_export export` passed it: 1 (default) int8
    # or fp32, fp32: fp32 only, 0: PyTorch.
    ONNX = "CLICKTUNE_ONNX"
    # 1: load a model folder's pytorch_model.bin (a torch pickle, which can run code when loaded) where it has no
    # model.safetensors; unset or 0 (default): such a folder is refused.
    ALLOW_PICKLE = "CLICKTUNE_ALLOW_PICKLE"
