"""Score a file of (query, item) rows too big to hold at once, on one process or several.

    python -m recsys.scoring.bulk --model DIR --data big.csv --out scores.csv
    accelerate launch --multi_gpu --num_processes N -m recsys.scoring.bulk --model DIR --data big.csv --out scores.csv

The file (.csv, .tsv, .jsonl, .parquet) is read in chunks of ``--chunk-size`` rows. Each chunk is
checked by the contract (``query`` and ``item`` text in every row, ``item_id`` optional, every
other column kept), scored by ``Scorer.score_frame`` and written with two columns added: ``score``,
the final score that ranks, and ``probability``, the calibrated click probability. Rows keep their
input order; the output's format follows its suffix. It is written under a hidden name beside
``--out`` and renamed when complete, so a failed run leaves nothing under the output's name.

Several processes: the launcher (``accelerate launch``, ``torchrun``) sets ``RANK`` and
``WORLD_SIZE``, from which this module joins a ``torch.distributed`` group (gloo, on any machine);
where the caller has set one up already, that one is used. Process r scores chunks r, r + N,
r + 2N, ... and saves each in a hidden parts folder beside ``--out``; once every process is done,
process 0 merges the parts in chunk order into the output and deletes them. The result is the
file that one process writes. Every process reads the whole input (parsing is cheap beside the
model) and must see the output's folder: on several machines, a shared file system. A failed run
leaves no output, and may leave its parts behind, hidden; the next run to that output clears them.
The model runs on the CPU in each process, as it serves (``recsys.scoring.scorer``). Accelerate
1.15 starts one process only for ``--cpu`` without an MPI host file, so several CPU processes are
launched with ``--multi_gpu`` and ``ACCELERATE_USE_CPU=1``, or with ``torchrun``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from recsys.cli import run_cli, say
from recsys.data.contract import PROBABILITY, SCORE, validate_pairs
from recsys.data.file_checks import check_not_an_input
from recsys.data.limits import describe_rows
from recsys.data.table_writer import written_atomically
from recsys.data.tables import TABULAR_SUFFIXES, read_table_chunks
from recsys.errors import ContractError, UserError
from recsys.scoring.loading import load_scorer
from recsys.scoring.processes import Processes, joined_processes
from recsys.scoring.scorer import Scorer

logger = logging.getLogger(__name__)

CHUNK_ROWS = 10_000  # rows read, checked and scored at a time: memory stays bounded, N processes share the work

KeepChunk = Callable[[pd.DataFrame, int], None]  # (a scored chunk, its number in the file from 0)


@dataclass(frozen=True)
class ScoredFile:
    """What a run wrote: the same in every process of it."""

    out: Path
    rows: int  # rows of the input, all scored (by this process and the others)
    chunks: int
    processes: int


def check_output(out: Path, data: Path) -> None:
    """Refuse an output that could not be written, before any scoring."""
    if out.suffix.lower() not in TABULAR_SUFFIXES:
        raise ContractError(
            str(out),
            f"unknown output type {out.suffix or '(none)'!r}",
            f"name it ending in one of {', '.join(TABULAR_SUFFIXES)}",
        )
    if not out.parent.is_dir():
        raise ContractError(str(out), f"the folder {str(out.parent)!r} does not exist", "create it or choose another")
    if out.is_dir():
        raise ContractError(str(out), "is a folder", "give the path of a file to write")
    check_not_an_input(out, [data], "write the scores to another file")


def parts_folder(out: Path) -> Path:
    """Where the processes of a run leave their scored chunks for process 0 to merge (hidden beside ``out``)."""
    return out.with_name(f".{out.name}.parts")


def part_path(parts: Path, chunk: int) -> Path:
    # pickle: a chunk comes back exactly as it was scored, whatever its columns hold; the files are
    # this run's own, in a folder that its process 0 made
    return parts / f"chunk-{chunk:09d}.pkl"


# -- scoring -----------------------------------------------------------------------------------------------


def checked_chunk(chunk: pd.DataFrame, source: str, rows_before: int) -> pd.DataFrame:
    """The chunk as the contract checks it; a bad row is named by its place in the file, not in the chunk."""
    try:
        return validate_pairs(chunk, source)
    except ContractError as err:
        if not err.rows or not rows_before:
            raise
        rows = tuple(row + rows_before for row in err.rows)
        problem = err.problem.replace(describe_rows(err.rows), describe_rows(rows))
        raise replace(err, problem=problem, rows=rows) from None


def refuse_added_columns(chunk: pd.DataFrame, source: str) -> None:
    taken = [name for name in (SCORE, PROBABILITY) if name in chunk.columns]
    if taken:
        raise ContractError(
            source, f"already has a {taken[0]!r} column, which the scores would replace",
            f"rename or drop the column {taken[0]!r}", column=taken[0],
        )  # fmt: skip


def score_chunk(
    scorer: Scorer, chunk: pd.DataFrame, source: str, rows_before: int = 0, progress: tqdm | None = None
) -> pd.DataFrame:
    """The chunk's rows, checked, with their ``score`` and ``probability``; ``progress`` counts the rows scored."""
    pairs = checked_chunk(chunk, source, rows_before)
    counted = 0

    def count(done: int, total: int, what: str = "") -> None:  # the scorer's report: pairs done of this chunk's
        nonlocal counted
        if progress is not None:
            progress.update(done - counted)
        counted = done

    scores, probabilities = scorer.score_frame(pairs, progress=count)
    count(len(pairs), len(pairs))  # all of them, reported or not (an empty chunk)
    return pairs.assign(**{SCORE: scores, PROBABILITY: probabilities})


def score_file(
    model: Scorer | str | None,
    data: Path,
    out: Path,
    chunk_size: int = CHUNK_ROWS,
    processes: Processes | None = None,
) -> ScoredFile:
    """Score every row of ``data`` into ``out``, ``chunk_size`` rows at a time, with a scorer or the model that
    :func:`~recsys.scoring.loading.load_scorer` loads by that name (after the files are checked); with several
    ``processes``, each scores its share and process 0 merges the shares (module docstring)."""
    processes = processes or Processes()
    if chunk_size < 1:
        raise UserError(f"--chunk-size must be at least 1, not {chunk_size}")
    check_output(out, data)
    chunks = read_table_chunks(data, chunk_size)  # checks the file: its type, that it exists and is text
    scorer = model if isinstance(model, Scorer) else load_scorer(model)
    if processes.count == 1:
        with written_atomically(out) as writer:
            rows, count = _score_chunks(scorer, chunks, str(data), processes, lambda chunk, k: writer.write(chunk))
        return ScoredFile(out, rows, count, 1)

    parts = parts_folder(out)
    if processes.is_main:  # what a failed run left
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir()
    processes.wait_for_everyone()
    rows, count = _score_chunks(
        scorer, chunks, str(data), processes, lambda chunk, k: chunk.to_pickle(part_path(parts, k))
    )
    processes.wait_for_everyone()
    if processes.is_main:
        merge_parts(parts, count, out)
    return ScoredFile(out, rows, count, processes.count)


def _score_chunks(
    scorer: Scorer, chunks: Iterator[pd.DataFrame], source: str, processes: Processes, keep: KeepChunk
) -> tuple[int, int]:
    """Score this process's chunks and ``keep`` each; return the rows and chunks of the whole file."""
    rows = count = 0
    share = f" (process {processes.rank} of {processes.count})" if processes.count > 1 else ""
    with tqdm(desc=f"scoring{share}", unit=" rows", disable=not processes.is_main) as progress:
        for k, chunk in enumerate(chunks):
            if k == 0:
                refuse_added_columns(chunk, source)
            if k % processes.count == processes.rank:
                keep(score_chunk(scorer, chunk, source, rows, progress), k)
            rows, count = rows + len(chunk), count + 1
    return rows, count


def merge_parts(parts: Path, chunks: int, out: Path) -> None:
    """Write the scored chunks 0 to ``chunks - 1`` from ``parts`` into ``out`` in order, one at a time, then
    delete them; a chunk missing (a process that did not finish) fails the merge, leaving no output."""
    logger.info("merging %d scored chunks into %s", chunks, out)
    with written_atomically(out) as writer:
        for k in tqdm(range(chunks), desc="merging", unit=" chunks"):
            path = part_path(parts, k)
            if not path.is_file():
                raise UserError(f"{path}: the scores of chunk {k} are missing; run the scoring again")
            writer.write(pd.read_pickle(path))
    shutil.rmtree(parts)


# -- command line ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys.scoring.bulk",
        description="Score every (query, item) row of a large file with a model, chunk by chunk, into a file "
        "of the same rows with their score and click probability added.",
        epilog="Several processes share the work under a launcher: accelerate launch --multi_gpu --num_processes N "
        "-m recsys.scoring.bulk ... (on CPUs with ACCELERATE_USE_CPU=1), or torchrun --nproc-per-node N "
        "-m recsys.scoring.bulk ... . Installed as a package (pip install .), the same command is clicktune-score.",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="saved model folder, Hub id or base model name (default: the zero-shot base model)",
    )
    parser.add_argument(
        "--data", required=True, type=Path, help="rows to score, with query and item columns (.csv, .tsv, .jsonl, "
        ".parquet); other columns are kept",
    )  # fmt: skip
    parser.add_argument(
        "--out", required=True, type=Path, help="the file to write: the rows with score and probability added "
        "(.csv, .tsv, .jsonl or .parquet, by its suffix)",
    )  # fmt: skip
    parser.add_argument(
        "--chunk-size", type=int, default=CHUNK_ROWS, metavar="ROWS",
        help="rows read and scored at a time, and the unit of work shared between processes (default: %(default)s)",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> ScoredFile:
    args = build_parser().parse_args(argv)
    with joined_processes() as processes:
        scored = score_file(args.model, args.data, args.out, args.chunk_size, processes)
    if processes.is_main:
        say(f"{scored.out}: {scored.rows} rows scored in {scored.chunks} chunks by {scored.processes} process(es)")
    return scored


def cli() -> None:
    """``python -m recsys.scoring.bulk``, installed as ``clicktune-score``."""
    run_cli(main)


if __name__ == "__main__":
    cli()
