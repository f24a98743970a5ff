"""The load that bench.load puts on the app: what each client sends, and the client threads that send it.

Each client is a thread with its own ``gradio_client.Client`` (one Gradio session) that, request after request,
ranks a pasted list and then marks one to three items of the returned table as feedback. A phase records each
endpoint's latencies, the errors, and every feedback sent with whether the app acknowledged it; it can SIGKILL
the app after a number of acknowledged feedbacks or seconds.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.served_app import Api, App
from recsys.data.contract import ITEM, ITEM_ID, QUERY, RANK, read_clicks
from recsys.defaults import ROOT

if TYPE_CHECKING:
    from gradio_client import Client

CANDIDATES_FILE = ROOT / "data" / "bing_news" / "test_users.csv"
KILL_GRACE_S = 15  # how long requests cut off by the kill may take to fail before they are abandoned
MAX_MARKS = 3

Row = tuple[int, str, str, int]  # a list's row as stored: position, item_id, item, clicked


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


def quantiles(values: list[float]) -> str:
    """Latencies as ``p50 / p95`` in seconds, for the report."""
    if not values:
        return "–"
    p50, p95 = np.percentile(values, [50, 95])
    return f"{p50:.2f} / {p95:.2f}"


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
        clients = [self.app.client(self.downloads) for _ in plans]
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
                # the whole list, so that every item shown can be checked in the store
                arguments = self.api.rank_arguments(request.context, request.items, top_k=len(request.items))
                outputs = self._call(client, step, arguments)
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
