"""Serving without Gradio: settings, the served models, limits on requests, uploads, feedback and cached evaluations.

``app.py`` is one front end over this module; a CLI or another web framework can be a second.
Everything here raises :class:`~recsys.contract.ContractError` or :class:`InputError` (both
``ValueError``) with a message meant for the user; a front end shows it as it is.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from recsys.artifact import DEFAULT_MODEL, ModelMetadata, is_hub_id, is_model_folder, local_model_dir, model_version
from recsys.contract import (
    ITEM,
    ITEM_ID,
    ContractError,
    numeric_columns,
    pasted_candidates,
    read_candidate_table,
    read_candidates,
    read_clicks,
    validate_candidates,
    validate_marks,
)
from recsys.defaults import EVAL_FILE, FEEDBACK_DIR, HELD_OUT_FILES, HOST, MODEL_DIR, PORT, TRAIN_FILE, VALID_FILE, Env
from recsys.errors import UserError
from recsys.evaluate import Evaluation, Progress, evaluate
from recsys.feedback import FeedbackStore
from recsys.scoring import Scorer, load_scorer

logger = logging.getLogger(__name__)

# Cached evaluations, in the feedback folder so that they outlive a restart; v2: recsys.evaluate.Evaluation's JSON.
EVALUATIONS_FOLDER = "evaluations/v2"
DOWNLOAD_MAX_AGE_S = 3600


class InputError(UserError):
    """A request that breaks a limit or leaves something out; the message says what to change."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; larger input is refused with a message that says so."""

    max_items: int = 1000  # candidates per list (MAX_ITEMS)
    max_upload_mb: float = 5.0  # size of an uploaded file (MAX_UPLOAD_MB)
    max_text_chars: int = 5000  # characters in a context or an item (MAX_TEXT_CHARS)
    max_extra_columns: int = 64  # columns of a candidate file kept beside the ranking


@dataclass(frozen=True)
class AppConfig:
    """The app's settings; :meth:`from_env` reads them from the variables of ``recsys.defaults.Env``."""

    model_dir: str = str(MODEL_DIR)  # a saved folder or a Hub id; where there is none, the zero-shot base model
    data_dir: str = str(FEEDBACK_DIR)  # feedback (SQLite) and cached evaluations
    eval_file: str = str(EVAL_FILE)  # the Model tab's first click log
    train_file: str = str(TRAIN_FILE)  # for the popularity baseline
    host: str = HOST
    port: int = PORT
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AppConfig:
        env = dict(os.environ if env is None else env)
        default = cls()
        try:
            limits = Limits(
                max_items=int(env.get(Env.MAX_ITEMS, default.limits.max_items)),
                max_upload_mb=float(env.get(Env.MAX_UPLOAD_MB, default.limits.max_upload_mb)),
                max_text_chars=int(env.get(Env.MAX_TEXT_CHARS, default.limits.max_text_chars)),
            )
            port = int(env.get(Env.PORT, default.port))
        except ValueError as err:
            raise UserError(f"MAX_ITEMS, MAX_UPLOAD_MB, MAX_TEXT_CHARS and PORT must be numbers: {err}") from err
        return cls(
            model_dir=env.get(Env.MODEL_DIR, default.model_dir),
            data_dir=env.get(Env.FEEDBACK_DIR, default.data_dir),
            eval_file=env.get(Env.EVAL_FILE, default.eval_file),
            train_file=env.get(Env.TRAIN_FILE, default.train_file),
            # A Hugging Face Space sets GRADIO_SERVER_NAME (0.0.0.0); HOST, where given, wins.
            host=env.get(Env.HOST) or env.get(Env.GRADIO_SERVER_NAME) or default.host,
            port=port,
            limits=limits,
        )


@dataclass
class ServedModels:
    """The model a front end serves, its zero-shot base (for a fine-tuned model), and what to tell the user."""

    scorer: Scorer
    base: Scorer | None = None  # None: the served model is itself zero-shot
    model_dir: str | None = None  # the folder it came from; None for the packaged base model
    note: str = ""

    @property
    def metadata(self) -> ModelMetadata:
        return self.scorer.metadata

    @property
    def version(self) -> str:
        return model_version(self.model_dir, self.metadata)

    @property
    def retrain_from(self) -> str:
        """Where retraining starts: the served model where it was fine-tuned, else its base."""
        return self.model_dir if self.metadata.fine_tuned and self.model_dir else self.metadata.base_model


def load_served_models(model_dir: str | Path) -> ServedModels:
    """The served model from a folder or a Hub id (downloaded once); the zero-shot base model where there is none."""
    if not Path(model_dir).exists() and is_hub_id(str(model_dir)):
        try:
            model_dir = local_model_dir(str(model_dir))
        except Exception as err:  # offline, unknown repo, no access: say which and how to fix it
            raise UserError(
                f"MODEL_DIR={model_dir} is no folder here and could not be fetched from the Hub ({err}); "
                "set MODEL_DIR to a model folder, or to a Hub id reachable from this machine"
            ) from err
    if not is_model_folder(model_dir):
        note = (
            f"No trained model at `{model_dir}`: this app serves the **zero-shot** base model `{DEFAULT_MODEL}`. "
            "Run `make demo` (or set `MODEL_DIR`) to serve a fine-tuned one."
        )
        return ServedModels(load_scorer(None), note=note)
    scorer = load_scorer(str(model_dir))
    if not scorer.metadata.fine_tuned:
        note = f"`{model_dir}` was not fine-tuned: this app serves it **zero-shot**."
        return ServedModels(scorer, model_dir=str(model_dir), note=note)
    return ServedModels(scorer, load_scorer(scorer.metadata.base_model), str(model_dir))


# -- requests --------------------------------------------------------------------------------------------


def check_text(text: str | None, what: str, limits: Limits) -> str:
    """A context or an item, stripped; refused where empty or longer than the limit."""
    text = (text or "").strip()
    if not text:
        raise InputError(f"Enter the {what}.")
    if len(text) > limits.max_text_chars:
        raise InputError(
            f"The {what} has {len(text)} characters, more than the limit of {limits.max_text_chars} "
            "(MAX_TEXT_CHARS); shorten it."
        )
    return text


def check_upload(path: Path, limits: Limits) -> None:
    if not path.is_file():
        raise InputError(f"{path.name}: the upload did not arrive; upload it again.")
    size_mb = path.stat().st_size / 2**20
    if size_mb > limits.max_upload_mb:
        raise InputError(
            f"{path.name} is {size_mb:.2f} MB, more than the limit of {limits.max_upload_mb:g} MB "
            "(MAX_UPLOAD_MB); upload a shorter list."
        )


def read_candidate_input(
    file: str | Path | None, pasted: str | None, item_column: str | None, limits: Limits
) -> tuple[pd.DataFrame, str]:
    """The candidate list from an uploaded file or pasted lines (exactly one), checked, and where it came from."""
    path, pasted = (Path(file) if file else None), (pasted or "").strip()
    if path is not None and pasted:
        raise InputError("Give the items either as a file or pasted, not both: clear one of them.")
    if path is None and not pasted:
        raise InputError("No items: upload a file (.csv, .tsv, .jsonl, .parquet, .txt) or paste items, one per line.")
    sizes = {"max_items": limits.max_items, "max_text_chars": limits.max_text_chars}
    if path is None:
        source = "the pasted list"
        return validate_candidates(pasted_candidates(pasted, source), source, **sizes), source
    check_upload(path, limits)
    column = (item_column or "").strip() or ITEM
    try:
        candidates = read_candidates(path, column, source=path.name, **sizes)
    except ContractError as err:
        if err.missing != (column,):
            raise
        raise replace(err, fix=f"{err.fix}, or choose the column that holds the item text") from err
    extra = [c for c in candidates.columns if c not in (ITEM, ITEM_ID)]
    if len(extra) > limits.max_extra_columns:
        raise InputError(
            f"{path.name} has {len(extra)} columns besides item and item_id; the ranked table keeps at most "
            f"{limits.max_extra_columns}. Drop the columns you don't need and upload it again."
        )
    return candidates, path.name


def inspect_candidate_file(path: Path, limits: Limits) -> tuple[list[str], str | None, list[str]]:
    """An uploaded file's columns that may hold the item text, the one to preselect, and its numeric columns."""
    check_upload(path, limits)
    table = read_candidate_table(path, path.name)
    columns = [str(c) for c in table.columns]
    numeric = numeric_columns(table)
    return [c for c in columns if c not in numeric] or columns, ITEM if ITEM in columns else None, numeric


def blend_weights(table: pd.DataFrame | None) -> dict[str, float]:
    """Feature weights from a (feature, weight) table; blank rows and zero weights are left out."""
    weights: dict[str, float] = {}
    for feature, weight in [] if table is None or table.empty else table.iloc[:, :2].itertuples(index=False):
        # A blank cell arrives as None, "" or (from Gradio's frame) NaN.
        feature = "" if pd.isna(feature) else str(feature).strip()
        if not feature or pd.isna(weight) or str(weight).strip() == "":
            continue
        try:
            value = float(weight)
        except ValueError:
            raise InputError(f"The weight of {feature!r} is {weight!r}; give a number such as 0.5 or -1") from None
        if not math.isfinite(value):
            raise InputError(f"The weight of {feature!r} must be a finite number")
        if value:
            weights[feature] = value
    return weights


def save_marks(store: FeedbackStore, version: str, context: str, table: pd.DataFrame, ranked: dict | None) -> str:
    """Store the marks on a ranked list (the ``ranked`` state of the request that ranked it); returns its list id."""
    shown = validate_marks(table)
    if ranked and ranked.get("context") != context:
        raise InputError("The context changed since this list was ranked: rank again before saving feedback.")
    return store.record(context, shown, version, list_id=(ranked or {}).get("list_id"))


class Downloads:
    """Files for the user to download (ranked lists, feedback exports), removed an hour later and when the app exits."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="clicktune-downloads-")
        self.root = Path(self._folder.name)

    def path(self, name: str) -> Path:
        """A fresh path for a file called ``name`` (each in its own folder, so that names never clash)."""
        self._prune()
        folder = self.root / uuid.uuid4().hex
        folder.mkdir()
        return folder / name

    def _prune(self) -> None:
        cutoff = time.time() - DOWNLOAD_MAX_AGE_S
        for folder in self.root.iterdir():
            try:
                old = folder.stat().st_mtime < cutoff
            except FileNotFoundError:  # another request pruned it first
                continue
            if old:
                shutil.rmtree(folder, ignore_errors=True)


class Evaluations:
    """Evaluations of the served model on the click logs a front end offers, cached on disk per model version."""

    def __init__(self, models: ServedModels, data_dir: str | Path, eval_file: str | None, train_file: str | None):
        self.models, self.train_file = models, train_file
        self.folder = Path(data_dir) / EVALUATIONS_FOLDER
        # The configured click log first, then the bundled held-out and validation splits, where present.
        offered = [eval_file, *HELD_OUT_FILES, VALID_FILE] if eval_file else []
        self.files = list(dict.fromkeys(str(f) for f in offered if Path(f).is_file()))

    def _path(self, eval_file: str) -> Path:
        name = f"{self.models.version}-{Path(eval_file).stem}"
        return self.folder / ("".join(c if c.isalnum() or c in "-_.@" else "_" for c in name) + ".json")

    def cached(self) -> Evaluation | None:
        """The saved evaluation on the first click log, where one was run for this model version and reads back."""
        if not self.files:
            return None
        try:
            return Evaluation.load(self._path(self.files[0]))
        except (ValueError, KeyError, TypeError) as err:  # damaged, or written by another version: evaluate again
            logger.warning("ignoring the cached evaluation %s: %s", self._path(self.files[0]).name, err)
            return None

    def run(self, eval_file: str | None, progress: Progress | None = None) -> Evaluation:
        """Evaluate on one of :attr:`files` (the first by default) against the baselines, and cache the result."""
        if not self.files:
            raise InputError("No click log to evaluate on: set EVAL_FILE.")
        eval_file = eval_file or self.files[0]
        if eval_file not in self.files:
            raise InputError(f"Pick one of the app's click logs: {', '.join(Path(f).name for f in self.files)}")
        frame = read_clicks(eval_file)
        train = read_clicks(self.train_file) if self.train_file else None
        scorer, base = self.models.scorer, self.models.base
        evaluation = evaluate(
            scorer, frame, train, zero_shot=base or scorer, data_file=Path(eval_file).name, progress=progress
        )
        evaluation.save(self._path(eval_file), per_row=True)
        return evaluation
