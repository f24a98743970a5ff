"""Feedback that survives a Space restart: the store mirrored to a private dataset repo on the Hub.

A Space's disk is wiped when it restarts, unless persistent storage is attached (then point
FEEDBACK_DIR at it). The other way, free, is huggingface_hub's ``CommitScheduler``: every saved
list is also appended, as JSON lines (``recsys.feedback.store.MIRROR_COLUMNS``: each item's team, an
interleaved list's challenger and outcome), to a file of this process under ``FEEDBACK_DIR/hub-mirror/``,
which the scheduler commits to the dataset repo every few minutes and once more at exit. At start,
an empty store is filled back from the repo's files, so that a restarted Space keeps what it had.

    FEEDBACK_REPO=OWNER/NAME           the dataset repo (created private where missing); unset: off
    FEEDBACK_PUSH_MINUTES=10           how often to commit
    HF_TOKEN                           a token that may write to it (a Space secret)
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pandas as pd
from huggingface_hub import CommitScheduler, HfApi

from recsys.feedback.store import FeedbackStore

logger = logging.getLogger(__name__)

MIRROR_FOLDER = "hub-mirror"  # in FEEDBACK_DIR: this process's JSON lines, as the scheduler commits them
PATH_IN_REPO = "feedback"


class HubMirror:
    """Appends each saved list to a JSON-lines file that a ``CommitScheduler`` pushes to ``repo_id``."""

    def __init__(
        self,
        data_dir: str | Path,
        repo_id: str,
        every_minutes: float = 10,
        *,
        token: str | None = None,
        api: HfApi | None = None,
    ) -> None:
        self.repo_id = repo_id
        folder = Path(data_dir) / MIRROR_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        self.file = folder / f"feedback-{uuid.uuid4().hex}.jsonl"  # one per process: appends never collide
        self.scheduler = CommitScheduler(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=folder,
            path_in_repo=PATH_IN_REPO,
            every=every_minutes,
            private=True,
            token=token,
            allow_patterns=["*.jsonl"],
            hf_api=api,
        )

    def append(self, rows: pd.DataFrame) -> None:
        """One saved list's rows (the store's columns); the scheduler's lock keeps a commit from cutting a line."""
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows.to_dict(orient="records"))
        with self.scheduler.lock, self.file.open("a", encoding="utf-8") as handle:
            handle.write(lines)

    def stop(self) -> None:
        """Push what is left and stop the scheduler (it also pushes at interpreter exit)."""
        self.scheduler.stop()
        self.scheduler.push_to_hub()


def restore(store: FeedbackStore, repo_id: str, *, token: str | None = None, api: HfApi | None = None) -> int:
    """Fill an empty store from the repo's JSON lines, in the order the lists were saved; returns the lists restored.

    A list saved twice appears twice in the lines: the later one replaces the earlier, as in the store.
    """
    if store.summary()["rows"]:
        return 0
    api = api or HfApi()
    folder = api.snapshot_download(repo_id, repo_type="dataset", allow_patterns=f"{PATH_IN_REPO}/*.jsonl", token=token)
    rows = [
        json.loads(line)
        for path in sorted(Path(folder).glob(f"{PATH_IN_REPO}/*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if not rows:
        return 0
    frame = pd.DataFrame(rows).sort_values("created_at", kind="stable")
    restored = store.restore(frame)
    logger.info("restored %d lists of feedback from the Hub dataset %s", restored, repo_id)
    return restored
