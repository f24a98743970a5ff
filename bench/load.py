"""Load and crash test of the running app: concurrent API clients, then a SIGKILL mid-load and a restart.

    python -m bench.load [--clients 16] [--requests 25] [--items 100] [--kill-after 200 | 30s]   # or: make load
    python -m bench.load [--bomb-clients 8] [--bomb-requests 10] [--bomb-rows 20000000] [--bomb-columns 600000]

Starts ``python app.py`` itself (its own port, a fresh FEEDBACK_DIR in a temporary folder; the
model of ``models/clicktune`` where it was trained, else the zero-shot base model). Each of
``--clients`` threads holds one ``gradio_client.Client`` (one Gradio session) and sends
``--requests`` times: a ``/rank`` of ``--items`` pasted Bing News titles (``test_users.csv``) for
one of its contexts, then a ``/feedback`` with one to three items of the returned table marked.
Three phases on one database:

1. load: every client's requests; errors, p50/p95 latency per endpoint, the app's peak memory.
2. load again, and the app is SIGKILLed after ``--kill-after`` acknowledged feedbacks (or seconds,
   ``30s``); it is restarted on the same FEEDBACK_DIR.
3. after the restart: ``--after-restart`` more requests a client, on fresh sessions.
4. upload bombs: ``--bomb-clients`` clients rank (``--bomb-requests`` each) without bombs, then again
   beside a bomber client that uploads, one after another until they are done, a Parquet file of
   ``--bomb-rows`` rows of one dictionary-encoded string (zstd: about 80 KB) and a CSV file whose
   header has ``--bomb-columns`` columns (about 5 MB). Every bomb must be refused; the ranking
   clients' p95 with the bombs must stay within 2× of theirs without; the app's peak memory while
   the bombs fly is reported. Then one client ranks the largest upload the limits accept (as many
   items and columns as they allow, just under MAX_UPLOAD_MB): the memory it adds is the
   per-request ceiling.

After each phase the SQLite store is read directly: every acknowledged list must be stored with
exactly the marks that were sent (none lost, none changed), every stored list whole (positions
1..n of a list a client sent), and ``PRAGMA integrity_check`` ok. Errors of requests cut off by
the kill are counted apart; any other error, and any failed check, makes the exit code 1.
Writes the report to bench/load.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio_client is imported: no telemetry from clients

import platform
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from gradio_client import Client, handle_file

from recsys.data.contract import CLICKED, ITEM, ITEM_ID, QUERY, RANK, read_clicks
from recsys.defaults import DB_FILE, ROOT, Env
from recsys.model.artifact import TRAINING_METRICS_FILE
from recsys.serving.settings import AppConfig, Limits

HERE = Path(__file__).resolve().parent
CANDIDATES_FILE = ROOT / "data" / "bing_news" / "test_users.csv"
TRAINED_MODEL = ROOT / "models" / "clicktune"
EMPTY_WEIGHTS = {"headers": ["feature", "weight"], "data": []}  # Gradio refuses None for a Dataframe input
KILL_GRACE_S = 15  # how long requests cut off by the kill may take to fail before they are abandoned
MAX_MARKS = 3
MAX_SLOWDOWN = 2.0  # the ranking clients' p95 beside the bombs, at most this many times their p95 without
# Per endpoint: the inputs the load needs, and every input it knows how to fill (others must have a default).
ENDPOINT_INPUTS = {
    "/rank": ({"context", "pasted"}, {"context", "file", "pasted", "item_column", "weights", "top_k"}),
    "/feedback": ({"marks"}, {"marks"}),
}

Row = tuple[int, str, str, int]  # a list's row as stored: position, item_id, item, clicked


# -- what the clients send ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One rank request: a context and its candidates (pasted, one per line)."""

    context: str
    items: tuple[str, ...]

    @property
    def key(self) -> tuple[str, frozenset[str]]:
        """What identifies the list in the store, whatever list id the server gave it."""
        return self.context, frozenset(self.items)


def plan_requests(phases: list[tuple[int, int]], items: int, seed: int) -> list[list[list[Request]]]:
    """Per phase (its requests a client, its clients), per client, its requests: contexts and candidate lists
    drawn from the bundled held-out users.

    Every request's (context, set of items) is distinct, so that each stored list is found by its content.
    """
    frame = read_clicks(CANDIDATES_FILE)
    titles, contexts = sorted(set(frame[ITEM])), sorted(set(frame[QUERY]))
    if items > len(titles):
        raise SystemExit(f"--items {items}: {CANDIDATES_FILE.name} has only {len(titles)} distinct items")
    rng, seen = random.Random(seed), set()
    plans = []
    for count, clients in phases:
        phase = []
        for _ in range(clients):
            requests = []
            while len(requests) < count:
                request = Request(rng.choice(contexts), tuple(rng.sample(titles, items)))
                if request.key not in seen:
                    seen.add(request.key)
                    requests.append(request)
            phase.append(requests)
        plans.append(phase)
    return plans


@dataclass(frozen=True)
class Api:
    """How the running app's /rank and /feedback are called, read from its API description."""

    rank_inputs: tuple[str, ...]
    rank_table: int  # which of /rank's outputs is the ranked table
    feedback_inputs: tuple[str, ...]

    @classmethod
    def read(cls, client: Client) -> Api:
        endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        inputs = {}
        for endpoint, (needed, known) in ENDPOINT_INPUTS.items():
            if endpoint not in endpoints:
                raise SystemExit(f"the app has no {endpoint} endpoint; its API has {', '.join(endpoints)}")
            parameters = endpoints[endpoint]["parameters"]
            names = [p["parameter_name"] for p in parameters]
            unknown = [p["parameter_name"] for p in parameters if p["parameter_name"] not in known]
            required = [p["parameter_name"] for p in parameters if not p["parameter_has_default"]]
            required = [name for name in unknown if name in required]
            if required or not needed <= set(names):
                raise SystemExit(
                    f"{endpoint} takes {', '.join(names)}; bench/load.py sends {', '.join(sorted(known))}: update it"
                )
            inputs[endpoint] = tuple(name for name in names if name in known)
        returns = [r["component"] for r in endpoints["/rank"]["returns"]]
        if "Dataframe" not in returns:
            raise SystemExit(f"/rank returns {returns}, no table to mark")
        return cls(inputs["/rank"], returns.index("Dataframe"), inputs["/feedback"])

    def rank_arguments(self, request: Request) -> dict:
        values = {
            "context": request.context,
            "file": None,
            "pasted": "\n".join(request.items),
            "item_column": ITEM,
            "weights": EMPTY_WEIGHTS,
            "top_k": len(request.items),  # the whole list, so that every item shown can be checked in the store
        }
        return {name: values[name] for name in self.rank_inputs}

    def upload_arguments(self, context: str, path: Path) -> dict:
        """A /rank of an uploaded file's items."""
        values = {
            "context": context,
            "file": handle_file(str(path)),
            "pasted": "",
            "item_column": ITEM,
            "weights": EMPTY_WEIGHTS,
            "top_k": 10,
        }
        return {name: values[name] for name in self.rank_inputs}

    def feedback_arguments(self, marks: list[bool]) -> dict:
        return {name: {"marks": marks}[name] for name in self.feedback_inputs}


# -- the app under test ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class App:
    """``python app.py`` as a subprocess on one port and one feedback folder, restartable; its log in ``log``."""

    def __init__(self, model_dir: Path, feedback_dir: Path, port: int, log: Path) -> None:
        self.url, self.log = f"http://127.0.0.1:{port}/", log
        self.env = {
            **os.environ,
            Env.MODEL_DIR: str(model_dir),
            Env.FEEDBACK_DIR: str(feedback_dir),
            Env.HOST: "127.0.0.1",
            Env.PORT: str(port),
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port),
            "HF_HUB_OFFLINE": "1",
        }
        self.process: subprocess.Popen | None = None
        self.sampled_peak = 0

    def start(self, timeout_s: float) -> float:
        """Start the app and wait until it answers; returns the seconds that took."""
        started = time.perf_counter()
        with self.log.open("a") as log:
            log.write(f"\n--- bench.load: starting the app at {time.strftime('%H:%M:%S')} ---\n")
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "app.py"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.sampled_peak = 0
        threading.Thread(target=self._sample_memory, args=(self.process,), daemon=True).start()
        while time.perf_counter() - started < timeout_s:
            if self.process.poll() is not None:
                raise SystemExit(f"the app exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"the app did not answer within {timeout_s:.0f} s:\n{self.log_tail()}")

    def _sample_memory(self, process: subprocess.Popen) -> None:
        """The largest RSS seen every 0.2 s (with psutil): the peak where /proc has no VmHWM (not Linux)."""
        try:
            import psutil
        except ImportError:
            return
        try:
            watched = psutil.Process(process.pid)
            while process.poll() is None:
                self.sampled_peak = max(self.sampled_peak, watched.memory_info().rss)
                time.sleep(0.2)
        except psutil.Error:  # it exited between two looks
            return

    def peak_rss_mib(self) -> float:
        """The app process's peak resident memory since it started (the kernel's VmHWM where there is one)."""
        peak = self.sampled_peak
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        return peak / 2**20

    def rss_mib(self) -> float:
        """The app process's resident memory now."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**10
        return 0.0

    def reset_peak(self) -> None:
        """Start :meth:`peak_rss_mib` again from the memory now (the kernel's clear_refs, and the sampled peak)."""
        self.sampled_peak = 0
        with contextlib.suppress(OSError):  # not Linux: the sampled peak alone
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# -- the load -------------------------------------------------------------------------------------------------


@dataclass
class Feedback:
    """A feedback sent: its list, the rows as they should be stored, and whether the app acknowledged it."""

    request: Request
    rows: tuple[Row, ...]
    acknowledged: bool = False

    @property
    def marks(self) -> int:
        return sum(row[3] for row in self.rows)


@dataclass
class Phase:
    """What one phase of load sent and got back."""

    name: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)  # "endpoint: error: message", of requests before any kill
    cut_off: int = 0  # requests that failed or were abandoned because the app was killed
    feedback: list[Feedback] = field(default_factory=list)
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    killed_after: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def acknowledged(self) -> list[Feedback]:
        return [f for f in self.feedback if f.acknowledged]


class Killed(Exception):
    """The app was killed while this request was in flight."""


class Load:
    """Runs one phase: each client a thread with its own Client (session), rank then feedback, over its requests."""

    def __init__(self, app: App, api: Api, phase: Phase, timeout_s: float, downloads: Path, seed: int) -> None:
        self.app, self.api, self.phase = app, api, phase
        self.timeout_s, self.downloads, self.seed = timeout_s, downloads, seed
        self.killed = threading.Event()
        self.killed_at = 0.0

    def run(self, plans: list[list[Request]], kill_after: tuple[float, str] | None = None) -> Phase:
        clients = [Client(self.app.url, verbose=False, download_files=str(self.downloads)) for _ in plans]
        ready = threading.Barrier(len(plans) + 1)
        threads = [
            threading.Thread(target=self._client, args=(i, client, requests, ready), daemon=True)
            for i, (client, requests) in enumerate(zip(clients, plans, strict=True))
        ]
        for thread in threads:
            thread.start()
        ready.wait()
        started = time.perf_counter()
        if kill_after is not None:
            self._kill_when(*kill_after, started=started, threads=threads)
        for thread in threads:
            thread.join()
        self.phase.seconds = (self.killed_at if self.killed.is_set() else time.perf_counter()) - started
        if not self.killed.is_set():
            self.phase.peak_rss_mib = self.app.peak_rss_mib()
        for client in clients:
            client.close()
        return self.phase

    def _kill_when(self, value: float, unit: str, started: float, threads: list[threading.Thread]) -> None:
        while any(t.is_alive() for t in threads):
            elapsed = time.perf_counter() - started
            if (unit == "s" and elapsed >= value) or (unit == "acks" and len(self.phase.acknowledged) >= value):
                self.phase.peak_rss_mib = self.app.peak_rss_mib()
                self.killed_at = time.perf_counter()
                self.killed.set()  # first, so that no client counts the broken connection as an error
                self.app.kill()
                self.phase.killed_after = f"{elapsed:.1f} s, {len(self.phase.acknowledged)} acknowledged feedbacks"
                return
            time.sleep(0.05)

    def _client(self, index: int, client: Client, requests: list[Request], ready: threading.Barrier) -> None:
        rng = random.Random(self.seed * 1000 + index)
        ready.wait()
        for request in requests:
            if self.killed.is_set():
                return
            step = "/rank"
            try:
                outputs = self._call(client, step, self.api.rank_arguments(request))
                step = "marking the ranked table"
                rows, marks = mark(outputs[self.api.rank_table], rng)
                sent = Feedback(request, rows)
                with self.phase.lock:
                    self.phase.feedback.append(sent)
                step = "/feedback"
                self._call(client, step, self.api.feedback_arguments(marks))
                with self.phase.lock:  # the app answered: it must have stored the marks
                    sent.acknowledged = True
            except Killed:
                with self.phase.lock:
                    self.phase.cut_off += 1
                return
            except Exception as err:  # what the app or the client library said, counted and shown in the report
                with self.phase.lock:
                    if self.killed.is_set():
                        self.phase.cut_off += 1
                        return
                    self.phase.errors.append(f"{step}: {type(err).__name__}: {str(err)[:200]}")

    def _call(self, client: Client, endpoint: str, arguments: dict) -> tuple:
        started = time.perf_counter()
        job = client.submit(api_name=endpoint, **arguments)
        while True:
            try:
                result = job.result(timeout=0.5)
                break
            except TimeoutError:
                now = time.perf_counter()
                if self.killed.is_set() and now - self.killed_at > KILL_GRACE_S:
                    raise Killed from None
                if now - started > self.timeout_s:
                    raise TimeoutError(f"{endpoint} gave no answer in {self.timeout_s:.0f} s") from None
        with self.phase.lock:
            self.phase.latencies[endpoint].append(time.perf_counter() - started)
        return result if isinstance(result, tuple) else (result,)


def mark(table: dict, rng: random.Random) -> tuple[tuple[Row, ...], list[bool]]:
    """Tick one to three rows of a ranked table, as a user does; returns the rows as they should be stored, and the
    marks that /feedback takes: one per item, in ranked order."""
    headers = table["headers"]
    at = {name: headers.index(name) for name in (RANK, ITEM_ID, ITEM)}
    data = sorted(table["data"], key=lambda row: int(row[at[RANK]]))
    marked = set(rng.sample(range(len(data)), rng.randint(1, min(MAX_MARKS, len(data)))))
    rows = tuple(
        (int(row[at[RANK]]), str(row[at[ITEM_ID]]), str(row[at[ITEM]]), int(i in marked)) for i, row in enumerate(data)
    )
    return rows, [i in marked for i in range(len(data))]


# -- upload bombs ---------------------------------------------------------------------------------------------


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
        self.client = Client(app.url, verbose=False, download_files=str(downloads))
        self.api, self.bombs, self.timeout_s = api, bombs, timeout_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.errors: list[str] = []  # answers that are no refusal of the bomb

    def _run(self) -> None:
        while not self.stop.is_set():
            for bomb in self.bombs:
                if self.stop.is_set():
                    return
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
    client = Client(app.url, verbose=False, download_files=str(downloads))
    before, peak = app.rss_mib(), 0.0
    for _ in range(2):
        app.reset_peak()
        client.submit(api_name="/rank", **api.upload_arguments("world news", path)).result(timeout=timeout_s)
        time.sleep(0.5)  # the sampler's last look
        peak = max(peak, app.peak_rss_mib())
    client.close()
    return before, peak


def bomb_lines(report: BombReport, limits: Limits) -> list[str]:
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


# -- the checks -----------------------------------------------------------------------------------------------


@dataclass
class StoreCheck:
    """The feedback store against what the clients sent."""

    integrity: str
    stored_lists: int
    acknowledged_lists: int
    acknowledged_marks: int
    lost_lists: int = 0
    lost_marks: int = 0
    changed_lists: int = 0  # stored, but not with the rows and marks that were acknowledged
    partial_lists: int = 0  # positions not 1..n, or not the whole list that was sent
    unknown_lists: int = 0  # no client sent such a list

    @property
    def ok(self) -> bool:
        problems = (self.lost_lists, self.changed_lists, self.partial_lists, self.unknown_lists)
        return self.integrity == "ok" and not any(problems)

    def describe(self) -> str:
        return (
            f"{self.acknowledged_lists} acknowledged lists ({self.acknowledged_marks} marks): "
            f"{self.lost_lists} lost ({self.lost_marks} marks), {self.changed_lists} changed; "
            f"{self.stored_lists} lists stored, {self.partial_lists} partial, {self.unknown_lists} unknown; "
            f"integrity_check {self.integrity}"
        )


def check_store(db_path: Path, sent: list[Feedback]) -> StoreCheck:
    """Every acknowledged list stored with exactly its marks; every stored list whole and one that was sent."""
    with sqlite3.connect(db_path, timeout=30) as db:
        integrity = "; ".join(row[0] for row in db.execute("PRAGMA integrity_check"))
        rows = db.execute("SELECT list_id, context, position, item_id, item, clicked FROM feedback").fetchall()
    db.close()
    stored: dict[str, tuple[str, list[Row]]] = {}
    for list_id, context, position, item_id, item, clicked in rows:
        stored.setdefault(list_id, (context, []))[1].append((position, item_id, item, clicked))
    by_key = {
        (context, frozenset(r[2] for r in list_rows)): sorted(list_rows) for context, list_rows in stored.values()
    }
    sent_lengths = {f.request.key: len(f.rows) for f in sent}
    acknowledged = [f for f in sent if f.acknowledged]
    check = StoreCheck(integrity, len(stored), len(acknowledged), sum(f.marks for f in acknowledged))
    for feedback in acknowledged:
        found = by_key.get(feedback.request.key)
        if found is None:
            check.lost_lists += 1
            check.lost_marks += feedback.marks
        elif found != sorted(feedback.rows):
            check.changed_lists += 1
    sent_sets = defaultdict(list)
    for context, items in sent_lengths:
        sent_sets[context].append(items)
    for (context, items), list_rows in by_key.items():
        if (context, items) in sent_lengths:
            check.partial_lists += [r[0] for r in list_rows] != list(range(1, sent_lengths[context, items] + 1))
        elif any(items < whole for whole in sent_sets[context]):  # some rows of a list that was sent
            check.partial_lists += 1
        else:
            check.unknown_lists += 1
    check.unknown_lists += len(stored) - len(by_key)  # two stored lists with the same content
    return check


# -- the report -----------------------------------------------------------------------------------------------


def quantiles(values: list[float]) -> str:
    if not values:
        return "–"
    p50, p95 = np.percentile(values, [50, 95])
    return f"{p50:.2f} / {p95:.2f}"


def phase_row(phase: Phase, check: StoreCheck) -> str:
    ranks, feedbacks = phase.latencies["/rank"], phase.latencies["/feedback"]
    return (
        f"| {phase.name} | {len(ranks)} | {len(feedbacks)} | {len(phase.errors)} | {phase.cut_off} | "
        f"{quantiles(ranks)} | {quantiles(feedbacks)} | {len(ranks) / phase.seconds:.1f} | "
        f"{phase.peak_rss_mib:.0f} | {check.lost_lists} of {check.acknowledged_lists} |"
    )


def report(
    args: argparse.Namespace,
    model: str,
    phases: list[Phase],
    checks: list[StoreCheck],
    starts: list[tuple],
    bombs: BombReport,
    limits: Limits,
) -> str:
    errors = [e for phase in phases for e in phase.errors] + bombs.errors
    common = defaultdict(int)
    for error in errors:
        common[error] += 1
    lines = [
        f"{args.clients} clients × {args.requests} ranks of {args.items} items, each followed by a feedback with "
        f"1–{MAX_MARKS} marks; model: {model}; in the last two phases {args.bomb_clients} clients × "
        f"{args.bomb_requests}. At each start the app answered after "
        + " and ".join(f"{seconds:.0f} s (peak RSS {rss:.0f} MiB)" for seconds, rss in starts)
        + ".",
        "",
        "| phase | ranks | feedbacks | errors | cut off by the kill | rank p50 / p95 s | feedback p50 / p95 s "
        "| ranks/s | peak RSS MiB | acknowledged lists lost |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(phase_row(phase, check) for phase, check in zip(phases, checks, strict=True)),
        "",
        f"SIGKILL after {phases[1].killed_after}; the app restarted on the same FEEDBACK_DIR.",
        "",
        *(f"- {phase.name}: {check.describe()}" for phase, check in zip(phases, checks, strict=True)),
        "",
        *bomb_lines(bombs, limits),
        "",
        f"Errors (goal 0): {len(errors)}" + "".join(f"\n- {n} × {e}" for e, n in sorted(common.items())),
        f"Result: {'PASS' if not errors and all(c.ok for c in checks) and bombs.ok else 'FAIL'}",
    ]
    return "\n".join(lines)


def machine() -> str:
    memory = ""
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
        memory = f", {total_kib / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    system = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores{memory}"
    return f"{system}, Python {platform.python_version()}"


# -- main -----------------------------------------------------------------------------------------------------


def parse_kill_after(value: str) -> tuple[float, str]:
    """``30s``: seconds into the second phase; ``200``: after that many acknowledged feedbacks."""
    try:
        return (float(value[:-1]), "s") if value.endswith("s") else (int(value), "acks")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give a count of acknowledged feedbacks (200) or seconds (30s)"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16, help="concurrent gradio_client sessions")
    parser.add_argument("--requests", type=int, default=25, help="rank + feedback requests per client and phase")
    parser.add_argument("--items", type=int, default=100, help="candidates per rank request")
    parser.add_argument(
        "--kill-after",
        type=parse_kill_after,
        help="SIGKILL the app after this many acknowledged feedbacks of the second phase, or seconds (30s); "
        "default: half of the phase's feedbacks",
    )
    parser.add_argument("--after-restart", type=int, default=2, help="requests per client after the restart")
    parser.add_argument("--bomb-clients", type=int, default=8, help="ranking clients beside the bomber")
    parser.add_argument("--bomb-requests", type=int, default=10, help="their requests, without and with the bombs")
    parser.add_argument("--bomb-rows", type=int, default=20_000_000, help="rows of the Parquet bomb")
    parser.add_argument("--bomb-columns", type=int, default=600_000, help="columns of the CSV bomb's header")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=TRAINED_MODEL if (TRAINED_MODEL / TRAINING_METRICS_FILE).is_file() else None,
        help="the model to serve (default: models/clicktune where it was trained, else the zero-shot base model)",
    )
    parser.add_argument("--zero-shot", action="store_true", help="serve the zero-shot base model")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a request may take")
    parser.add_argument("--start-timeout", type=float, default=300, help="seconds the app may take to answer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "load.md")
    args = parser.parse_args(argv)
    kill_after = args.kill_after or (max(1, args.clients * args.requests // 2), "acks")

    work = Path(tempfile.mkdtemp(prefix="clicktune-load-"))
    if args.zero_shot or args.model_dir is None:
        model_dir = work / "no-model"
        model_dir.mkdir()  # an empty folder: the app serves the zero-shot base model
    elif args.model_dir.is_dir():
        model_dir = args.model_dir.resolve()
    else:
        raise SystemExit(f"--model-dir {args.model_dir}: no such folder")
    shown = model_dir.relative_to(ROOT) if model_dir.is_relative_to(ROOT) else model_dir
    model = f"`{shown}`" if any(model_dir.iterdir()) else "the zero-shot base model (an empty MODEL_DIR)"
    feedback_dir, downloads = work / "feedback", work / "downloads"
    downloads.mkdir()
    app = App(model_dir, feedback_dir, free_port(), work / "app.log")
    counts = [args.requests, args.requests, args.after_restart, args.bomb_requests, args.bomb_requests]
    clients = [args.clients] * 3 + [args.bomb_clients] * 2
    plans = plan_requests(list(zip(counts, clients, strict=True)), args.items, args.seed)
    limits = AppConfig.from_env(app.env).limits
    bombs = [
        Bomb(f"Parquet: {args.bomb_rows:,} rows of one dictionary-encoded string, zstd", work / "bomb.parquet"),
        Bomb(f"CSV: a header of {args.bomb_columns:,} columns", work / "bomb.csv"),
    ]
    parquet_bomb(bombs[0].path, args.bomb_rows)
    csv_bomb(bombs[1].path, args.bomb_columns)
    largest = largest_upload(work / "largest.csv", limits)
    for path in (*(bomb.path for bomb in bombs), largest):
        if path.stat().st_size > limits.max_upload_mb * 2**20:
            raise SystemExit(f"{path.name} is over MAX_UPLOAD_MB ({limits.max_upload_mb:g}): Gradio would refuse it")
    started = time.perf_counter()
    try:
        starts = [(app.start(args.start_timeout), app.peak_rss_mib())]
        probe = Client(app.url, verbose=False, download_files=str(downloads))
        api = Api.read(probe)
        probe.close()
        print(f"app at {app.url} ({model}); /rank takes {api.rank_inputs}, /feedback {api.feedback_inputs}", flush=True)
        phases, checks, sent = [], [], []

        def run(name: str, plan: list[list[Request]], kill: tuple[float, str] | None = None) -> Phase:
            phase = Load(app, api, Phase(name), args.timeout, downloads, args.seed).run(plan, kill)
            print(f"{name}: {len(phase.acknowledged)} feedbacks acknowledged in {phase.seconds:.0f} s", flush=True)
            return phase

        phases.append(run("load", plans[0]))
        sent += phases[0].feedback
        checks.append(check_store(feedback_dir / DB_FILE, sent))
        phases.append(run("load + SIGKILL", plans[1], kill_after))
        sent += phases[1].feedback
        if not phases[1].killed_after:
            raise SystemExit(f"the second phase ended before the kill ({kill_after}): lower --kill-after")
        starts.append((app.start(args.start_timeout), app.peak_rss_mib()))
        checks.append(check_store(feedback_dir / DB_FILE, sent))
        phases.append(run("after restart", plans[2]))
        sent += phases[2].feedback
        checks.append(check_store(feedback_dir / DB_FILE, sent))
        app.reset_peak()
        phases.append(run("ranking alone", plans[3]))
        sent += phases[3].feedback
        checks.append(check_store(feedback_dir / DB_FILE, sent))
        app.reset_peak()
        rss_before = app.rss_mib()
        with Bomber(app, api, bombs, args.timeout, downloads) as bomber:
            phases.append(run("ranking + bombs", plans[4]))
        peak = app.peak_rss_mib()
        sent += phases[4].feedback
        checks.append(check_store(feedback_dir / DB_FILE, sent))
        ceiling = (*measure_ceiling(app, api, largest, args.timeout, downloads), largest.stat().st_size)
        app.stop()
        bombed = BombReport(args.bomb_clients, phases[3], phases[4], bombs, bomber.errors, rss_before, peak, ceiling)
        text = report(args, model, phases, checks, starts, bombed, limits)
    except BaseException:
        print(f"kept {work} (the app's log: {work / 'app.log'})", file=sys.stderr)
        raise
    finally:
        app.stop()
    passed = text.endswith("PASS")
    minutes = (time.perf_counter() - started) / 60
    command = " ".join(["python -m bench.load", *(argv if argv is not None else sys.argv[1:])])
    args.out.write_text(
        f"# Load and crash test of the app\n\nCommand: `{command}`, run on {time.strftime('%Y-%m-%d')} "
        f"({machine()}); {minutes:.1f} min in all.\n\n{text}\n"
    )
    print(text)
    if passed:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work} (the app's log: {work / 'app.log'})", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
