"""Writing a finished model into its folder as one change: a kill at any point leaves the old model or the new one.

Training stages the new model's files in a hidden folder inside the model folder, then commits: a
manifest written aside and renamed is the commit point, after which every file moves in (the
completion marker ``metrics.json`` last). Any reader that finds a committed manifest finishes the
moves; a staged folder without one is discarded by the next save. Files are named by their paths
relative to the folder (``1_Pooling/config.json``, sentence-transformers' pooling module).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from fnmatch import fnmatchcase
from pathlib import Path

from recsys.data.atomic_files import write_text_atomic
from recsys.model.artifact import (
    COMMIT_DIR,
    COMMIT_MANIFEST,
    MODULE_DIRS,
    PUBLISHED_FILES,
    TRAINING_METRICS_FILE,
    ModelFolderError,
    read_json,
)


def begin_commit(folder: str | Path) -> Path:
    """An empty staging folder inside ``folder``; write the new model's files there, then :func:`commit`.

    An earlier save past its commit point is finished first; one staged but never committed (its
    writer was killed) is discarded.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    recover_commit(folder)
    staging = folder / COMMIT_DIR
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


def commit(folder: str | Path) -> None:
    """Move the staged files into ``folder`` as one change; a kill at any point leaves the old model or the new one.

    The manifest (written aside and renamed) is the commit point: before it, the folder still holds
    its old files and the staging folder is discarded by the next save; after it, any reader finishes
    the moves (:func:`recover_commit`). Files of the old model that the new one lacks (its
    ``evaluation.json``, its item priors, other weight shards) are removed, and the completion marker
    ``metrics.json`` moves in last.
    """
    folder = Path(folder)
    staging = folder / COMMIT_DIR
    staged = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    for name in staged:  # on disk before the commit point, so that a crash cannot leave empty files behind it
        with (staging / name).open("rb") as handle:
            os.fsync(handle.fileno())
    stale = sorted(name for name in _model_files(folder) if name not in staged)
    write_text_atomic(staging / COMMIT_MANIFEST, json.dumps({"files": staged, "stale": stale}))
    _roll_forward(folder, staging)


def recover_commit(folder: str | Path) -> None:
    """Finish a save that was killed after its commit point (idempotent: readers and writers may both call it)."""
    folder = Path(folder)
    staging = folder / COMMIT_DIR
    if not (staging / COMMIT_MANIFEST).is_file():
        return  # nothing committed: the folder's own files are the model
    try:
        _roll_forward(folder, staging)
    except FileNotFoundError:  # its manifest went between the look and the read: another process finished it
        return
    except PermissionError as err:
        raise ModelFolderError(
            folder, f"a save was interrupted and cannot be finished here ({err})", "run this once with write access"
        ) from None


def _model_files(folder: Path) -> list[str]:
    """The model's files in ``folder``: published files at its top and in sentence-transformers' module folders.

    Never what checkpoints/, runs/ or a folder of the user's hold, though ``*.safetensors`` would match there.
    """
    files = [p for p in folder.iterdir() if p.is_file()]
    files += [p for name in MODULE_DIRS if (folder / name).is_dir() for p in (folder / name).iterdir() if p.is_file()]
    paths = [p.relative_to(folder).as_posix() for p in files]
    return [path for path in paths if _is_published(path)]


def is_model_file(name: object) -> bool:
    """Whether a journal may name ``name``: a model file's relative path (a published file at the folder's top or
    in a sentence-transformers module folder), never an absolute path, ``..`` or anything else."""
    if not isinstance(name, str) or "\\" in name:
        return False
    parts = name.split("/")
    inside = len(parts) == 1 or (len(parts) == 2 and parts[0] in MODULE_DIRS)
    return inside and all(part not in ("", ".", "..") for part in parts) and _is_published(name)


def _is_published(name: str) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in PUBLISHED_FILES)


def _checked_journal(folder: Path, staging: Path) -> dict[str, list[str]]:
    """The committed journal, every path in it checked before anything is touched: a model file's name (see
    :func:`is_model_file`), and a regular file, never a link, where it exists. Anything else is refused."""
    manifest = read_json(staging / COMMIT_MANIFEST)
    journal = {key: manifest.get(key) if isinstance(manifest, dict) else None for key in ("files", "stale")}
    for key, names in journal.items():
        if not isinstance(names, list):
            raise _bad_journal(folder, f"its {key!r} is not a list of file names")
        for name in names:
            where = (staging if key == "files" else folder) / str(name)
            linked = where.is_symlink() or (where.parent.name in MODULE_DIRS and where.parent.is_symlink())
            if not is_model_file(name) or linked:
                raise _bad_journal(folder, f"its {key!r} names {name!r}, which is not one of the model's files")
    return journal


def _bad_journal(folder: Path, problem: str) -> ModelFolderError:
    return ModelFolderError(
        folder,
        f"an interrupted save's journal ({COMMIT_DIR}/{COMMIT_MANIFEST}) was not written by ClickTune: {problem}; "
        "nothing was moved or deleted",
        f"delete {COMMIT_DIR}/ and check the folder's files, or copy the model again",
    )


def _roll_forward(folder: Path, staging: Path) -> None:
    manifest = _checked_journal(folder, staging)
    files = [name for name in manifest["files"] if name != TRAINING_METRICS_FILE]
    for name in files:
        _move(staging / name, folder / name)
    for name in manifest["stale"]:
        (folder / name).unlink(missing_ok=True)
        if (folder / name).parent != folder:  # a module folder that the new model lacks goes with its files
            with contextlib.suppress(OSError):  # not empty (a file of the user's), or gone already
                (folder / name).parent.rmdir()
    if TRAINING_METRICS_FILE in manifest["files"]:
        _move(staging / TRAINING_METRICS_FILE, folder / TRAINING_METRICS_FILE)
    (staging / COMMIT_MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)


def _move(source: Path, target: Path) -> None:
    with contextlib.suppress(FileNotFoundError):  # moved already, by an earlier attempt or another reader
        target.parent.mkdir(exist_ok=True)  # a module folder (1_Pooling/) that the old model lacked
        os.replace(source, target)
