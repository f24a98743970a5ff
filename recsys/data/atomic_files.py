"""Writing a file atomically, the one primitive for it: to a hidden partial file beside it, flushed to
disk and renamed over it when complete. A reader (or a kill) never sees half a file, and a write that fails leaves
nothing under the file's name, nor its partial file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def partial_path(path: Path) -> Path:
    """The hidden file that a write of ``path`` goes to first; named by process and thread, so that two writers of
    one path never share it."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")


@contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """The partial file to write ``path`` through (:func:`partial_path`): once the block ends, it is flushed to disk
    and renamed to ``path``; where the block raises, it is removed and ``path`` is left as it was."""
    partial = partial_path(path)
    try:
        yield partial
        with partial.open("rb") as handle:  # what the block wrote, on disk before the rename makes it the file
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """``text`` as the whole of ``path`` (UTF-8), written atomically."""
    with atomic_write(path) as partial:
        partial.write_text(text, encoding="utf-8")
