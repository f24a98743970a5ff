"""Serving without Gradio: settings, the served models, limits on requests, uploads, feedback and cached evaluations.

``app.py`` is one front end over this module; a CLI or another web framework can be a second.
Everything here raises :class:`~recsys.data.contract.ContractError` or :class:`InputError` (both
``ValueError``) with a message meant for the user; a front end shows it as it is.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from numbers import Number
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.candidates import pasted_candidates, read_candidate_table, read_candidates, validate_candidates
from recsys.data.contract import CLICKED, ITEM, ITEM_ID, numeric_columns, read_clicks, validate_clicks
from recsys.data.limits import ROWS, TooLarge
from recsys.data.tables import read_table
from recsys.defaults import HELD_OUT_FILES, VALID_FILE, Env, how_to_train
from recsys.errors import ContractError, UserError
from recsys.evaluation.evaluator import Evaluation, Progress, evaluate
from recsys.feedback.interleave import Shown, team_draft
from recsys.feedback.store import FeedbackStore, Interleaving, RankedList
from recsys.loop.versions import served_version
from recsys.model.artifact import (
    DEFAULT_MODEL,
    ModelMetadata,
    is_hub_id,
    is_model_folder,
    local_model_dir,
    model_version,
)
from recsys.scoring.catalog_search import TOP_K, Catalog
from recsys.scoring.scorer import Scorer, load_scorer, zero_shot_of
from recsys.serving.settings import Limits

logger = logging.getLogger(__name__)

# Cached evaluations, in the feedback folder so that they outlive a restart; v3: Evaluation's JSON with text_alone.
EVALUATIONS_FOLDER = "evaluations/v3"
# How often, at most, a request looks whether the served folder holds a new model (a digest of one small file).
RELOAD_CHECK_SECONDS = 5.0


class InputError(UserError):
    """A request that breaks a limit or leaves something out; the message says what to change."""


@dataclass
class ServedModels:
    """The model a front end serves, its zero-shot base (for a fine-tuned model), and what to tell the user."""

    scorer: Scorer
    base: Scorer | None = None  # None: the served model is itself zero-shot
    model_dir: str | None = None  # the folder it came from; None for the packaged base model
    note: str = ""
    catalog: Catalog | None = (
        None  # items indexed for the served model (recsys.scoring.catalog), ranked whole for a context
    )
    challenger: ServedModels | None = None  # a second model (CHALLENGER_DIR) that lists may interleave with this one
    # recsys.model.artifact.model_version as the model was loaded ("": read it now): the folder may hold another one
    # later.
    version: str = ""

    def __post_init__(self) -> None:
        self.version = self.version or model_version(self.model_dir, self.metadata)

    @property
    def metadata(self) -> ModelMetadata:
        return self.scorer.metadata

    @property
    def base_model_name(self) -> str:
        """The base model as a visitor may read it: a Hub id, or a local folder's name."""
        base = self.metadata.base_model
        return Path(base).name if Path(base).is_absolute() or Path(base).exists() else base

    @property
    def retrain_from(self) -> str:
        """Where retraining starts: the served model where it was fine-tuned, else its base."""
        return self.model_dir if self.metadata.fine_tuned and self.model_dir else self.metadata.base_model


def _local(model_dir: str | Path, setting: str) -> str | Path:
    """A model folder on this machine: a local path as it is, a Hub id downloaded once; ``setting`` names the
    variable that gave it, for the error."""
    if Path(model_dir).exists() or not is_hub_id(str(model_dir)):
        return model_dir
    try:
        return local_model_dir(str(model_dir))
    except Exception as err:  # offline, unknown repo, no access: say which and how to fix it
        raise UserError(
            f"{setting}={model_dir} is no folder here and could not be fetched from the Hub ({err}); "
            f"set {setting} to a model folder, or to a Hub id reachable from this machine"
        ) from err


def load_served_models(model_dir: str | Path) -> ServedModels:
    """The served model from a folder or a Hub id (downloaded once); the zero-shot base model where there is none."""
    model_dir = _local(model_dir, Env.MODEL_DIR)
    if not is_model_folder(model_dir):
        note = (
            f"No trained model in `MODEL_DIR`: this app serves the **zero-shot** base model `{DEFAULT_MODEL}`. "
            + how_to_train()
        )
        return ServedModels(load_scorer(None), note=note)
    scorer = load_scorer(str(model_dir))
    if not scorer.metadata.fine_tuned:
        note = f"`{Path(model_dir).name}` was not fine-tuned: this app serves it **zero-shot**."
        return ServedModels(scorer, model_dir=str(model_dir), note=note)
    return ServedModels(scorer, zero_shot_of(scorer), str(model_dir))  # the base model, reading the same length


def load_challenger(model_dir: str | Path) -> ServedModels:
    """The challenger that ``CHALLENGER_DIR`` names (a model folder or a Hub id), to interleave with the served model;
    a folder that holds no model is refused."""
    folder = _local(model_dir, Env.CHALLENGER_DIR)
    if not is_model_folder(folder):
        raise UserError(
            f"{Env.CHALLENGER_DIR}={model_dir} holds no model; set it to a folder that "
            "`python -m finetune.train --output-dir` wrote, or unset it to serve one model"
        )
    challenger = ServedModels(load_scorer(str(folder)), model_dir=str(folder))
    logger.info("loaded the challenger %s", challenger.version)
    return challenger


class LiveModels:
    """The served models, replaced by the model that a promotion or a rollback (``recsys.loop.versions``) commits to the
    served folder, without a restart.

    :meth:`current` is called once per request, which then uses what it returned throughout: a request is served by
    the old models or the new ones, never a mix. At most every ``every`` seconds it compares the digest of the
    folder's ``clicktune.json`` with the loaded model's; where they differ, one request loads the new model (under a
    lock; the others go on with the old one meanwhile) and swaps it in. The challenger stays; a catalog, built for
    the old model, is dropped (rebuild it, and restart).
    """

    def __init__(
        self,
        models: ServedModels,
        every: float = RELOAD_CHECK_SECONDS,
        on_reload: Callable[[ServedModels], None] | None = None,
    ) -> None:
        self.models, self.every, self.on_reload = models, every, on_reload
        self._lock = threading.Lock()
        self._checked = time.monotonic()  # when the folder was last looked at
        self._failed = ""  # the digest of a model that failed to load: not tried again until the folder changes

    def current(self) -> ServedModels:
        """The models to serve one request with: the loaded ones, or the served folder's new model."""
        models = self.models
        watched = models.model_dir is not None and models.metadata.fine_tuned  # a zero-shot model is never promoted
        due = time.monotonic() - self._checked >= self.every
        if not (watched and due) or not self._lock.acquire(blocking=False):
            return models
        try:
            self._checked = time.monotonic()
            models = self.models
            self._reload_if_new(models)
            return self.models
        finally:
            self._lock.release()

    def _reload_if_new(self, models: ServedModels) -> None:
        folder = models.model_dir
        try:
            digest = served_version(folder)
        except (UserError, OSError, ValueError) as err:  # a folder being written by hand: serve on, look again later
            logger.warning("cannot read which model %s holds now (%s); serving %s", folder, err, models.version)
            return
        if digest in (models.version.rpartition("@")[2], self._failed):
            return
        logger.info("%s holds a new model (%s): loading it to replace %s", folder, digest, models.version)
        # Whatever goes wrong loading it, requests go on with the model that works; the log keeps the traceback.
        try:
            loaded = load_served_models(folder)
        except Exception:
            self._failed = digest
            logger.exception("could not load the new model in %s; still serving %s", folder, models.version)
            return
        if models.catalog is not None:
            logger.warning("the catalog, built for %s, is no longer served; rebuild it and restart", models.version)
        self.models = replace(loaded, challenger=models.challenger)
        logger.info("reloaded %s: now serving %s (was %s)", folder, self.models.version, models.version)
        if self.on_reload is not None:
            self.on_reload(self.models)


def load_catalog(folder: str | Path, models: ServedModels, limits: Limits) -> Catalog:
    """The catalog in ``folder`` for the served model; one built with another model is refused with the command
    that rebuilds it, and one with more columns than a ranked table keeps, with the limit."""
    catalog = Catalog.load(folder, models.scorer, models.model_dir or models.metadata.base_model)
    extra = [c for c in catalog.items.columns if c not in (ITEM, ITEM_ID)]
    if len(extra) > limits.max_extra_columns:
        raise UserError(
            f"{folder}: the catalog has {len(extra)} columns besides item and item_id; the ranked table keeps at "
            f"most {limits.max_extra_columns}. Rebuild it from a file without the columns you don't need."
        )
    logger.info("loaded the catalog %s: %d items, %s search", folder, len(catalog), catalog.info.kind)
    return catalog


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


def check_top_k(top_k: float | None, limits: Limits) -> int | None:
    """How many ranked items to show; None (an empty box) shows every item of a list."""
    if top_k is None:
        return None
    if int(top_k) < 1:
        raise InputError("Top k must be 1 or more.")
    if int(top_k) > limits.max_items:
        raise InputError(f"Top k is at most {limits.max_items} (MAX_ITEMS); ask for fewer.")
    return int(top_k)


def rank_catalog(models: ServedModels, context: str, top_k: int | None, limits: Limits) -> pd.DataFrame:
    """The served catalog's top items for a checked context and top k; None: ``TOP_K`` of them, within MAX_ITEMS."""
    if models.catalog is None:
        raise InputError(
            "This app has no catalog to rank against; its operator sets CATALOG_DIR to a folder that "
            "`python -m recsys.scoring.catalog build` wrote. Rank a list of items instead."
        )
    return models.catalog.rank(context, min(TOP_K, limits.max_items) if top_k is None else top_k)


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
    """The candidate list from an uploaded file or pasted lines (exactly one), checked, and where it came from.

    A file is read within :func:`upload_limits`: reading stops at the first item or column past them. The ranked
    table keeps item, item_id and clicked (as its real clicks) in columns of their own, and at most
    ``max_extra_columns`` more.
    """
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
        candidates = read_candidates(
            path, column, source=path.name, max_text_chars=limits.max_text_chars, **upload_limits(limits)
        )
    except TooLarge as err:
        if err.unit == ROWS:
            raise
        raise _too_wide(err, path.name, limits) from err
    except ContractError as err:
        if err.missing != (column,):
            raise
        raise replace(err, fix=f"{err.fix}, or choose the column that holds the item text") from err
    own = [c for c in (ITEM, ITEM_ID, CLICKED) if c in candidates.columns]
    extra = [c for c in candidates.columns if c not in own]
    if len(extra) > limits.max_extra_columns:
        besides = "item, item_id and clicked" if CLICKED in own else "item and item_id"
        raise InputError(
            f"{path.name} has {len(extra)} columns besides {besides}; the ranked table keeps at most "
            f"{limits.max_extra_columns}. Drop the columns you don't need and upload it again."
        )
    return candidates, path.name


def inspect_candidate_file(path: Path, limits: Limits) -> tuple[list[str], str | None, list[str]]:
    """An uploaded file's columns that may hold the item text, the one to preselect, and its numeric columns.

    The file is read within the same :func:`upload_limits` as for ranking, so that a file too large to rank is
    refused on upload, having cost no more than one that ranks.
    """
    check_upload(path, limits)
    try:
        table = read_candidate_table(path, path.name, **upload_limits(limits))
    except TooLarge as err:
        if err.unit == ROWS:
            raise
        raise _too_wide(err, path.name, limits) from err
    columns = [str(c) for c in table.columns]
    numeric = numeric_columns(table)
    text = [c for c in columns if c not in numeric and c != CLICKED] or columns  # the ground truth is no item text
    return text, ITEM if ITEM in columns else None, numeric


def upload_limits(limits: Limits) -> dict[str, int]:
    """What an uploaded candidate file is read within: ``max_items`` rows, and the columns of a ranked table (item,
    item_id, clicked and ``max_extra_columns`` more); :func:`~recsys.data.candidates.read_candidate_table`'s
    keywords."""
    return {"max_items": limits.max_items, "max_columns": len((ITEM, ITEM_ID, CLICKED)) + limits.max_extra_columns}


def _too_wide(err: TooLarge, name: str, limits: Limits) -> InputError:
    """A file with more columns than :func:`upload_limits`, in the words of the check after reading."""
    return InputError(
        f"{name} has {'' if err.exact else 'at least '}{err.size} columns; the ranked table keeps item, item_id, "
        f"clicked and at most {limits.max_extra_columns} more. Drop the columns you don't need and upload it again."
    )


def blend_weights(table: pd.DataFrame | None) -> dict[str, float]:
    """Feature weights from a (feature, weight) table; blank rows and zero weights are left out.

    A feature is named once; a cell that holds a list or an object (as a script may send) is refused.
    """
    weights: dict[str, float] = {}
    if table is None or table.empty:
        return weights
    if table.shape[1] < 2:
        raise InputError("The weights table needs two columns, feature and weight; add the weight column.")
    named: set[str] = set()
    for feature, weight in table.iloc[:, :2].itertuples(index=False):
        if not (_is_scalar(feature) and _is_scalar(weight)):
            raise InputError(
                f"The weights table has a list or an object in the row ({feature!r:.60}, {weight!r:.60}); "
                "give each row a feature name and one number."
            )
        # A blank cell arrives as None, "" or (from Gradio's frame) NaN.
        feature = "" if pd.isna(feature) else str(feature).strip()
        if not feature or pd.isna(weight) or str(weight).strip() == "":
            continue
        if feature in named:
            raise InputError(f"The weights table names {feature!r} more than once; give each feature one weight.")
        named.add(feature)
        try:
            value = float(weight)
        except ValueError:
            raise InputError(f"The weight of {feature!r} is {weight!r}; give a number such as 0.5 or -1") from None
        if not math.isfinite(value):
            raise InputError(f"The weight of {feature!r} must be a finite number")
        if value:
            weights[feature] = value
    return weights


def _is_scalar(cell: object) -> bool:
    return cell is None or isinstance(cell, str | Number)


def new_list_id() -> str:
    return uuid.uuid4().hex


def ranked_list(
    context: str,
    ranked: pd.DataFrame,
    version: str = "",
    interleaving: Interleaving | None = None,
    list_id: str | None = None,
) -> RankedList:
    """What this session was shown (ranked by ``version``; interleaved, with each item's team), to keep server-side
    until it saves its marks."""
    items, ids = tuple(ranked[ITEM].astype(str)), tuple(ranked[ITEM_ID].astype(str))
    return RankedList(list_id or new_list_id(), context, items, ids, version, interleaving)


def interleave(
    list_id: str, champion: Sequence[Hashable], challenger: Sequence[Hashable], k: int | None
) -> list[Shown]:
    """Team-draft interleaving of two rankings (item keys, best first) into ``k`` items (None: every item once),
    its coin flips seeded by the list's id (hexadecimal), so that a list can be drawn again exactly."""
    return team_draft(list(champion), list(challenger), np.random.default_rng(int(list_id, 16)), k)


def save_marks(
    store: FeedbackStore, version: str, context: str, table: pd.DataFrame | None, ranked: RankedList | None
) -> str:
    """Store the marks of ``table`` on the list this session ranked (``ranked``); returns the list's id.

    Saving a list again replaces its marks; a table that is not that list is refused. An interleaved list is stored
    with each item's team and the outcome its marks give, in the same transaction.
    """
    if ranked is None:
        raise InputError("Rank a list first; then tick the items you would click and save.")
    if table is None or table.empty:
        raise InputError("The ranked table is empty: rank a list, then tick the items you would click and save.")
    marked = ranked.marked(table, context)
    return store.record(context, marked, version, list_id=ranked.list_id, interleaving=ranked.interleaving)


class Evaluations:
    """Evaluations of the served model on the click logs a front end offers, cached on disk per model version.

    The logs are offered by name only (no server path reaches a client). An evaluation that was run
    before for this model version is read back, not run again; one that runs uses its own copies of
    the tokenizers, so that it can run beside ranking without sharing a tokenizer across threads.
    """

    def __init__(
        self,
        models: ServedModels,
        data_dir: str | Path,
        eval_file: str | None,
        train_file: str | None,
        bundled: Sequence[Path] = (*HELD_OUT_FILES, VALID_FILE),
    ):
        self.models, self.train_file = models, train_file
        self.folder = Path(data_dir) / EVALUATIONS_FOLDER
        # The configured click log first, then the bundled held-out and validation splits, where present.
        offered = [Path(f) for f in ([eval_file, *bundled] if eval_file else [])]
        self.paths: dict[str, Path] = {}
        for path in offered:
            if path.is_file() and path.resolve() not in {p.resolve() for p in self.paths.values()}:
                name = path.name if path.name not in self.paths else f"{path.parent.name}/{path.name}"
                self.paths[name] = path

    @property
    def files(self) -> list[str]:
        """The names of the offered click logs, the default first."""
        return list(self.paths)

    def _cache(self, name: str, models: ServedModels | None = None) -> Path:
        key = f"{(models or self.models).version}-{name}"
        return self.folder / ("".join(c if c.isalnum() or c in "-_.@" else "_" for c in key) + ".json")

    def cached(self, name: str | None = None, models: ServedModels | None = None) -> Evaluation | None:
        """The saved evaluation on ``name`` (default: the first log), where one was run for this model version (of
        ``models``, default the served ones)."""
        if not self.files:
            return None
        path = self._cache(name or self.files[0], models)
        try:
            return Evaluation.load(path)
        except (ValueError, KeyError, TypeError) as err:  # damaged, or written by another version: evaluate again
            logger.warning("ignoring the cached evaluation %s: %s", path.name, err)
            return None

    def run(self, name: str | None, progress: Progress | None = None) -> Evaluation:
        """The evaluation on one of :attr:`files` (the first by default) against the baselines: cached, or run now."""
        if not self.files:
            raise InputError("No click log to evaluate on: set EVAL_FILE.")
        name = name or self.files[0]
        if name not in self.paths:
            raise InputError(f"Pick one of the app's click logs: {', '.join(self.files)}")
        models = self.models  # one model throughout, should a reload (LiveModels) replace it meanwhile
        cached = self.cached(name, models)
        if cached is not None:
            return cached
        path = self.paths[name]
        frame = validate_clicks(read_table(path, name), source=name)
        train = read_clicks(self.train_file) if self.train_file else None
        scorer = own_tokenizer(models.scorer)
        base = own_tokenizer(models.base) if models.base else scorer
        evaluation = evaluate(scorer, frame, train, zero_shot=base, data_file=name, progress=progress)
        evaluation.save(self._cache(name, models), per_row=True)
        return evaluation


def own_tokenizer(scorer: Scorer) -> Scorer:
    """The same model with a copy of its tokenizer: Hugging Face's fast tokenizers must not be shared by threads."""
    return Scorer(scorer.model, copy.deepcopy(scorer.tokenizer), scorer.metadata, scorer.priors)
