"""Model versions: every model a folder serves, kept whole with the reason it was served; rollback.

For the served folder ``models/clicktune``, the folder ``models/clicktune.history/`` beside it holds::

    0001-9f8e7d6c/   one full copy of each version's model files, named by an increasing number and the digest
    0002-1a2b3c4d/   of its clicktune.json (the digest of recsys.model.artifact.model_version)
    history.jsonl    one event per line: time (UTC), action (recorded, promoted, kept, rolled back), version,
                     digest, the evaluation figures and the reason in words

Nothing in it is ever deleted. The first use records the served model as version 1, and a served model that the
history lacks (trained into the folder by hand since) is recorded before anything replaces it. Which version is
served is read from the folder itself (:func:`served_version`), never from the log.

A challenger is promoted only on a clear win (``recsys.loop.promotion``); a recorded version is served again by
:func:`rollback`.

Every change is one change where a kill can land: a version is copied under a hidden name and renamed into place;
the served folder's model is replaced through ``recsys.model.commits`` (a kill leaves the old model or the new one); the
log is appended one line at a time, and a line cut short by a kill is skipped with a warning when it is read.
One process at a time may change a folder's history.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsys.errors import UserError
from recsys.model.artifact import METADATA_FILE, MODULE_DIRS, ModelFolderError, ModelMetadata, model_version
from recsys.model.checks import check_model_folder
from recsys.model.commits import begin_commit, commit, is_model_file, recover_commit

logger = logging.getLogger(__name__)

HISTORY_SUFFIX = ".history"  # models/clicktune -> models/clicktune.history
LOG_FILE = "history.jsonl"
PARTIAL_PREFIX = ".partial-"  # a version being copied in; never a version
RECORDED, PROMOTED, KEPT, ROLLED_BACK = "recorded", "promoted", "kept", "rolled back"
ACTIONS = (RECORDED, PROMOTED, KEPT, ROLLED_BACK)
_VERSION_NAME = re.compile(r"^(\d{4,})-([0-9a-f]{8})$")


@dataclass(frozen=True)
class Version:
    """One recorded model: its number, the digest of its clicktune.json, and the folder holding its copy."""

    number: int
    digest: str
    path: Path


@dataclass(frozen=True)
class Event:
    """One line of history.jsonl."""

    time: str  # ISO 8601, UTC
    action: str  # one of ACTIONS
    version: int  # the version served after it (kept: the champion's)
    digest: str
    reason: str
    evaluation: dict[str, Any] | None = None  # Challenge.to_json() where models were compared
    previous: int | None = None  # promoted, rolled back: the version that was served before
    challenger: str | None = None  # kept: the digest of the challenger that lost, and where it is
    challenger_dir: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        event = cls(**data)
        if event.action not in ACTIONS or not isinstance(event.version, int):
            raise ValueError(f"not an event: {data}")
        return event


def history_dir(served_dir: str | Path) -> Path:
    """Where the versions of a served folder are kept: ``models/clicktune.history`` for ``models/clicktune``."""
    served = Path(served_dir)
    return served.with_name(served.name + HISTORY_SUFFIX)


def served_version(model_dir: str | Path) -> str:
    """The digest of the model that ``model_dir`` serves now (that of its ``clicktune.json``, as in
    ``recsys.model.artifact.model_version``), after finishing a replacement that a kill interrupted past its commit
    point.

    A server compares it with the digest of the model it loaded, and reloads where they differ.
    """
    model_dir = Path(model_dir)
    recover_commit(model_dir)
    metadata = ModelMetadata.load(model_dir)
    if metadata is None or not metadata.fine_tuned:
        raise ModelFolderError(
            model_dir,
            f"holds no fine-tuned ClickTune model (its {METADATA_FILE})",
            "give the folder that `python -m finetune.train --output-dir` wrote and the app serves",
        )
    return model_version(model_dir, metadata).rpartition("@")[2]


def model_files(folder: str | Path) -> list[str]:
    """The model's files in ``folder`` as relative paths (weights, config, tokenizer, ClickTune's files, the
    sentence-transformers module folders), as ``recsys.model.commits`` moves them; never checkpoints/, runs/ or
    others."""
    folder = Path(folder)
    paths = [p for p in folder.iterdir() if p.is_file()]
    paths += [p for name in MODULE_DIRS if (folder / name).is_dir() for p in (folder / name).iterdir() if p.is_file()]
    return sorted(name for name in (p.relative_to(folder).as_posix() for p in paths) if is_model_file(name))


def _copy_files(source: Path, target: Path, names: list[str]) -> None:
    for name in names:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target / name)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class History:
    """The versions and the log of one served folder (see the module docstring)."""

    def __init__(self, served_dir: str | Path) -> None:
        self.served = Path(served_dir)
        self.folder = history_dir(self.served)
        self.log = self.folder / LOG_FILE

    def versions(self) -> list[Version]:
        """The recorded versions, oldest first; a copy that a kill interrupted is not one."""
        if not self.folder.is_dir():
            return []
        found = [(match, p) for p in self.folder.iterdir() if p.is_dir() and (match := _VERSION_NAME.match(p.name))]
        return sorted((Version(int(m.group(1)), m.group(2), path) for m, path in found), key=lambda v: v.number)

    def find(self, reference: str) -> Version:
        """A version by its number (``3``, ``0003``), its folder name (``0003-1a2b3c4d``) or its digest."""
        versions = self.versions()
        text = reference.strip()
        for version in versions:
            if text in (version.path.name, version.digest) or (text.isdigit() and int(text) == version.number):
                return version
        listed = ", ".join(v.path.name for v in versions) or "none yet"
        raise UserError(
            f"{self.folder}: no version {reference!r}; give a number or digest of one that "
            f"`python -m recsys.loop history --model {self.served}` lists ({listed})"
        )

    def current(self) -> Version | None:
        """The version the served folder holds now, or None where the history lacks it."""
        digest = served_version(self.served)
        return next((v for v in self.versions() if v.digest == digest), None)

    def events(self) -> list[Event]:
        """The log, oldest first; a line that is not a whole event (a write cut short by a kill) is skipped, with a
        warning naming it."""
        if not self.log.is_file():
            return []
        events = []
        for number, line in enumerate(self.log.read_text(encoding="utf-8", errors="replace").split("\n"), 1):
            if not line.strip():
                continue
            try:
                events.append(Event.from_json(json.loads(line)))
            except (ValueError, TypeError, KeyError):
                logger.warning("%s: line %d is not a whole event (a write cut short?); skipped", self.log, number)
        return events

    def append(self, event: Event) -> None:
        """Add one line to the log, on disk before this returns; a torn last line is ended first, so that it stays
        one bad line of its own."""
        self.folder.mkdir(parents=True, exist_ok=True)
        torn = False
        if self.log.is_file() and self.log.stat().st_size:
            with self.log.open("rb") as handle:
                handle.seek(-1, os.SEEK_END)
                torn = handle.read(1) != b"\n"
        line = json.dumps(event.to_json(), ensure_ascii=False) + "\n"
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(("\n" if torn else "") + line)
            handle.flush()
            os.fsync(handle.fileno())
        logger.info("history: %s version %d (%s)", event.action, event.version, event.digest)

    def add(self, model_dir: str | Path) -> Version:
        """The version holding ``model_dir``'s model: an existing one with its digest, else a new copy, checked first,
        copied under a hidden name and renamed into place."""
        model_dir = Path(model_dir)
        check_model_folder(model_dir)
        digest = served_version(model_dir)
        versions = self.versions()
        known = next((v for v in versions if v.digest == digest), None)
        if known is not None:
            return known
        self.folder.mkdir(parents=True, exist_ok=True)
        for partial in self.folder.glob(f"{PARTIAL_PREFIX}*"):  # copies that a kill interrupted: never versions
            shutil.rmtree(partial, ignore_errors=True)
        number = max((v.number for v in versions), default=0) + 1
        final = self.folder / f"{number:04d}-{digest}"
        partial = self.folder / f"{PARTIAL_PREFIX}{final.name}"
        partial.mkdir()
        _copy_files(model_dir, partial, model_files(model_dir))
        if served_version(partial) != digest:
            raise UserError(f"{model_dir}: its {METADATA_FILE} changed while it was copied; try again once it is still")
        os.replace(partial, final)
        logger.info("copied %s into %s", model_dir, final)
        return Version(number, digest, final)

    def record_served(self) -> Version:
        """The served model's version; recorded first where the history lacks it (its first use, or a model trained
        into the folder outside this module since)."""
        current = self.current()
        if current is not None:
            return current
        first = not self.versions()
        version = self.add(self.served)
        reason = (
            "The model served when the history began."
            if first
            else "The served model was not in the history (written into the folder outside `recsys.loop.commands`)."
        )
        self.append(Event(utc_now(), RECORDED, version.number, version.digest, reason))
        return version

    def serve(self, version: Version) -> None:
        """Replace the served folder's model by ``version``'s copy, byte for byte, as one change
        (``recsys.model.commits``)."""
        check_model_folder(version.path)
        if served_version(version.path) != version.digest:
            raise ModelFolderError(
                version.path,
                f"its {METADATA_FILE} is not the version its name says ({version.digest})",
                "restore the folder from a backup; nothing was served from it",
            )
        staging = begin_commit(self.served)
        _copy_files(version.path, staging, model_files(version.path))
        commit(self.served)
        logger.info("%s now serves version %d (%s)", self.served, version.number, version.digest)


# -- what the commands do to the history -------------------------------------------------------------------------------


def record(served_dir: str | Path) -> Version:
    """The served model's version, recorded where the history lacks it (the first use records version 1)."""
    return History(served_dir).record_served()


def rollback(served_dir: str | Path, reference: str, reason: str | None = None) -> Version:
    """Serve a recorded version again (by number or digest); the model served now is recorded first if it is not."""
    history = History(served_dir)
    previous = history.record_served()
    version = history.find(reference)
    if version == previous:
        logger.info("%s serves version %d already; nothing changed", history.served, version.number)
        return version
    history.serve(version)
    why = reason or f"Rolled back by request from version {previous.number} to version {version.number}."
    history.append(Event(utc_now(), ROLLED_BACK, version.number, version.digest, why, previous=previous.number))
    return version


def describe_versions(history: History) -> list[tuple[Version, bool, str]]:
    """Each version, whether it is served now, and when it was first logged ("" where its event was lost)."""
    current = history.current()
    first: dict[int, str] = {}
    for event in history.events():
        if event.action != KEPT:
            first.setdefault(event.version, event.time)
    serving = current.number if current is not None else None
    return [(version, version.number == serving, first.get(version.number, "")) for version in history.versions()]
