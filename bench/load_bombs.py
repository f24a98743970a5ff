"""Upload bombs, for bench.load's last two phases: small files that would be huge once read, uploaded to /rank
beside ranking clients, and the largest upload the limits accept, whose memory is the per-request ceiling.

Every bomb must be refused, and the ranking clients' p95 beside the bombs must stay within ``MAX_SLOWDOWN`` of
their p95 without them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.load_clients import Phase, quantiles
from bench.served_app import Api, App
from recsys.data.contract import CLICKED, ITEM, ITEM_ID
from recsys.serving.settings import Limits

MAX_SLOWDOWN = 2.0  # the ranking clients' p95 beside the bombs, at most this many times their p95 without


def parquet_bomb(path: Path, rows: int) -> Path:
    """``rows`` rows of one dictionary-encoded string, zstd: a few KB a million rows, gigabytes as a table."""
    schema = pa.schema([(ITEM, pa.dictionary(pa.int32(), pa.string()))])
    piece_rows = min(rows, 1_000_000)
    piece = pa.table([pa.DictionaryArray.from_arrays(np.zeros(piece_rows, np.int32), ["breaking news"])], schema=schema)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for start in range(0, rows, piece_rows):
            writer.write_table(piece.slice(0, min(piece_rows, rows - start)))
    return path


def csv_bomb(path: Path, columns: int) -> Path:
    """A header of ``columns`` numbered columns and one row: about 8 bytes a column."""
    path.write_text(",".join(map(str, range(columns))) + "\nx" + "," * (columns - 1) + "\n")
    return path


def largest_upload(path: Path, limits: Limits) -> Path:
    """A CSV file as large as the limits accept: ``max_items`` rows; item, item_id, clicked and
    ``max_extra_columns`` more columns; its cells as long as fits in 98% of MAX_UPLOAD_MB."""
    columns = [ITEM, ITEM_ID, CLICKED, *(f"feature_{i}" for i in range(limits.max_extra_columns))]
    cell = int(limits.max_upload_mb * 2**20 * 0.98 / limits.max_items / len(columns)) - 1  # a comma each
    item = min(limits.max_text_chars, cell * (1 + limits.max_extra_columns // 2))  # items long, features short
    feature = max(1, (cell * len(columns) - item - 20) // limits.max_extra_columns)
    rows = [
        [
            f"item {i} " + "news " * ((item - 10) // 5),
            f"i{i}",
            str(i % 2),
            *(["7" * feature] * limits.max_extra_columns),
        ]
        for i in range(limits.max_items)
    ]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


@dataclass
class Bomb:
    """One bomb file, and what the app answered to each upload of it."""

    name: str
    path: Path
    latencies: list[float] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    accepted: int = 0  # uploads the app ranked: a bomb must be refused


class Bomber:
    """A client that uploads the bombs to /rank one after another until stopped."""

    def __init__(self, app: App, api: Api, bombs: list[Bomb], timeout_s: float, downloads: Path) -> None:
        self.client = app.client(downloads)
        self.api, self.bombs, self.timeout_s = api, bombs, timeout_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.errors: list[str] = []  # answers that are no refusal of the bomb

    def _run(self) -> None:
        while not self.stop.is_set():
            for bomb in self.bombs:
                if self.stop.is_set():
                    return
                self._upload(bomb)

    def _upload(self, bomb: Bomb) -> None:
        started = time.perf_counter()
        try:
            job = self.client.submit(api_name="/rank", **self.api.upload_arguments("world news", bomb.path))
            job.result(timeout=self.timeout_s)
            bomb.accepted += 1
        except Exception as err:  # the app's refusal, as gradio_client raises it
            bomb.answers.append(str(err))
            if "more than the limit" not in str(err) and "columns" not in str(err):
                self.errors.append(f"bomb {bomb.path.name}: {type(err).__name__}: {str(err)[:200]}")
        bomb.latencies.append(time.perf_counter() - started)

    def __enter__(self) -> Bomber:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.client.close()


@dataclass
class BombReport:
    """The ranking clients without and with the bombs, the bombs' answers, and the app's memory."""

    clients: int
    baseline: Phase
    bombed: Phase
    bombs: list[Bomb]
    errors: list[str]
    rss_before_mib: float
    peak_mib: float
    ceiling: tuple[float, float, int]  # RSS before and peak while ranking the largest accepted upload, its bytes

    @property
    def slowdown(self) -> float:
        return float(
            np.percentile(self.bombed.latencies["/rank"], 95) / np.percentile(self.baseline.latencies["/rank"], 95)
        )

    @property
    def ok(self) -> bool:
        return not self.errors and not any(b.accepted for b in self.bombs) and self.slowdown <= MAX_SLOWDOWN


def measure_ceiling(app: App, api: Api, path: Path, timeout_s: float, downloads: Path) -> tuple[float, float]:
    """The app's RSS before, and its peak while, one client ranks ``path`` (twice: the larger peak)."""
    client = app.client(downloads)
    before, peak = app.rss_mib(), 0.0
    for _ in range(2):
        app.reset_peak()
        client.submit(api_name="/rank", **api.upload_arguments("world news", path)).result(timeout=timeout_s)
        time.sleep(0.5)  # the sampler's last look
        peak = max(peak, app.peak_rss_mib())
    client.close()
    return before, peak


def bomb_lines(report: BombReport, limits: Limits) -> list[str]:
    """The report's section on the bombs: each bomb's answers, the slowdown, and the app's memory."""
    rank_p95 = [np.percentile(p.latencies["/rank"], 95) for p in (report.baseline, report.bombed)]
    before, peak, size = report.ceiling
    lines = [
        f"Upload bombs: one bomber client uploads each bomb to /rank in turn, back to back, beside the "
        f"{report.clients} ranking clients of the phase ranking + bombs; ranking alone is the same clients without "
        "it. Both phases start with the app's peak memory reset, so their peak RSS is the phase's own.",
        "",
        "| bomb | file | uploads | answered p50 / p95 s | ranked (goal 0) | the app's answer |",
        "|---|---|---|---|---|---|",
    ]
    for bomb in report.bombs:
        answer = bomb.answers[0].replace("|", "/") if bomb.answers else "–"
        lines.append(
            f"| {bomb.name} | {bomb.path.stat().st_size / 1000:,.0f} KB | {len(bomb.latencies)} | "
            f"{quantiles(bomb.latencies)} | {bomb.accepted} | {answer} |"
        )
    lines += [
        "",
        f"Ranking clients' /rank p95: {rank_p95[0]:.2f} s without the bombs, {rank_p95[1]:.2f} s beside them: "
        f"**{report.slowdown:.2f}×** (goal: at most {MAX_SLOWDOWN:g}×).",
        f"Peak RSS of the app while the bombs flew: **{report.peak_mib:.0f} MiB** ({report.rss_before_mib:.0f} MiB "
        "when they began).",
        f"Per-request memory ceiling: ranking the largest upload the limits accept ({limits.max_items} items; item, "
        f"item_id, clicked and {limits.max_extra_columns} more columns; a {size / 2**20:.1f} MB CSV) took the app "
        f"from {before:.0f} to **{peak:.0f} MiB**: **{peak - before:.0f} MiB** for the request.",
    ]
    return lines
