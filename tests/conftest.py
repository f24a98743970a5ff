"""Shared fixtures: offline, CPU only, a tiny random BERT saved once per session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports transformers
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # gradio and gradio_client must not call home from tests

from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizer

# Tiny models gain nothing from intra-op threads, and on a shared 2-core machine two threads
# that wait on each other made each forward pass hundreds of times slower under load.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
BUNDLED = REPO / "data" / "bing_news"


def _vocabulary(frames: list[pd.DataFrame]) -> list[str]:
    words: dict[str, None] = {}
    for frame in frames:
        for text in pd.concat([frame["query"], frame["item"]]):
            for word in str(text).lower().replace("|", " ").split():
                words.setdefault(word, None)
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "|", *sorted(words)[:2000]]


@pytest.fixture(scope="session")
def clicks_path() -> Path:
    """A small real click log: 12 users from the bundled Bing News training split."""
    return DATA / "clicks.csv"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, clicks_path: Path) -> Path:
    """A randomly initialised 2-layer BERT with a vocabulary from the test data, saved like a base model."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(_vocabulary([pd.read_csv(clicks_path)])) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(vocab))  # transformers 5 ignores vocab_file= as a keyword
    assert tokenizer.tokenize("microsoft")[0] != "[UNK]", "the fixture vocabulary lost the data's words"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=512,
        num_labels=1,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def reset_accelerate():
    """Accelerate keeps process-wide state; each training run in a test starts from none."""
    from accelerate.state import AcceleratorState, PartialState

    yield
    AcceleratorState._reset_state(True)
    PartialState._reset_state()


class RecordingHfApi:
    """Stands in for ``HfApi`` at the network boundary, which tests cannot cross.

    Records each call as ``(method, arguments)``, after binding it to the real ``HfApi`` method's
    signature, so that a renamed or removed argument fails the test. ``runtimes`` are the raw
    Space runtimes that ``get_space_runtime`` returns, one per call; ``snapshot`` is the folder that
    ``snapshot_download`` returns, as if it had downloaded the repo there.
    """

    def __init__(self, runtimes: list[dict] | None = None, snapshot: Path | None = None) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.runtimes = list(runtimes or [])
        self.snapshot = snapshot

    def __getattr__(self, name: str):
        import inspect

        from huggingface_hub import HfApi, SpaceRuntime

        signature = inspect.signature(getattr(HfApi, name))

        def call(*args, **kwargs):
            arguments = signature.bind(self, *args, **kwargs).arguments
            arguments.pop("self")
            self.calls.append((name, arguments))
            if name == "get_space_runtime":
                return SpaceRuntime(self.runtimes.pop(0))
            if name == "create_repo":
                from huggingface_hub import RepoUrl

                prefix = {"space": "spaces/", "dataset": "datasets/"}.get(arguments.get("repo_type"), "")
                return RepoUrl(f"https://huggingface.co/{prefix}{arguments['repo_id']}")
            if name == "snapshot_download":
                return str(self.snapshot)
            return None

        return call

    def called(self, name: str) -> list[dict]:
        return [arguments for method, arguments in self.calls if method == name]


@pytest.fixture
def recording_hf_api() -> RecordingHfApi:
    return RecordingHfApi()


@pytest.fixture
def trained_model_dir(tmp_path: Path, tiny_model_dir: Path, clicks_path: Path) -> Path:
    """A folder as finetune.train leaves it (the tiny BERT as a fine-tuned model), with clutter that stays home."""
    import json
    import shutil

    from recsys.model.artifact import ModelMetadata

    directory = tmp_path / "clicktune"
    shutil.copytree(tiny_model_dir, directory)
    training = {"train_file": str(clicks_path), "eval_file": str(clicks_path), "train_rows": 141, "loss": "listwise"}
    ModelMetadata(base_model=str(tiny_model_dir), fine_tuned=True, training=training).save(directory)
    (directory / "metrics.json").write_text(json.dumps({"best_step": 3}))
    for path in ("checkpoints/step-3/optimizer.bin", "runs/clicktune/events.out.tfevents.1", ".env"):
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_text("stays home")
    (directory / "feedback-data").mkdir()
    (directory / "feedback-data" / "feedback.sqlite3").write_bytes(b"SQLite format 3\x00")
    return directory


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """A function that returns a free localhost port each time it is called."""
    return _free_port


@pytest.fixture(scope="session")
def accelerate_launch(free_port: Callable[[], int], tmp_path_factory: pytest.TempPathFactory) -> Callable:
    """A function that runs ``accelerate launch`` of a module on N CPU processes and returns the finished process.

    Accelerate 1.15 starts one process for ``--cpu`` (several CPU processes need an MPI host file), so this
    launches as for GPUs (``--multi_gpu``: torchrun) with ``ACCELERATE_USE_CPU=1``, which makes the
    processes one gloo group. ``HF_HOME`` is an empty folder, so no ``accelerate config`` of this machine applies.
    """
    home = tmp_path_factory.mktemp("hf-home")

    def launch(module: str, *args: str, processes: int = 2, timeout: float = 120) -> subprocess.CompletedProcess:
        # No GPU is visible: on a machine with fewer GPUs than processes, Accelerate's barrier would name a missing one.
        env = {**os.environ, "ACCELERATE_USE_CPU": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
        env["HF_HOME"] = str(home)
        command = [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port()), "-m", module, *args,
        ]  # fmt: skip
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)

    return launch


@pytest.fixture(scope="session")
def launch_app(free_port: Callable[[], int]) -> Callable:
    """A function that serves ``build_demo(models, data_dir, limits=limits)`` on a free port, as a context
    manager yielding a ``gradio_client.Client`` for it (the app without click logs to evaluate)."""
    from contextlib import contextmanager
    from dataclasses import replace

    @contextmanager
    def launch(models, data_dir: Path, limits):
        from gradio_client import Client

        from clicktune_app.layout import build_demo, launch_options
        from recsys.serving.settings import AppConfig

        demo = build_demo(models, data_dir, limits=limits, eval_file=None, train_file=None)
        config = replace(AppConfig(), port=free_port(), limits=limits)
        demo.launch(prevent_thread_lock=True, quiet=True, **launch_options(config))
        try:
            yield Client(f"http://127.0.0.1:{config.port}/", verbose=False)
        finally:
            demo.close()

    return launch


# Scorers over the tiny BERT, as a bi-encoder and (with a fresh one-logit head) a cross-encoder; ``scorer`` is each.


@pytest.fixture(scope="session")
def bi_scorer(tiny_model_dir: Path):
    from recsys.scoring.loading import load_scorer

    return load_scorer(str(tiny_model_dir))


@pytest.fixture(scope="session")
def reversed_scorer(tiny_model_dir: Path):
    """A 'fine-tuned' bi-encoder that disagrees with the tiny base on every pair: a negative cosine scale."""
    import torch

    from recsys.model.architectures import load_model
    from recsys.model.artifact import ModelMetadata
    from recsys.scoring.scorer import Scorer

    model, tokenizer = load_model("bi", str(tiny_model_dir))
    with torch.no_grad():
        model.scale.fill_(-10.0)
    return Scorer(model, tokenizer, ModelMetadata(base_model=str(tiny_model_dir), fine_tuned=True))


@pytest.fixture(scope="session")
def cross_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT with a fresh one-logit head, saved as a cross-encoder."""
    from recsys.model.architectures import load_model, save_model
    from recsys.model.artifact import CROSS, ModelMetadata

    torch.manual_seed(0)
    model, tokenizer = load_model(CROSS, str(tiny_model_dir))
    directory = tmp_path_factory.mktemp("tiny-cross")
    save_model(model, tokenizer, directory, ModelMetadata(architecture=CROSS, base_model=str(tiny_model_dir)))
    return directory


@pytest.fixture(scope="session")
def cross_scorer(cross_dir: Path):
    from recsys.scoring.loading import load_scorer

    return load_scorer(str(cross_dir))


@pytest.fixture(params=["bi", "cross"])
def scorer(request: pytest.FixtureRequest, bi_scorer, cross_scorer):
    return bi_scorer if request.param == "bi" else cross_scorer


@pytest.fixture
def models_folder_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory whose ``models/`` holds one model folder, ``clicktune``: where ``models/clicktun`` is a
    mistyped local path, not a Hub id."""
    (tmp_path / "models" / "clicktune").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path
