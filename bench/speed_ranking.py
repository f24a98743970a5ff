"""bench.speed's in-process ranking with the served scorer: doing less work (a 1,000-item list already seen,
ranked for a new context, from the vector cache; top 100 of an indexed catalog, exact and HNSW), and how the cost
grows with the list's and the catalog's size (the chart)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bench.speed_measure import Report, best_of, percentiles, table, texts_of
from recsys.data.contract import ITEM

CATALOG_CONTEXTS = slice(30, 70)  # contexts that no earlier part of the run encoded


def cached_lists(report: Report, scorer, texts: list[str], contexts: list[str]) -> None:
    """A 1,000-item list already seen, ranked for new contexts: only the context is encoded."""
    from recsys.scoring.ranking import rank_candidates

    candidates = pd.DataFrame({ITEM: texts[:1000]})
    scorer.cache.clear()
    started = time.perf_counter()
    rank_candidates(scorer, contexts[0], candidates)
    first = time.perf_counter() - started
    times = []
    for context in contexts[1:21]:
        started = time.perf_counter()
        rank_candidates(scorer, context, candidates)
        times.append(time.perf_counter() - started)
    cached = percentiles(times)
    report.add(
        "The item-vector cache: a seen 1,000-item list for a new context",
        f"`recsys.scoring.ranking.rank_candidates` on 1,000 titles with the served encoder ({scorer.encoder.name}): "
        f"the first context {first:.2f} s (every title encoded), then {cached['n']} new contexts "
        f"p50 {cached['p50'] * 1000:.0f} ms, p95 {cached['p95'] * 1000:.0f} ms: {first / cached['p50']:.0f}x less "
        "time, since only the context is encoded (vectors kept by model version and text, "
        f"`recsys/scoring/vectors.py`). Goal: ≤ 100 ms.",
    )
    report.figures["cache"] = {"first_s": first, **cached}


def synthetic_vectors(real: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` normalised vectors around the real titles' vectors (each a title's vector plus noise): clustered as
    real catalogs are, where uniformly random vectors would have no neighbourhoods for an index to find."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, real.shape[1]), dtype=np.float32)
    for start in range(0, count, 100_000):
        n = min(100_000, count - start)
        chunk = real[rng.integers(0, len(real), n)] + rng.normal(0, 0.5 / np.sqrt(real.shape[1]), (n, real.shape[1]))
        out[start : start + n] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def catalog_row(scorer, vectors: np.ndarray, kind: str, exact_limit: int, contexts: list[str]) -> dict:
    """Build one index of the catalog and time its top 100 for each new context, with and without the context's
    encoding."""
    from recsys.scoring.catalog import EXACT_LIMIT, build_index

    size = len(vectors)
    items = pd.DataFrame({ITEM: [f"catalog item {n}" for n in range(size)]})
    started = time.perf_counter()
    catalog = build_index(scorer, items, vectors=vectors, exact_limit=exact_limit)
    built = time.perf_counter() - started
    new = [f"{c} {size} {kind}" for c in contexts[CATALOG_CONTEXTS]]  # contexts never encoded before
    catalog.rank(f"{contexts[0]} warm-up {size} {kind}", top_k=100)  # the first search pays for loading
    times = []
    for context in new:
        started = time.perf_counter()
        catalog.rank(context, top_k=100)
        times.append(time.perf_counter() - started)
    searched = percentiles(times)
    encoding = percentiles([best_of(lambda c=c: scorer.encoder.encode([c]), 1)[0] for c in new[:20]])
    return {
        "vectors": size,
        "index": kind,
        "default": "yes" if (kind == "exact") == (size <= EXACT_LIMIT) else "",
        "build s": built,
        "top-100 p50 ms": searched["p50"] * 1000,
        "top-100 p95 ms": searched["p95"] * 1000,
        "search p50 ms": max(searched["p50"] - encoding["p50"], 0.0) * 1000,
        "recall@100": 1.0 if catalog.info.recall_at_100 is None else catalog.info.recall_at_100,
    }


def catalogs(report: Report, scorer, texts: list[str], contexts: list[str], sizes: Sequence[int]) -> list[dict]:
    """Top 100 of a catalog for a new context (its encoding included), exact and approximate, by catalog size."""
    from recsys.scoring.catalog import EXACT_LIMIT

    real = scorer.embed(texts)
    rows = []
    for size in sizes:
        vectors = synthetic_vectors(real, size)
        kinds = {"exact": size + 1, "approximate (HNSW)": 0} if size <= 100_000 else {"exact": size + 1}
        rows += [catalog_row(scorer, vectors, kind, limit, contexts) for kind, limit in kinds.items()]
        del vectors
    report.figures["catalogs"] = rows
    default = next((r for r in rows if r["vectors"] == 100_000 and r["default"]), None)
    report.add(
        "Catalog mode: top 100 of an indexed catalog for a new context",
        "`recsys.scoring.catalog` (faiss): exact inner-product search up to "
        f"{EXACT_LIMIT:,} items, HNSW above (its recall@100 against exact search measured at build). Vectors are "
        "synthetic, each a real title's vector plus noise; the context is a real one, encoded by the served "
        f"encoder ({scorer.encoder.name}); {len(contexts[CATALOG_CONTEXTS])} contexts per row. 'top-100' includes "
        "encoding the context; 'search' is that less the context's encoding p50."
        + (
            f" At 100,000 items the default index answers in {default['top-100 p50 ms']:.0f} ms p50 (goal ≤ 50 ms)."
            if default
            else ""
        )
        + "\n\n"
        + table(rows),
    )
    return rows


def list_growth(report: Report, scorer, texts: list[str], contexts: list[str], sizes: Sequence[int]) -> list[dict]:
    """Time to rank a fresh list of each size (nothing cached), and the same list again for a new context."""
    from recsys.scoring.ranking import rank_candidates

    rows = []
    for size in sizes:
        candidates = pd.DataFrame({ITEM: texts_of(size, texts)})
        scorer.cache.clear()
        started = time.perf_counter()
        rank_candidates(scorer, contexts[0], candidates, top_k=100)
        fresh = time.perf_counter() - started
        started = time.perf_counter()
        rank_candidates(scorer, contexts[1], candidates, top_k=100)
        rows.append({"items": size, "fresh s": fresh, "cached s": time.perf_counter() - started})
        rows[-1] |= {"fresh ms per item": 1000 * fresh / size}
    report.figures["list_growth"] = rows
    return rows


def chart(path: Path, lists: list[dict], catalogs: list[dict]) -> None:
    """Time against list size (fresh and cached) and search time against catalog size, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    sizes = [row["items"] for row in lists]
    left.loglog(sizes, [row["fresh s"] for row in lists], "o-", label="fresh list (every title encoded)")
    left.loglog(sizes, [row["cached s"] for row in lists], "s-", label="same list, new context (cached)")
    left.set(xlabel="items in the list", ylabel="seconds to rank", title="Ranking a list")
    left.legend()
    for kind in dict.fromkeys(row["index"] for row in catalogs):
        shown = [row for row in catalogs if row["index"] == kind]
        right.loglog([r["vectors"] for r in shown], [r["search p50 ms"] for r in shown], "o-", label=kind)
    right.set(xlabel="vectors in the catalog", ylabel="ms per top-100 search (p50)", title="Searching a catalog")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
