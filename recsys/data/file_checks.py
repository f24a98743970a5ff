"""What a file must be before a reader opens it, and what an output must not be.

An input is a file (not a folder, not missing) and, where its suffix says text, no binary file; text that is not UTF-8
is refused naming its first bad byte and where it is (:func:`not_utf8`). An output is never one of the command's
inputs, by its own path or through a link (:func:`check_not_an_input`, :func:`check_not_an_input_folder`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from recsys.errors import ContractError

TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".txt")  # read as UTF-8 text; a NUL byte means a binary file
_SNIFF_BYTES = 8192
_CHUNK_BYTES = 1 << 20


def require_file(path: Path, source: str) -> None:
    if path.is_dir():
        raise ContractError(source, "is a folder, not a file", "give the path of a file in it")
    if not path.is_file():
        raise ContractError(source, "no such file")


def refuse_binary(path: Path, source: str) -> None:
    if path.suffix.lower() in TEXT_SUFFIXES:
        with path.open("rb") as handle:
            if b"\x00" in handle.read(_SNIFF_BYTES):
                raise ContractError(source, "this looks like a binary file", "give UTF-8 text (CSV, TSV, JSONL, TXT)")


def _first_non_utf8(path: Path) -> tuple[int, int, str] | None:
    """The file offset, line and reason of the first byte that is not UTF-8, read in chunks; None where all is.

    pandas reports an offset inside the chunk it was decoding, which names the wrong byte of a large file.
    """
    offset, line, pending = 0, 1, b""  # ``pending``: a character cut in two by the chunk boundary
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            data = pending + chunk
            try:
                data.decode("utf-8")
                good, pending = len(data), b""
            except UnicodeDecodeError as err:
                if err.reason != "unexpected end of data" or err.end < len(data):
                    return offset + err.start, line + data.count(b"\n", 0, err.start), err.reason
                good, pending = err.start, data[err.start :]
            offset, line = offset + good, line + data.count(b"\n", 0, good)
    return (offset, line, "the file ends inside a character") if pending else None


def not_utf8(path: Path, source: str, fix: str = "re-save it as UTF-8") -> ContractError:
    found = _first_non_utf8(path)
    if found is None:  # pandas decoded with another codec; the bytes themselves are fine
        return ContractError(source, "not UTF-8 text", fix)
    offset, line, reason = found
    with path.open("rb") as handle:
        handle.seek(offset)
        byte = handle.read(1)
    return ContractError(source, f"not UTF-8 text (byte 0x{byte.hex()} at offset {offset}, line {line}: {reason})", fix)


def check_not_an_input(out: str | Path, inputs: Sequence[str | Path], fix: str) -> None:
    """Refuse an output that is one of a command's inputs, by its own path or through a link: writing it would
    destroy what the command reads. The one rule of every command that writes a file."""
    out = Path(out)
    for source in map(Path, inputs):
        if out.exists() and source.exists() and out.samefile(source):
            kind = "folder" if source.is_dir() else "file"
            problem = f"is the input {kind}" if out == source else f"is the input {kind} {source}, through a link"
            raise ContractError(str(out), problem, fix)


def check_not_an_input_folder(out: str | Path, inputs: Iterable[str | Path], fix: str) -> None:
    """Refuse an output folder that is one of a command's inputs or holds one, by its own path or through a link:
    writing into it would destroy what the command reads. The folder's form of :func:`check_not_an_input`.

    Paths are compared as given (made absolute) and as resolved, so that a link on either side counts.
    """
    out = Path(out)
    given, resolved = Path(os.path.abspath(out)), out.resolve()
    for source in map(Path, inputs):
        for mine, theirs, how in (
            (given, Path(os.path.abspath(source)), ""),
            (resolved, source.resolve(), ", through a link"),
        ):
            if theirs == mine or theirs.is_relative_to(mine):
                kind = "folder" if source.is_dir() else "file"
                verb = "is" if theirs == mine else "holds"
                raise ContractError(str(out), f"{verb} the input {kind} {source}{how}", fix)
