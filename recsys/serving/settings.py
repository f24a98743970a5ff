"""The app's settings, read from the environment variables that ``recsys.defaults.Env`` names.

README lists them with their defaults. Another front end built on ``recsys.serving.service`` reads the same ones.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from recsys.data.contract import FALSE, TRUE
from recsys.defaults import FEEDBACK_DIR, HOST, PORT, Env
from recsys.errors import UserError
from recsys.model.artifact import is_hub_id
from recsys.scoring.onnx_runtime import ANY_ONNX, onnx_precisions

MAX_UPLOAD_MB = 1024.0  # the largest upload limit MAX_UPLOAD_MB may set: a file is read whole, on the server


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

    # A saved folder or a Hub id; None: the model of each bundled log that `make demo` trained (recsys.serving.served).
    model_dir: str | None = None
    data_dir: str = str(FEEDBACK_DIR)  # feedback (SQLite) and cached evaluations
    eval_file: str | None = None  # the Model tab's first click log; None: the served log's held-out file; "": none
    train_file: str | None = None  # for the popularity baseline; None: the served log's training file; "": none
    catalog_dir: str = (
        ""  # a folder that `python -m recsys.scoring.catalog build` wrote, for the served model; "": none
    )
    # A second model (folder or Hub id) that the first log's Rank tab may interleave with the served one; "": none.
    challenger_dir: str = ""
    host: str = HOST
    port: int = PORT
    limits: Limits = field(default_factory=Limits)
    # Visitors may browse and download the stored feedback (contexts included); off: they see only counts.
    feedback_browsing: bool = False
    feedback_repo: str = ""  # OWNER/NAME of a Hub dataset that the feedback is mirrored to; "": none
    feedback_push_minutes: float = 10.0
    # The precisions of a model folder's checked ONNX export that may be served, preferred first; (): PyTorch.
    onnx: tuple[str, ...] = ANY_ONNX

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AppConfig:
        env = dict(os.environ if env is None else env)
        default = cls()
        limits = Limits(
            max_items=_number(env, Env.MAX_ITEMS, default.limits.max_items, int),
            max_upload_mb=_number(env, Env.MAX_UPLOAD_MB, default.limits.max_upload_mb, float, MAX_UPLOAD_MB),
            max_text_chars=_number(env, Env.MAX_TEXT_CHARS, default.limits.max_text_chars, int),
        )
        port = _number({Env.PORT: _one_of(env, Env.PORT, Env.GRADIO_SERVER_PORT)}, Env.PORT, default.port, int)
        push_minutes = _number(env, Env.FEEDBACK_PUSH_MINUTES, default.feedback_push_minutes, float)
        repo = env.get(Env.FEEDBACK_REPO, "").strip()
        if repo and not is_hub_id(repo):
            raise UserError(f"{Env.FEEDBACK_REPO}={repo!r}: give the dataset repo as OWNER/NAME")
        browsing = env.get(Env.FEEDBACK_BROWSING, "").strip().lower()
        if browsing not in ("", *TRUE, *FALSE):
            raise UserError(f"{Env.FEEDBACK_BROWSING} must be 1 or 0 (true/false), got {browsing!r}")
        return cls(
            model_dir=env.get(Env.MODEL_DIR) or default.model_dir,
            data_dir=env.get(Env.FEEDBACK_DIR, default.data_dir),
            eval_file=env.get(Env.EVAL_FILE, default.eval_file),
            train_file=env.get(Env.TRAIN_FILE, default.train_file),
            catalog_dir=env.get(Env.CATALOG_DIR, default.catalog_dir).strip(),
            challenger_dir=env.get(Env.CHALLENGER_DIR, default.challenger_dir).strip(),
            host=_one_of(env, Env.HOST, Env.GRADIO_SERVER_NAME) or default.host,
            port=port,
            limits=limits,
            feedback_browsing=browsing in TRUE,
            feedback_repo=repo,
            onnx=onnx_precisions(env.get(Env.ONNX, "")),
            feedback_push_minutes=push_minutes,
        )


def _one_of(env: dict[str, str], name: str, gradio_name: str) -> str | None:
    """A setting given by our name or by Gradio's (a Space sets GRADIO_SERVER_NAME); both must agree."""
    ours, gradios = env.get(name) or None, env.get(gradio_name) or None
    if ours and gradios and ours != gradios:
        raise UserError(f"{name}={ours} and {gradio_name}={gradios} disagree; set one of them")
    return ours or gradios


def _number(env: dict[str, str | None], name: str, default: float, kind: type, maximum: float = math.inf) -> float:
    """A positive number up to ``maximum`` from the environment, or ``default`` where unset."""
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value <= 0:
        what = "a whole number" if kind is int else "a number"
        raise UserError(f"{name}={text!r} must be {what} above 0")
    if value > maximum:
        raise UserError(f"{name}={text!r} is over the most this app takes, {maximum:g}; give a smaller number")
    return value
