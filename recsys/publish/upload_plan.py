"""What of a model folder goes up to the Hub, and why each other file stays home.

:func:`plan_upload`, a pure function of the folder's file names, publishes the weights (safetensors), config,
tokenizer, ``clicktune.json``, ``metrics.json``, ``evaluation.json`` and the model card; checkpoints, TensorBoard
runs, caches, pickles, feedback databases and anything that looks like a secret stay home, each with the reason.
Only the folder's own regular files go up: a link (to a file or a folder, wherever it points) is never followed,
and a folder holding one that is no clutter is refused (:func:`refuse_links`). ClickTune's JSON files go up without
the paths of this machine that training recorded in them (:func:`published_files`).
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from recsys.defaults import FEEDBACK_FOLDER
from recsys.errors import UserError
from recsys.model.artifact import CHECKPOINTS_DIR, PUBLISHED_FILES, RUNS_DIR, published_content

_CHECKPOINTS = "training checkpoints (optimizer and RNG state, only for --resume)"
_SECRET = "a secret"
_FEEDBACK = "a database (the app's feedback): users' data stays home"
# Checked first, so that e.g. checkpoints/step-3/model.safetensors stays home. fnmatch's `*` crosses `/`.
LEFT_OUT: dict[str, str] = {
    f"{CHECKPOINTS_DIR}/*": _CHECKPOINTS,
    f"*/{CHECKPOINTS_DIR}/*": _CHECKPOINTS,
    f"{RUNS_DIR}/*": "TensorBoard logs",
    f"*/{RUNS_DIR}/*": "TensorBoard logs",
    "*__pycache__*": "Python bytecode",
    ".venv/*": "a virtual environment",
    "*/.venv/*": "a virtual environment",
    f"{FEEDBACK_FOLDER}/*": _FEEDBACK,  # the app's default feedback folder
    f"*/{FEEDBACK_FOLDER}/*": _FEEDBACK,
    "*.sqlite3": _FEEDBACK,
    "*.sqlite3-*": _FEEDBACK,  # SQLite's -wal and -shm files beside it
    "*.sqlite": _FEEDBACK,
    "*.sqlite-*": _FEEDBACK,
    "*.db": _FEEDBACK,
    "*.db-*": _FEEDBACK,
    ".env": _SECRET,
    "*/.env": _SECRET,
    "*.pem": _SECRET,
    "*.key": _SECRET,
    "token": _SECRET,  # huggingface_hub's stored login
    "*/token": _SECRET,
    "stored_tokens": _SECRET,
    "*/stored_tokens": _SECRET,
    ".netrc": _SECRET,
    ".git-credentials": _SECRET,
    "*.bin": "pickled weights: the safetensors are published instead",
    "*.pt": "pickled weights: the safetensors are published instead",
    "*.pth": "pickled weights: the safetensors are published instead",
    "*.ckpt": "pickled weights: the safetensors are published instead",
    "*.pkl": "a pickle",
    ".*": "a hidden file",
    "*/.*": "a hidden file",
}
NOT_PUBLISHED = "not a file that is published"
LINK = "a link: only the folder's own files are published, never what a link points to"


@dataclass(frozen=True)
class UploadPlan:
    """Which files of a folder go up (relative POSIX paths), and why each other one stays home."""

    upload: tuple[str, ...]
    left_out: dict[str, str] = field(default_factory=dict)

    @property
    def links(self) -> tuple[str, ...]:
        """The links left out that are no clutter (clutter: checkpoints, runs, caches, hidden files, secrets)."""
        return tuple(path for path, why in self.left_out.items() if why == LINK)

    @property
    def allow_patterns(self) -> list[str]:
        """``upload_folder`` patterns that select exactly ``upload`` (names escaped, so taken literally)."""
        return [glob.escape(path) for path in self.upload]

    @property
    def ignore_patterns(self) -> list[str]:
        return list(LEFT_OUT)


def plan_upload(
    paths: Iterable[str], published: Iterable[str] = PUBLISHED_FILES, links: Iterable[str] = ()
) -> UploadPlan:
    """Split relative file paths into those to publish and those left out, with the reason for each.

    A path is left out when it matches a pattern of ``LEFT_OUT`` or none of ``published``. Each of
    ``links`` (links to files or folders) is left out too: with its ``LEFT_OUT`` reason where it is
    clutter that stays home anyway (a linked ``runs`` folder), else as ``LINK``.
    """
    published, links = tuple(published), set(links)
    upload, left_out = [], {}
    for path in sorted({*paths, *links}):
        # A linked folder is matched as one: runs/ matches runs/*.
        names = (path, f"{path}/") if path in links else (path,)
        reason = next((why for pattern, why in LEFT_OUT.items() if any(fnmatchcase(n, pattern) for n in names)), None)
        if reason is None and path in links:
            reason = LINK
        if reason is None and not any(fnmatchcase(path, pattern) for pattern in published):
            reason = NOT_PUBLISHED
        if reason is None:
            upload.append(path)
        else:
            left_out[path] = reason
    return UploadPlan(tuple(upload), left_out)


def plan_folder(folder: str | Path, published: Iterable[str] = PUBLISHED_FILES) -> UploadPlan:
    """:func:`plan_upload` of a folder's regular files and its links."""
    return plan_upload(list_files(folder), published, linked_paths(folder))


def refuse_links(folder: str | Path, plan: UploadPlan) -> None:
    """Refuse a folder holding a link that is no clutter (``UploadPlan.links``): what it points to may be any file
    of this machine, and leaving it out could publish the model without a file it needs."""
    if plan.links:
        raise UserError(
            f"{folder}: {', '.join(plan.links)} {'is a link' if len(plan.links) == 1 else 'are links'}, and only the "
            "folder's own files are published; put a copy of the file itself in the folder in place of the link, "
            "or remove the link"
        )


def published_files(model_dir: str | Path, paths: Iterable[str]) -> dict[str, Path | bytes]:
    """What to publish for each of a model folder's ``paths``: the file, or for ClickTune's JSON a copy without
    the local paths that training recorded (``recsys.model.artifact.published_content``)."""
    model_dir = Path(model_dir)
    return {path: published_content(model_dir, path) or model_dir / path for path in paths}


def list_files(folder: str | Path) -> list[str]:
    """Every regular file under ``folder``, as POSIX paths relative to it (as ``upload_folder`` names them).

    Links are no files here, and a linked folder is not entered: :func:`linked_paths` lists them.
    """
    folder = Path(folder)
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def linked_paths(folder: str | Path) -> list[str]:
    """Every link under ``folder`` (to a file or a folder, or a broken one), as POSIX paths relative to it."""
    folder = Path(folder)
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_symlink())
