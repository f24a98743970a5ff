"""What every part of bench.speed measures with: the timer, this machine's fp32 matmul rate and an encoder's FLOP
count (the physical limit each figure is set against), the real texts it times, and the report its sections go to."""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from recsys.data.contract import ITEM, QUERY, read_clicks
from recsys.defaults import ROOT

DATA = ROOT / "data" / "bing_news"
THREADS = 2
logger = logging.getLogger("bench.speed")


# -- timing and the limit -------------------------------------------------------------------------------------


def best_of(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    """The fastest of ``repeats`` runs, in seconds (the run least disturbed by the machine's other work), and
    what the last run returned."""
    times = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - started)
    return min(times), out


def percentiles(times: Sequence[float]) -> dict[str, float]:
    p50, p95 = np.percentile(times, [50, 95])
    return {"p50": float(p50), "p95": float(p95), "n": len(times)}


def matmul_rate(size: int = 2048, repeats: int = 5) -> float:
    """This machine's fp32 matmul rate in FLOP/s: the ceiling for any fp32 transformer here."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm up
    return 2 * size**3 / best_of(lambda: torch.mm(a, b), repeats)[0]


@dataclass
class FlopCount:
    """A BERT-style encoder's forward FLOPs: 2 x weights per token, plus attention's 4 x hidden x length per token."""

    weights: int  # the encoder's parameters outside the embedding tables (each used once per token)
    layers: int
    hidden: int

    @classmethod
    def of(cls, encoder: torch.nn.Module) -> FlopCount:
        per_token = ("embeddings.", "pooler.")  # looked up, or used once per text: not a matmul per token
        weights = sum(p.numel() for n, p in encoder.named_parameters() if not n.startswith(per_token))
        return cls(weights, encoder.config.num_hidden_layers, encoder.config.hidden_size)

    def of_lengths(self, lengths: Sequence[int]) -> float:
        n = np.asarray(lengths, dtype=np.float64)
        return float((2 * self.weights * n + 4 * self.layers * self.hidden * n**2).sum())


def token_lengths(tokenizer, texts: Sequence[str], max_length: int, pairs: Sequence[str] | None = None) -> list[int]:
    encoded = tokenizer(
        list(texts), *([list(pairs)] if pairs is not None else []), truncation=True, max_length=max_length
    )
    return [len(ids) for ids in encoded["input_ids"]]


# -- the data ------------------------------------------------------------------------------------------------


def real_texts() -> tuple[list[str], list[str]]:
    """Every distinct Bing News title and every distinct context of the bundled log, in file order."""
    frames = [read_clicks(DATA / f"{split}.csv") for split in ("valid", "test_users", "test_later", "train")]
    items = list(dict.fromkeys(t for f in frames for t in f[ITEM]))
    contexts = list(dict.fromkeys(t for f in frames for t in f[QUERY]))
    return items, contexts


def texts_of(size: int, items: list[str]) -> list[str]:
    """``size`` distinct real titles; beyond the log's own titles, two real titles joined (said in the report)."""
    if size <= len(items):
        return items[:size]
    rng = np.random.default_rng(0)
    extra = (f"{items[i]} | {items[j]}" for i, j in rng.integers(0, len(items), size=(size * 2, 2)) if i != j)
    return list(dict.fromkeys([*items, *extra]))[:size]


# -- the report ------------------------------------------------------------------------------------------------


@dataclass
class Report:
    """The report's sections in the order measured, and every figure for the JSON beside it."""

    sections: list[tuple[str, str]] = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    def add(self, title: str, body: str) -> None:
        logger.info("%s\n%s", title, body)
        self.sections.append((title, body))

    def write(self, path: Path, header: str) -> None:
        body = "\n\n".join(f"## {title}\n\n{text}" for title, text in self.sections)
        path.write_text(f"{header}\n\n{body}\n")
        path.with_suffix(".json").write_text(json.dumps(self.figures, indent=2, default=float) + "\n")


def cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e3 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(rows: list[dict]) -> str:
    """A markdown table of records, numbers to three significant figures."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
