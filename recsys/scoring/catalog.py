"""Catalog mode: a bi-encoder's vectors of a whole catalog in a faiss index, ranked for a new context in milliseconds.

    python -m recsys.scoring.catalog build --model DIR --items catalog.csv [--out DIR]
    python -m recsys.scoring.catalog query --catalog DIR --context "..." [--top-k 10]

A bi-encoder's final score is linear in the cosine of the context's and the item's vectors, with a
per-item offset: ``final = slope · cos(q, v) + offset`` (the slope is the blend's text weight times the
model's scale; the offset holds its bias and what the training log knew of the item). So the index holds
``[v, offset]`` per item and is searched with ``[slope · q, 1]``: an inner-product search returns the top
items by final score. Both numbers are read off the scorer (:func:`score_line`), which keeps the formula.

Up to :data:`EXACT_LIMIT` items the search is exhaustive (``IndexFlatIP``); above it, an HNSW graph,
whose ``efSearch`` is the smallest that finds :data:`TARGET_RECALL` of the exact top 100 for a sample of
the catalog's own items as contexts; that recall is kept in ``catalog.json``. The retrieved items are
scored again by the scorer, so the ranked table is :func:`recsys.scoring.ranking.rank_candidates`' for those items.

A catalog folder (default: ``<items file>-index`` beside the items file) holds ``index.faiss``,
``items.parquet`` and ``catalog.json``, written last: a folder without it is no catalog. A catalog
belongs to one model version; loading it with another model is refused with the command that rebuilds it.
A cross-encoder reads each (context, item) pair together, so it has no item vectors to index.

Loading (``recsys.scoring.catalog_search``, with ``recsys.scoring.catalog_info`` for ``catalog.json``) checks
everything before a context is ranked, each failure in one line with the command that rebuilds the catalog:
``catalog.json`` whole (every key known, each value of its type, numbers finite, the search settings its kind
needs), the three files regular files of the folder, never links (a link's target is never read), the index of the
kind and size that ``catalog.json`` says, and the items table by the candidate contract. The build, here, never
writes over what it reads: its folder is not the model folder, and its files are not the items file or the app's
feedback database, by path or through a link; each file is written aside and renamed, so that a link in the folder
is replaced, never written through.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from recsys.cli import run_cli, say
from recsys.data.candidates import read_candidates
from recsys.data.contract import CLICK_PROBABILITY, ITEM, ITEM_ID, RANK, SCORE
from recsys.data.file_checks import check_not_an_input
from recsys.defaults import DB_FILE, FEEDBACK_DIR, Env
from recsys.errors import ContractError
from recsys.model.artifact import resolve_model_path
from recsys.scoring.catalog_info import APPROXIMATE, CATALOG_FILES, EF_SEARCH_STEPS, EXACT, CatalogInfo
from recsys.scoring.catalog_search import TOP_K, Catalog
from recsys.scoring.loading import load_scorer
from recsys.scoring.onnx_agreement import FP32
from recsys.scoring.onnx_runtime import onnx_precisions
from recsys.scoring.scorer import Scorer, require_bi_encoder

if TYPE_CHECKING:
    import faiss

logger = logging.getLogger(__name__)

# Ranking a catalog may take 50 ms (p50), the context's encoding included (MiniLM: 10-20 ms on 2 busy cores).
# An exhaustive search reads every vector (385 floats): on this project's shared 2-core machine, ranking 100,000
# took 24 ms p50 besides the encoding (37 ms with it), 50,000 about half that. Above this limit an HNSW graph ranks
# 100,000 clustered synthetic vectors in 4 ms besides the encoding (22 ms with it), at recall@100 0.95.
EXACT_LIMIT = 50_000
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 80  # graph degree and build-time beam: 100,000 items take under a minute
TARGET_RECALL = 0.95
RECALL_QUERIES = 200  # catalog items whose vectors stand in for contexts when the recall is measured
ENCODE_CHUNK = 4096  # items encoded and added at a time, so that a big catalog's tokens never all sit in memory


def score_line(scorer: Scorer, items: pd.DataFrame, dim: int) -> tuple[float, np.ndarray]:
    """The slope, and each item's offset, of the scorer's final score as a function of the cosine.

    Read off the scorer itself (its logits at cosine 0 and 1, through its final scores), so that the score's
    formula keeps its one owner, ``recsys.scoring.scorer``; a score that is not linear in the cosine is refused.
    """
    unit = np.zeros((1, dim), dtype=np.float32)
    unit[0, 0] = 1.0
    at_zero, at_one = float(scorer.logits(unit, np.zeros_like(unit))[0]), float(scorer.logits(unit, unit)[0])
    offsets = scorer.final_scores(np.full(len(items), at_zero), items)
    slopes = scorer.final_scores(np.full(len(items), at_one), items) - offsets
    if not np.allclose(slopes, slopes[0], rtol=1e-6, atol=1e-9):
        raise TypeError("the model's final score is not the same multiple of the cosine for every item")
    return float(slopes[0]), offsets


def build_index(
    scorer: Scorer,
    items: pd.DataFrame,
    *,
    vectors: np.ndarray | None = None,
    exact_limit: int = EXACT_LIMIT,
    items_file: str = "",
    model: str = "",
    seed: int = 0,
) -> Catalog:
    """Index a validated catalog (the contract's candidate columns) for ``scorer``'s model.

    ``vectors``: the items' normalised vectors where they were computed before (one row per item); by
    default they are encoded here, :data:`ENCODE_CHUNK` items at a time, with a progress bar.
    """
    import faiss  # imported here, as recsys.scoring.ranking (which loads torch): --help loads neither

    from recsys.scoring.ranking import check_candidates

    require_bi_encoder(scorer.model.architecture, scorer.version, "a catalog index")
    source = items_file or "the catalog"
    if items.empty:
        raise ContractError(source, "no items", "give a catalog with at least one item")
    if vectors is not None and len(vectors) != len(items):
        raise ValueError(f"{len(vectors)} vectors for {len(items)} items: give one vector per item")
    check_candidates(scorer, items)  # its columns must fit the ranked table, as a list's do
    _refuse_mixed_columns(items, source)
    items = items.reset_index(drop=True)
    count, exact = len(items), len(items) <= exact_limit
    index, slope = None, None
    with tqdm(total=count, desc="encoding the catalog", unit=" items", disable=None) as progress:
        for start in range(0, count, ENCODE_CHUNK):
            chunk = items.iloc[start : start + ENCODE_CHUNK]
            if vectors is None:
                chunk_vectors = scorer.encoder.encode(chunk[ITEM].tolist(), progress.update)
            else:
                chunk_vectors = np.asarray(vectors[start : start + ENCODE_CHUNK], dtype=np.float32)
                progress.update(len(chunk))
            dim = chunk_vectors.shape[1]
            if index is None:
                index = faiss.IndexFlatIP(dim + 1) if exact else _hnsw(dim + 1)
            slope, offsets = score_line(scorer, chunk, dim)
            index.add(np.hstack([chunk_vectors, offsets[:, None]]).astype(np.float32))
    parameters, recall = ({}, None) if exact else _tune_search(index, slope, np.random.default_rng(seed))
    info = CatalogInfo(
        model_version=scorer.version,
        encoder=scorer.encoder.name,
        count=count,
        dim=index.d - 1,
        kind=EXACT if exact else APPROXIMATE,
        slope=slope,
        parameters=parameters,
        recall_at_100=recall,
        model=model,
        items_file=items_file,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    return Catalog(index, items, info, scorer)


def _hnsw(dim: int) -> faiss.IndexHNSWFlat:
    import faiss  # imported here: --help loads no faiss

    index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return index


def _tune_search(index: faiss.IndexHNSWFlat, slope: float, rng: np.random.Generator) -> tuple[dict[str, int], float]:
    """The smallest efSearch of :data:`~recsys.scoring.catalog_info.EF_SEARCH_STEPS` whose recall@100 reaches
    :data:`TARGET_RECALL`, and its recall.

    Contexts are texts like the items, so a sample of the items' own vectors stands in for them; the truth is
    the exhaustive search of the same vectors (the graph's own storage).
    """
    import faiss  # imported here: --help loads no faiss

    sample = rng.choice(index.ntotal, min(RECALL_QUERIES, index.ntotal), replace=False)
    stored = index.reconstruct_batch(sample)
    queries = np.hstack([slope * stored[:, :-1], np.ones((len(sample), 1))]).astype(np.float32)
    k = min(TOP_K, index.ntotal)
    _, truth = faiss.downcast_index(index.storage).search(queries, k)
    for ef_search in EF_SEARCH_STEPS:
        _, found = index.search(queries, k, params=faiss.SearchParametersHNSW(efSearch=ef_search))
        recall = float(np.mean([len(np.intersect1d(f, t)) / k for f, t in zip(found, truth, strict=True)]))
        logger.info("efSearch %d: recall@%d %.3f", ef_search, k, recall)
        if recall >= TARGET_RECALL:
            break
    else:
        logger.warning(
            "recall@%d is %.3f at efSearch %d, below %.2f: this catalog's vectors are hard to search approximately; "
            "build it with --exact-limit above %d to search it exhaustively",
            k, recall, ef_search, TARGET_RECALL, index.ntotal,
        )  # fmt: skip
    parameters = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": ef_search}
    return parameters, round(recall, 4)


def _refuse_mixed_columns(items: pd.DataFrame, source: str) -> None:
    """A column that mixes text and numbers (a .jsonl's) cannot be stored as one parquet column: say which."""
    # Only an object column can mix kinds (text is pandas' own string type); asked by dtype, not select_dtypes,
    # which warns on every build that "object" no longer takes in text.
    for column in [c for c in items.columns if items[c].dtype == object]:
        try:
            pa.array(items[column], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise ContractError(
                source, f"column {column!r} mixes kinds of values ({err})",
                "give each column one kind of value: all text, or all numbers", column=str(column),
            ) from None  # fmt: skip


def refuse_writing_over_inputs(folder: str | Path, items_file: str | Path, model_dir: str | Path) -> None:
    """Refuse a catalog folder that is the model folder, or whose files would be the items file or the app's
    feedback database (or its WAL files), by path or through a link (``recsys.data.file_checks.check_not_an_input``,
    the one rule of every command that writes): the build would destroy what it reads."""
    folder, fix = Path(folder), "write the catalog to another folder (--out)"
    database = Path(os.environ.get(Env.FEEDBACK_DIR) or FEEDBACK_DIR) / DB_FILE
    inputs = [Path(items_file), database, *(database.with_name(database.name + end) for end in ("-wal", "-shm"))]
    for out in (folder, *(folder / name for name in CATALOG_FILES)):
        check_not_an_input(out, [*inputs, model_dir], fix)


# -- the command line ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys.scoring.catalog",
        description="Index a catalog for a bi-encoder, and rank it for a context.",
        epilog="Installed as a package (pip install .), the same command is clicktune-index.",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        help="what to do; `python -m recsys.scoring.catalog build --help` lists its flags",
    )
    build = commands.add_parser("build", help="encode and index a catalog (a candidate file)")
    build.add_argument("--model", help="saved model folder, Hub id or base model name (default: the base model)")
    build.add_argument("--items", required=True, type=Path, help="the catalog: .csv, .tsv, .jsonl, .parquet or .txt")
    build.add_argument("--item-column", default=ITEM, help=f"the column that holds the item text (default: {ITEM})")
    build.add_argument("--out", type=Path, help="the catalog folder (default: <items file>-index beside it)")
    build.add_argument(
        "--exact-limit",
        type=int,
        default=EXACT_LIMIT,
        help=f"search up to this many items exhaustively; more: an HNSW graph (default: {EXACT_LIMIT})",
    )
    query = commands.add_parser("query", help="rank a catalog for a context")
    query.add_argument("--catalog", required=True, type=Path, help="a folder that `build` wrote")
    query.add_argument("--context", required=True, help="a query, or a user's recent titles joined by ' | '")
    query.add_argument("--top-k", type=int, default=10, help="how many items to show (default: 10)")
    query.add_argument("--model", help="the model to rank with (default: the one the catalog was built with)")
    for command in (build, query):
        command.add_argument(
            "--onnx",
            choices=("1", FP32, "0"),
            default="1",
            help="encode with the model folder's checked ONNX export, as the app's CLICKTUNE_ONNX: 1, the int8 or "
            "fp32 export that passed its check; fp32, that one only; 0, PyTorch. A catalog belongs to its encoder: "
            "build it with the app's setting (default: 1)",
        )
    return parser


def main(argv: list[str] | None = None) -> Catalog | pd.DataFrame:
    args = build_parser().parse_args(argv)
    onnx = onnx_precisions(args.onnx)

    if args.command == "build":
        out = args.out or args.items.with_name(f"{args.items.stem}-index")
        refuse_writing_over_inputs(out, args.items, resolve_model_path(args.model))
        items = read_candidates(args.items, args.item_column)
        model = str(Path(args.model).resolve()) if args.model and Path(args.model).is_dir() else args.model or ""
        catalog = build_index(
            load_scorer(args.model, onnx=onnx),
            items,
            exact_limit=args.exact_limit,
            items_file=str(args.items),
            model=model,
        )
        folder = catalog.save(out)
        info = catalog.info
        search = f"approximate (HNSW, recall@100 {info.recall_at_100:.3f})" if info.kind == APPROXIMATE else "exact"
        say(f"indexed {info.count} items for {info.model_version}, {search}, in {folder}")
        return catalog
    model = args.model or CatalogInfo.load(args.catalog).model or None
    ranked = Catalog.load(args.catalog, load_scorer(model, onnx=onnx), args.model).rank(args.context, args.top_k)
    say(ranked[[RANK, ITEM_ID, ITEM, SCORE, CLICK_PROBABILITY]].to_string(index=False))
    return ranked


def cli() -> None:
    """``python -m recsys.scoring.catalog``, installed as ``clicktune-index``."""
    run_cli(main)


if __name__ == "__main__":
    cli()
