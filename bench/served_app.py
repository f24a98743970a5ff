"""The app under test, for the benchmarks that drive it over HTTP (bench.load, bench.speed's end to end):
``python app.py`` as a subprocess with its memory watched, and how its /rank and /feedback endpoints are called
through ``gradio_client``."""

from __future__ import annotations

import contextlib
import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio_client is imported: no telemetry from clients

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gradio_client import Client, handle_file

from recsys.data.contract import ITEM
from recsys.defaults import ROOT, Env

EMPTY_WEIGHTS = {"headers": ["feature", "weight"], "data": []}  # Gradio refuses None for a Dataframe input
# Per endpoint: the inputs the benchmarks need, and every input they know how to fill (others must have a default).
ENDPOINT_INPUTS = {
    "/rank": ({"context", "pasted"}, {"context", "file", "pasted", "item_column", "weights", "top_k"}),
    "/feedback": ({"marks"}, {"marks"}),
}


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
            if self._answers():
                return time.perf_counter() - started
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"the app did not answer within {timeout_s:.0f} s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "config", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

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

    def client(self, downloads: Path | None = None) -> Client:
        """A new ``gradio_client`` session on the app; files it downloads go to ``downloads`` where given."""
        if downloads is None:
            return Client(self.url, verbose=False)
        return Client(self.url, verbose=False, download_files=str(downloads))


@dataclass(frozen=True)
class Api:
    """How the running app's /rank and /feedback are called, read from its API description."""

    rank_inputs: tuple[str, ...]
    rank_table: int  # which of /rank's outputs is the ranked table
    feedback_inputs: tuple[str, ...]

    @classmethod
    def read(cls, client: Client) -> Api:
        endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        inputs = {endpoint: endpoint_inputs(endpoints, endpoint) for endpoint in ENDPOINT_INPUTS}
        returns = [r["component"] for r in endpoints["/rank"]["returns"]]
        if "Dataframe" not in returns:
            raise SystemExit(f"/rank returns {returns}, no table to mark")
        return cls(inputs["/rank"], returns.index("Dataframe"), inputs["/feedback"])

    def rank_arguments(self, context: str, items: Sequence[str], top_k: int) -> dict:
        """A /rank of pasted items, one per line."""
        values = {
            "context": context,
            "file": None,
            "pasted": "\n".join(items),
            "item_column": ITEM,
            "weights": EMPTY_WEIGHTS,
            "top_k": top_k,
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


def endpoint_inputs(endpoints: dict, endpoint: str) -> tuple[str, ...]:
    """The inputs of ``endpoint`` that the benchmarks fill, in the app's order; refused where it lacks one they
    need or requires one they do not know."""
    needed, known = ENDPOINT_INPUTS[endpoint]
    if endpoint not in endpoints:
        raise SystemExit(f"the app has no {endpoint} endpoint; its API has {', '.join(endpoints)}")
    parameters = endpoints[endpoint]["parameters"]
    names = [p["parameter_name"] for p in parameters]
    required = [p["parameter_name"] for p in parameters if not p["parameter_has_default"]]
    unknown_required = [name for name in names if name not in known and name in required]
    if unknown_required or not needed <= set(names):
        raise SystemExit(
            f"{endpoint} takes {', '.join(names)}; bench/served_app.py sends {', '.join(sorted(known))}: update it"
        )
    return tuple(name for name in names if name in known)
