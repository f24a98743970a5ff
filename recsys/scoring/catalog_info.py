"""A catalog folder's files and ``catalog.json``: what it says of a catalog (:class:`CatalogInfo`), checked whole
before anything is searched, each failure in one line with the command that rebuilds the catalog.

A catalog folder holds ``index.faiss``, ``items.parquet`` and ``catalog.json``, written last: a folder without
it is no catalog. Each file is a regular file of the folder, never a link (:func:`require_own_file`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from recsys.errors import UserError
from recsys.model.artifact import is_number
from recsys.model.config_checks import CONFIG_LIMITS

CATALOG_FILE, INDEX_FILE, ITEMS_FILE = "catalog.json", "index.faiss", "items.parquet"
CATALOG_FILES = (INDEX_FILE, ITEMS_FILE, CATALOG_FILE)  # a catalog folder's files, in the order they are written
EXACT, APPROXIMATE = "exact", "approximate"
EF_SEARCH_STEPS = (128, 256, 512, 1024, 2048)  # search beams tried, smallest first; each at least TOP_K
MAX_EF_SEARCH = 16 * EF_SEARCH_STEPS[-1]  # the widest beam a catalog.json may ask for: wider is a search of hours
MAX_DIM = CONFIG_LIMITS["hidden_size"]  # the longest item vector: a model's hidden size


def rebuild_command(model: str, items_file: str, folder: str | Path) -> str:
    return f"python -m recsys.scoring.catalog build --model {model} --items {items_file or 'ITEMS_FILE'} --out {folder}"


@dataclass
class CatalogInfo:
    """What ``catalog.json`` says of a catalog: the model it belongs to and how it is searched."""

    model_version: str
    encoder: str  # what computed the vectors (PyTorch, an ONNX export): another's are close, not the same
    count: int
    dim: int  # of the item vectors; the index holds one more number per item, its score offset
    kind: str  # EXACT or APPROXIMATE
    slope: float  # final score = slope · cosine + the item's offset
    parameters: dict[str, int] = field(default_factory=dict)  # HNSW: m, ef_construction, ef_search
    recall_at_100: float | None = None  # approximate: against the exact search, on a sample of items as contexts
    model: str = ""  # the model it was built with, as given to the build command
    items_file: str = ""
    built_at: str = ""

    @classmethod
    def load(cls, folder: str | Path) -> CatalogInfo:
        """``folder``'s ``catalog.json``, every value checked (:func:`check_catalog_info`)."""
        path = Path(folder) / CATALOG_FILE
        if not path.is_file() and not path.is_symlink():
            raise UserError(
                f"{folder}: no catalog here ({CATALOG_FILE} is missing, or its build did not finish); "
                f"build one: {rebuild_command('MODEL_DIR', '', folder)}"
            )
        require_own_file(folder, CATALOG_FILE, rebuild_command("MODEL_DIR", "", folder))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
            raise UserError(f"{path}: not valid JSON ({err}); rebuild it: {_rebuild(folder, None)}") from None
        return check_catalog_info(data, path)


def _rebuild(folder: str | Path, data: object) -> str:
    """The rebuild command, with the model and items file that ``catalog.json`` names where they are text."""
    data = data if isinstance(data, dict) else {}
    model, items_file = data.get("model"), data.get("items_file")
    return rebuild_command(
        model if isinstance(model, str) and model else "MODEL_DIR",
        items_file if isinstance(items_file, str) else "",
        folder,
    )


def check_catalog_info(data: object, path: Path) -> CatalogInfo:
    """``catalog.json``'s content as a :class:`CatalogInfo`, or one line naming the first value that is wrong.

    Every key must be one that this version writes, each required key present, each value of its type: text,
    whole numbers of at least 1 (``dim`` at most :data:`MAX_DIM`), a finite ``slope``, a ``kind`` of
    ``exact`` or ``approximate`` (which needs its ``ef_search``, at most :data:`MAX_EF_SEARCH`), a recall
    in [0, 1] or null.
    """
    rebuild = _rebuild(path.parent, data)

    def refuse(problem: str) -> UserError:
        return UserError(f"{path}: {problem}, not a catalog this version reads; rebuild it: {rebuild}")

    if not isinstance(data, dict):
        raise refuse(f"holds a JSON {type(data).__name__}, not an object")
    fields = CatalogInfo.__dataclass_fields__
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise refuse(f"has the key(s) {', '.join(map(repr, unknown))}")
    missing = [name for name in ("model_version", "encoder", "count", "dim", "kind", "slope") if name not in data]
    if missing:
        raise refuse(f"lacks {', '.join(map(repr, missing))}")
    info = CatalogInfo(**data)
    recall = info.recall_at_100

    def whole(value: object, most: float = math.inf) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= most

    checks = (
        ("model_version", isinstance(info.model_version, str) and info.model_version, "not a model version"),
        ("encoder", isinstance(info.encoder, str) and info.encoder, "not an encoder's name"),
        ("count", whole(info.count), "not a whole number of items of at least 1"),
        ("dim", whole(info.dim, MAX_DIM), f"not a whole number from 1 to {MAX_DIM}"),
        ("kind", info.kind in (EXACT, APPROXIMATE), f"not {EXACT} or {APPROXIMATE}"),
        ("slope", is_number(info.slope) and math.isfinite(info.slope), "not a finite number"),
        ("parameters", isinstance(info.parameters, dict), "not an object"),
        ("recall_at_100", recall is None or (is_number(recall) and 0 <= recall <= 1), "not a recall in [0, 1] or null"),
        *((name, isinstance(getattr(info, name), str), "not text") for name in ("model", "items_file", "built_at")),
    )  # fmt: skip
    for name, good, expected in checks:
        if not good:
            raise refuse(f"its {name} is {getattr(info, name)!r}, {expected}")
    for name, value in info.parameters.items():
        if name == "ef_search" and not whole(value, MAX_EF_SEARCH):
            raise refuse(f"its parameters' ef_search is {value!r}, not a whole number from 1 to {MAX_EF_SEARCH}")
        if not whole(value):
            raise refuse(f"its parameters' {name} is {value!r}, not a whole number of at least 1")
    if info.kind == APPROXIMATE and "ef_search" not in info.parameters:
        raise refuse(f"its kind is {APPROXIMATE} but its parameters lack the ef_search that searching it needs")
    return info


def require_own_file(folder: str | Path, name: str, rebuild: str) -> None:
    """A catalog's file is a regular file of its folder, never a link: a link's target is not read, nor named."""
    path = Path(folder) / name
    if path.is_symlink():
        raise UserError(f"{path}: is a link; a catalog's files are its own, never links; rebuild it: {rebuild}")
    if path.exists() and not path.is_file():
        raise UserError(f"{path}: is not a regular file; rebuild the catalog: {rebuild}")
