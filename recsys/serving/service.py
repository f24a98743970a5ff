"""Serving without Gradio: the served models, their challenger and catalog, and the reload of a promoted model.

``app.py`` is one front end over this module and its neighbours (``recsys.serving.inputs`` for requests and
uploads, ``recsys.serving.shown_lists`` for the lists shown and their marks, ``recsys.serving.evaluations`` for
cached evaluations); a CLI or another web framework can be a second. What they refuse, they refuse with a
:class:`~recsys.errors.ContractError` or an :class:`InputError` (both ``ValueError``) whose message is meant for the
user; a front end shows it as it is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from recsys.data.contract import CLICKED, ITEM, ITEM_ID
from recsys.defaults import Env, how_to_train
from recsys.errors import UserError
from recsys.model.artifact import (
    DEFAULT_MODEL,
    METADATA_FILE,
    ModelMetadata,
    content_digest,
    is_hub_id,
    is_model_folder,
    local_model_dir,
    model_version,
)
from recsys.model.commits import recover_commit
from recsys.scoring.catalog_search import TOP_K, Catalog
from recsys.scoring.loading import load_scorer, zero_shot_of
from recsys.scoring.onnx_runtime import ANY_ONNX
from recsys.scoring.scorer import Scorer
from recsys.serving.settings import Limits

logger = logging.getLogger(__name__)

# How often, at most, a request looks whether the served folder holds a new model (a digest of one small file).
RELOAD_CHECK_SECONDS = 5.0


class InputError(UserError):
    """A request that breaks a limit or leaves something out; the message says what to change."""


# A ranked table shows the item, its id and its real clicks in columns of their own, and keeps at most
# Limits.max_extra_columns others: what an upload or a catalog may bring beside these.
OWN_COLUMNS = (ITEM, ITEM_ID, CLICKED)


def too_many_columns(source: str, extra: int, limits: Limits, fix: str, exact: bool = True) -> InputError:
    """The one refusal of a table with more columns than a ranked table keeps beside :data:`OWN_COLUMNS`;
    ``exact`` false: it has at least ``extra`` of them (its reader stopped counting)."""
    own = ", ".join(OWN_COLUMNS[:-1]) + f" and {OWN_COLUMNS[-1]}"
    return InputError(
        f"{source} has {'' if exact else 'at least '}{extra} columns besides {own}; the ranked table keeps at most "
        f"{limits.max_extra_columns}. {fix}"
    )


def check_extra_columns(columns: Iterable[str], source: str, limits: Limits, fix: str) -> None:
    """Refuse a table whose columns besides :data:`OWN_COLUMNS` are more than ``limits.max_extra_columns``."""
    extra = [c for c in columns if c not in OWN_COLUMNS]
    if len(extra) > limits.max_extra_columns:
        raise too_many_columns(source, len(extra), limits, fix)


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
    # The content_digest of the folder's clicktune.json as the model was loaded ("": none): LiveModels reloads where
    # the folder's differs.
    digest: str = ""
    onnx: tuple[str, ...] = ANY_ONNX  # the ONNX precisions it may be served with (recsys.serving.settings), reloads too

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


def served_digest(folder: str | Path) -> str:
    """The content_digest of the ``clicktune.json`` that ``folder`` serves now ("": none), after finishing a save that
    a kill interrupted past its commit point."""
    recover_commit(folder)
    metadata = Path(folder) / METADATA_FILE
    return content_digest([metadata]) if metadata.is_file() else ""


def load_served_models(model_dir: str | Path, onnx: Sequence[str] = ANY_ONNX) -> ServedModels:
    """The served model from a folder or a Hub id (downloaded once); the zero-shot base model where there is none.

    ``onnx``: the precisions of the folder's checked ONNX export that may be served (``AppConfig.onnx``).
    """
    model_dir, onnx = _local(model_dir, Env.MODEL_DIR), tuple(onnx)
    if not is_model_folder(model_dir):
        note = (
            f"No trained model in `MODEL_DIR`: this app serves the **zero-shot** base model `{DEFAULT_MODEL}`. "
            + how_to_train()
        )
        return ServedModels(load_scorer(None, onnx=onnx), note=note, onnx=onnx)
    digest = served_digest(model_dir)  # before loading: a model promoted meanwhile is loaded at the next look
    scorer = load_scorer(str(model_dir), onnx=onnx)
    if not scorer.metadata.fine_tuned:
        note = f"`{Path(model_dir).name}` was not fine-tuned: this app serves it **zero-shot**."
        return ServedModels(scorer, model_dir=str(model_dir), note=note, digest=digest, onnx=onnx)
    base = zero_shot_of(scorer, onnx)  # the base model, reading the same length
    return ServedModels(scorer, base, str(model_dir), digest=digest, onnx=onnx)


def load_challenger(model_dir: str | Path, onnx: Sequence[str] = ANY_ONNX) -> ServedModels:
    """The challenger that ``CHALLENGER_DIR`` names (a model folder or a Hub id), to interleave with the served model;
    a folder that holds no model is refused. ``onnx`` as for :func:`load_served_models`."""
    folder = _local(model_dir, Env.CHALLENGER_DIR)
    if not is_model_folder(folder):
        raise UserError(
            f"{Env.CHALLENGER_DIR}={model_dir} holds no model; set it to a folder that "
            "`python -m finetune.train --output-dir` wrote, or unset it to serve one model"
        )
    challenger = ServedModels(load_scorer(str(folder), onnx=onnx), model_dir=str(folder), onnx=tuple(onnx))
    logger.info("loaded the challenger %s", challenger.version)
    return challenger


class LiveModels:
    """The served models, replaced by the model that a promotion or a rollback (``recsys.loop.versions``) commits to the
    served folder, without a restart.

    :meth:`current` is called once per request, which then uses what it returned throughout: a request is served by
    the old models or the new ones, never a mix. At most every ``every`` seconds it compares the content digest of the
    folder's ``clicktune.json`` (:func:`served_digest`) with the loaded model's; where they differ, one request loads
    the new model (under a lock; the others go on with the old one meanwhile) and swaps it in. The challenger stays;
    a catalog, built for the old model, is dropped (rebuild it, and restart).
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
            digest = served_digest(folder)
        except (UserError, OSError, ValueError) as err:  # a folder being written by hand: serve on, look again later
            logger.warning("cannot read which model %s holds now (%s); serving %s", folder, err, models.version)
            return
        if digest in (models.digest, self._failed):
            return
        logger.info("%s holds a new model (%s): loading it to replace %s", folder, digest[:8], models.version)
        # Whatever goes wrong loading it, requests go on with the model that works; the log keeps the traceback.
        try:
            loaded = load_served_models(folder, models.onnx)
            if not loaded.metadata.fine_tuned:
                raise UserError(f"{folder}/{METADATA_FILE}: holds no fine-tuned ClickTune model")
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
    fix = "Rebuild it from a file without the columns you don't need."
    check_extra_columns(catalog.items.columns, f"{folder}: the catalog", limits, fix)
    logger.info("loaded the catalog %s: %d items, %s search", folder, len(catalog), catalog.info.kind)
    return catalog


def rank_catalog(models: ServedModels, context: str, top_k: int | None, limits: Limits) -> pd.DataFrame:
    """The served catalog's top items for a checked context and top k; None: ``TOP_K`` of them, within MAX_ITEMS."""
    if models.catalog is None:
        raise InputError(
            "This app has no catalog to rank against; its operator sets CATALOG_DIR to a folder that "
            "`python -m recsys.scoring.catalog build` wrote. Rank a list of items instead."
        )
    return models.catalog.rank(context, min(TOP_K, limits.max_items) if top_k is None else top_k)
