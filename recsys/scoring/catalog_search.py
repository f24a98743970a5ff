"""A built catalog ranked for a context: :class:`Catalog` loads a folder (checked whole, for the served model only),
saves one, and ranks its top items by an inner-product search whose items the scorer scores again.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.data.atomic_files import write_text_atomic
from recsys.data.candidates import validate_candidates
from recsys.errors import ContractError, UserError
from recsys.scoring.catalog_info import (
    APPROXIMATE,
    CATALOG_FILE,
    INDEX_FILE,
    ITEMS_FILE,
    CatalogInfo,
    rebuild_command,
    require_own_file,
)
from recsys.scoring.scorer import Scorer, require_bi_encoder
from recsys.scoring.vectors import vectors_of

if TYPE_CHECKING:
    import faiss


TOP_K = 100  # what a catalog ranking returns by default, and the depth its recall is measured at


@dataclass
class Catalog:
    """A catalog's items, its index and its :class:`~recsys.scoring.catalog_info.CatalogInfo`, ranked for a context
    with ``scorer``."""

    index: faiss.Index
    items: pd.DataFrame  # validated candidates (item, optional item_id, extra columns), one row per indexed item
    info: CatalogInfo
    scorer: Scorer

    def __len__(self) -> int:
        return self.info.count

    def rank(self, context: str, top_k: int = TOP_K) -> pd.DataFrame:
        """The catalog's top items for ``context``, as :func:`recsys.scoring.ranking.rank_candidates` ranks a list.

        The index finds them; the scorer scores them again, so their scores and order are those of ranking
        the whole catalog (up to float ties); ties keep catalog order. ``input_row`` is the catalog row.
        """
        import faiss  # imported here, as recsys.scoring.ranking (which loads torch): --help loads neither

        from recsys.scoring.ranking import ranked_table

        query = self.scorer.embed([context])  # encodes the context alone (cached by the scorer)
        k = min(max(int(top_k), 0), self.info.count)
        if k == 0:
            return ranked_table(self.scorer, self.items.iloc[:0], np.zeros(0, dtype=np.float32))
        searched = np.hstack([self.info.slope * query, np.ones((1, 1))]).astype(np.float32)
        params = {}
        if self.info.kind == APPROXIMATE:
            params["params"] = faiss.SearchParametersHNSW(efSearch=max(self.info.parameters["ef_search"], k))
        _, found = self.index.search(searched, k, **params)
        rows = np.sort(found[0][found[0] >= 0])  # in catalog order, which equal scores keep
        vectors = self.index.reconstruct_batch(rows)[:, : self.info.dim]
        return ranked_table(self.scorer, self.items.iloc[rows], self.scorer.logits(query, vectors), top_k=k)

    def save(self, folder: str | Path) -> Path:
        """The index, the items, then ``catalog.json``: a kill part-way leaves a folder without it, no catalog.

        Each file is written aside and renamed into place, so that a link of that name is replaced, never written
        through.
        """
        import faiss  # imported here: --help loads no faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CATALOG_FILE).unlink(missing_ok=True)
        partial = {name: folder / f".{name}.{os.getpid()}.partial" for name in (INDEX_FILE, ITEMS_FILE)}
        try:
            faiss.write_index(self.index, str(partial[INDEX_FILE]))
            self.items.to_parquet(partial[ITEMS_FILE], index=False)
            for name, file in partial.items():
                os.replace(file, folder / name)
        finally:
            for file in partial.values():
                file.unlink(missing_ok=True)
        write_text_atomic(folder / CATALOG_FILE, json.dumps(asdict(self.info), indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path, scorer: Scorer, model: str | None = None) -> Catalog:
        """The catalog in ``folder``, for ``scorer``'s model only; ``model`` names it in the rebuild command."""
        import faiss  # imported here, as recsys.scoring.ranking (which loads torch): --help loads neither

        from recsys.scoring.ranking import check_candidates

        require_bi_encoder(scorer.model.architecture, scorer.version, "a catalog index")
        info = CatalogInfo.load(folder)
        rebuild = rebuild_command(model or info.model or "MODEL_DIR", info.items_file, folder)
        built, served = vectors_of(info.model_version, info.encoder), scorer.vector_version
        if built != served:
            raise UserError(
                f"{folder}: the catalog was built with model {built}, not the served {served}, so its scores "
                f"would be another model's; rebuild it: {rebuild}"
            )
        for name in (INDEX_FILE, ITEMS_FILE):
            require_own_file(folder, name, rebuild)
        index = _read_index(Path(folder), rebuild)
        try:
            items = pd.read_parquet(Path(folder) / ITEMS_FILE)
        except (OSError, ValueError, pa.ArrowException) as err:
            raise UserError(
                f"{folder}: its {INDEX_FILE} or {ITEMS_FILE} does not read ({ITEMS_FILE}: {err}); rebuild it: {rebuild}"
            ) from None
        if not index.ntotal == len(items) == info.count or index.d != info.dim + 1:
            raise UserError(
                f"{folder}: its index holds {index.ntotal} items of {index.d - 1} numbers, its items table "
                f"{len(items)}, its {CATALOG_FILE} {info.count} of {info.dim}; rebuild it: {rebuild}"
            )
        searched = faiss.downcast_index(index)
        expected = faiss.IndexHNSW if info.kind == APPROXIMATE else faiss.IndexFlat
        if not isinstance(searched, expected) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise UserError(
                f"{folder}: its {INDEX_FILE} is a {type(searched).__name__}, not the {info.kind} inner-product index "
                f"that its {CATALOG_FILE} says; rebuild it: {rebuild}"
            )
        source = str(Path(folder) / ITEMS_FILE)
        try:
            items = validate_candidates(items, source)
            check_candidates(scorer, items)
        except ContractError as err:
            raise UserError(f"{err.source}: {err.problem}; rebuild the catalog: {rebuild}") from None
        return cls(index, items, info, scorer)


def _read_index(folder: Path, rebuild: str) -> faiss.Index:
    """The folder's faiss index; one that does not read is named, never quoted (faiss's message shows its bytes)."""
    import faiss  # imported here: --help loads no faiss

    path = folder / INDEX_FILE
    why = "is missing" if not path.is_file() else "is not a faiss index (damaged, or written by another program)"
    try:
        return faiss.read_index(str(path))
    except (RuntimeError, MemoryError):  # faiss reports a missing file or bytes it does not know as a RuntimeError
        raise UserError(
            f"{folder}: its {INDEX_FILE} or {ITEMS_FILE} does not read ({INDEX_FILE} {why}); rebuild it: {rebuild}"
        ) from None
