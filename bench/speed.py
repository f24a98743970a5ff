"""Speed against the peers a user would pick instead, side by side in one run: ``make bench`` -> bench/speed.md.

    python -m bench.speed [--model models/clicktune] [--texts 2000] [--quick]

Every figure is measured here, in this run, beside its peer: the same texts (real Bing News titles
from ``data/bing_news``), the same model folder, ``max_length`` and threads. These machines are
shared and noisy, so the report leads with ratios; each timing is the best (or the median) of a few.

1. The physical limit: this machine's fp32 matmul rate (a large ``torch.mm``), and each encoder's
   effective FLOP rate as a fraction of it (FLOPs counted from the model's config on the real,
   unpadded tokens).
2. Peers: ClickTune's bi-encoder vectors against ``SentenceTransformer(dir).encode``, its
   cross-encoder against ``CrossEncoder(dir).predict``, and the ONNX Runtime path (fp32 and int8).
3. Less work: a 1,000-item list already seen, ranked for a new context (the vector cache); the
   catalog index, top 100 of 100,000 items.
4. End to end: ``/rank`` through ``gradio_client`` on a served app, 100 and 1,000 fresh items and
   1,000 cached ones; the app's peak memory.
5. Training: ``finetune.train`` against sentence-transformers' ``SentenceTransformerTrainer`` with
   ``MultipleNegativesRankingLoss`` on the same lists, batch, ``max_length`` and negatives.
6. Cost growth: time against list size and against catalog size, charted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd
import torch

from recsys.data.contract import ITEM, QUERY, read_clicks
from recsys.defaults import ROOT

HERE = Path(__file__).resolve().parent
DATA = ROOT / "data" / "bing_news"
TRAINED_MODEL = ROOT / "models" / "clicktune"
THREADS = 2
logger = logging.getLogger("bench.speed")


# -- what is measured ----------------------------------------------------------------------------------------


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


def machine() -> dict:
    names = ("torch", "transformers", "sentence-transformers", "accelerate", "onnxruntime", "faiss-cpu", "gradio")
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "versions": {name: version(name) for name in names},
    }


# -- 1 and 2: the encoders against the limit and the peers ----------------------------------------------------


def encoders(report: Report, model_dir: Path, texts: list[str], limit: float, repeats: int) -> None:
    """Texts/s and fraction of the matmul limit: ClickTune's encoders against sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    from recsys.scoring.loading import load_scorer
    from recsys.scoring.vectors import TorchEncoder

    scorer = load_scorer(str(model_dir))
    length = scorer.metadata.max_length
    work = FlopCount.of(scorer.model.encoder).of_lengths(token_lengths(scorer.tokenizer, texts, length))
    peer = SentenceTransformer(str(model_dir), device="cpu")
    peer.max_seq_length = length
    runs: dict[str, Callable[[], np.ndarray]] = {
        "sentence-transformers encode (peer)": lambda: peer.encode(texts, batch_size=64, convert_to_numpy=True),
        "ClickTune TorchEncoder (fp32)": lambda: TorchEncoder(scorer.model, scorer.tokenizer, length).encode(texts),
    }
    runs.update(onnx_encoders(model_dir, length, texts))
    rows, seconds, reference = [], {}, None
    for name, run in runs.items():
        seconds[name], vectors = best_of(run, repeats)
        reference = vectors if reference is None else reference  # the peer's, the first run
        cosine = (vectors * reference).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)
        rows.append(
            {
                "encoder": name,
                "texts/s": len(texts) / seconds[name],
                "× peer": seconds["sentence-transformers encode (peer)"] / seconds[name],
                "fp32-equivalent GFLOP/s": work / seconds[name] / 1e9,
                "of the matmul limit": f"{work / seconds[name] / limit:.0%}",
                "min cosine to peer": float(cosine.min()),
            }
        )
    mean_tokens = np.mean(token_lengths(scorer.tokenizer, texts, length))
    report.add(
        "Bi-encoder: texts/s against sentence-transformers",
        f"{len(texts)} distinct Bing News titles ({mean_tokens:.0f} tokens each on average, max_length {length}), "
        f"model `{model_dir.name}`, batch 64, best of {repeats}. FLOPs counted on the real tokens "
        f"(2 x {FlopCount.of(scorer.model.encoder).weights / 1e6:.1f} M weights per token, plus attention); "
        f"this machine's fp32 matmul limit measured in the same run: {limit / 1e9:.0f} GFLOP/s.\n\n" + table(rows),
    )
    report.figures["encoders"] = rows


def onnx_encoders(model_dir: Path, length: int, texts: list[str]) -> dict[str, Callable[[], np.ndarray]]:
    """The ONNX Runtime encoders of the folder, where it was exported
    (``python -m recsys.scoring.onnx_export export``)."""
    from recsys.scoring.onnx_agreement import ONNX_DIR, ONNX_FILES
    from recsys.scoring.onnx_runtime import OnnxEncoder

    runs = {}
    for precision, file in reversed(ONNX_FILES.items()):
        if (Path(model_dir) / ONNX_DIR / file).is_file():
            encoder = OnnxEncoder(model_dir, file, length)
            runs[f"ClickTune ONNX Runtime ({precision})"] = lambda encoder=encoder: encoder.encode(texts)
    return runs


def cross_encoders(report: Report, texts: list[str], contexts: list[str], limit: float, repeats: int) -> None:
    """A cross-encoder's pairs/s against sentence-transformers' ``CrossEncoder.predict``."""
    from sentence_transformers import CrossEncoder as PeerCrossEncoder

    from recsys.model.architectures import load_model, save_model
    from recsys.model.artifact import CROSS, ModelMetadata
    from recsys.scoring.loading import load_scorer

    length = 128
    pairs = [(contexts[n % len(contexts)], text) for n, text in enumerate(texts)]
    with tempfile.TemporaryDirectory() as folder:  # the base model with a new head: speed does not depend on it
        model, tokenizer = load_model(CROSS, None)
        save_model(model, tokenizer, folder, ModelMetadata(architecture=CROSS, max_length=length))
        scorer = load_scorer(folder)
        peer = PeerCrossEncoder(folder, device="cpu", max_length=length)
        work = FlopCount.of(scorer.model.encoder.base_model).of_lengths(
            token_lengths(scorer.tokenizer, [q for q, _ in pairs], length, [i for _, i in pairs])
        )
        peer_s, peer_logits = best_of(lambda: peer.predict(pairs, batch_size=64), repeats)
        ours_s, our_logits = best_of(lambda: scorer.score_pairs(pairs, batch_size=64), repeats)
        gap = float(np.abs(peer_logits - our_logits).max())
    rows = [
        {
            "scorer": name,
            "pairs/s": len(pairs) / s,
            "× peer": peer_s / s,
            "of the matmul limit": f"{work / s / limit:.0%}",
        }
        for name, s in (
            ("sentence-transformers CrossEncoder.predict (peer)", peer_s),
            ("ClickTune cross-encoder", ours_s),
        )
    ]
    report.add(
        "Cross-encoder: pairs/s against sentence-transformers",
        f"{len(pairs)} (context, title) pairs, max_length {length}, batch 64, best of {repeats}; the packaged "
        f"MiniLM with a new one-logit head (speed does not depend on its weights). Largest logit gap: {gap:.1e}. "
        "The default recipe trains a bi-encoder; a cross-encoder is served only where one was trained.\n\n"
        + table(rows),
    )
    report.figures["cross_encoders"] = rows


# -- 3: less work ---------------------------------------------------------------------------------------------


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


def catalogs(report: Report, scorer, texts: list[str], contexts: list[str], sizes: Sequence[int]) -> list[dict]:
    """Top 100 of a catalog for a new context (its encoding included), exact and approximate, by catalog size."""
    from recsys.scoring.catalog import EXACT_LIMIT, build_index

    real = scorer.embed(texts)
    rows = []
    for size in sizes:
        vectors = synthetic_vectors(real, size)
        items = pd.DataFrame({ITEM: [f"catalog item {n}" for n in range(size)]})
        kinds = {"exact": size + 1, "approximate (HNSW)": 0} if size <= 100_000 else {"exact": size + 1}
        for kind, limit in kinds.items():
            started = time.perf_counter()
            catalog = build_index(scorer, items, vectors=vectors, exact_limit=limit)
            built = time.perf_counter() - started
            new = [f"{c} {size} {kind}" for c in contexts[30:70]]  # contexts never encoded before
            catalog.rank(f"{contexts[0]} warm-up {size} {kind}", top_k=100)  # the first search pays for loading
            times = []
            for context in new:
                started = time.perf_counter()
                catalog.rank(context, top_k=100)
                times.append(time.perf_counter() - started)
            searched = percentiles(times)
            encoding = percentiles([best_of(lambda c=c: scorer.encoder.encode([c]), 1)[0] for c in new[:20]])
            rows.append(
                {
                    "vectors": size,
                    "index": kind,
                    "default": "yes" if (kind == "exact") == (size <= EXACT_LIMIT) else "",
                    "build s": built,
                    "top-100 p50 ms": searched["p50"] * 1000,
                    "top-100 p95 ms": searched["p95"] * 1000,
                    "search p50 ms": max(searched["p50"] - encoding["p50"], 0.0) * 1000,
                    "recall@100": 1.0 if catalog.info.recall_at_100 is None else catalog.info.recall_at_100,
                }
            )
            del catalog
        del vectors
    report.figures["catalogs"] = rows
    default = next((r for r in rows if r["vectors"] == 100_000 and r["default"]), None)
    report.add(
        "Catalog mode: top 100 of an indexed catalog for a new context",
        "`recsys.scoring.catalog` (faiss): exact inner-product search up to "
        f"{EXACT_LIMIT:,} items, HNSW above (its recall@100 against exact search measured at build). Vectors are "
        "synthetic, each a real title's vector plus noise; the context is a real one, encoded by the served "
        f"encoder ({scorer.encoder.name}); {len(new)} contexts per row. 'top-100' includes encoding the context; "
        "'search' is that less the context's encoding p50."
        + (
            f" At 100,000 items the default index answers in {default['top-100 p50 ms']:.0f} ms p50 (goal ≤ 50 ms)."
            if default
            else ""
        )
        + "\n\n"
        + table(rows),
    )
    return rows


# -- 4: end to end --------------------------------------------------------------------------------------------


def end_to_end(
    report: Report, model_dir: Path, texts: list[str], contexts: list[str], floor: Callable, quick: bool = False
) -> None:
    """``/rank`` through gradio_client on a served app: fresh lists of 100 and 1,000, and a cached 1,000."""
    from gradio_client import Client

    from bench.load import Api, App, free_port
    from recsys.data.contract import ITEM

    rows, figures = [], {}
    with tempfile.TemporaryDirectory() as feedback:
        app = App(model_dir, Path(feedback), free_port(), Path(feedback) / "app.log")
        started_s = app.start(timeout_s=300)
        try:
            client = Client(app.url, verbose=False)
            api = Api.read(client)
            pool = iter(texts)

            def call(context: str, items: list[str]) -> float:
                values = {"context": context, "file": None, "pasted": "\n".join(items), "item_column": ITEM}
                values |= {"weights": {"headers": ["feature", "weight"], "data": []}, "top_k": 10}
                started = time.perf_counter()
                client.predict(api_name="/rank", **{name: values[name] for name in api.rank_inputs})
                return time.perf_counter() - started

            call(contexts[0], [next(pool) for _ in range(20)])  # warm up: the first request loads what it needs
            plans = (("100 fresh items", 100, 2 if quick else 10), ("1,000 fresh items", 1000, 1 if quick else 4))
            for name, size, repeats in plans:
                lists = [[next(pool) for _ in range(size)] for _ in range(repeats)]
                times = [call(contexts[n + 1], items) for n, items in enumerate(lists)]
                figures[name] = percentiles(times) | {"floor_s": floor(lists[0], contexts[1])}
            seen = lists[-1]
            times = [call(context, seen) for context in contexts[10 : 12 if quick else 20]]
            figures["1,000 cached items"] = percentiles(times) | {"floor_s": 0.0}
            peak = app.peak_rss_mib()
        finally:
            app.stop()
    for name, f in figures.items():
        rows.append(
            {
                "list": name,
                "p50 s": f["p50"],
                "p95 s": f["p95"],
                "requests": f["n"],
                "fp32 FLOP floor s": f["floor_s"] or None,
                "p50 / floor": f["p50"] / f["floor_s"] if f["floor_s"] else None,
            }
        )
    report.add(
        "End to end: `/rank` through gradio_client",
        f"`python app.py` serving `{model_dir.name}` (started in {started_s:.0f} s), one `gradio_client` on "
        "localhost, pasted titles, top 10 returned; fresh lists hold titles the app never saw. The floor is the "
        "fp32 FLOPs of the list's texts over the matmul rate measured above: the time an fp32 encoder at the "
        f"limit needs. Peak memory of the serving process: {peak:.0f} MiB.\n\n" + table(rows),
    )
    report.figures["end_to_end"] = {"rows": rows, "peak_rss_mib": peak}


# -- 5: training ----------------------------------------------------------------------------------------------


def train_clicktune(
    output_dir: str, steps: int, batch: int, length: int, lora_rank: int, precision: str = "no"
) -> dict:
    """``finetune.train`` for ``steps`` steps, text only (no item priors), evaluated once at the end."""
    from finetune.train import main

    flags = ["--max-steps", str(steps), "--batch-size", str(batch), "--max-length", str(length)]
    flags += ["--mixed-precision", precision]
    flags += ["--lora-rank", str(lora_rank), "--eval-steps", "0", "--patience", "0", "--no-item-priors"]
    summary = main([*flags, "--output-dir", output_dir, "--report-to", "none"])
    return {"pairs/s": summary["pairs_per_second"], "seconds": summary["train_seconds"]}


def train_peer(
    output_dir: str, steps: int, batch: int, length: int, negatives: int, precision: str = "no", seed: int = 42
) -> dict:
    """sentence-transformers' trainer with MultipleNegativesRankingLoss on the same lists as ``finetune.train``."""
    from datasets import Dataset as HfDataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, losses
    from sentence_transformers.training_args import SentenceTransformerTrainingArguments

    from finetune.data import ListwiseDataset
    from recsys.model.artifact import DEFAULT_MODEL
    from recsys.model.artifact import resolve_model_path as base_path

    lists = ListwiseDataset(read_clicks(DATA / "train.csv"), negatives, seed)
    examples = [lists[n] for n in range(len(lists))]
    columns = {"anchor": [e.query for e in examples], "positive": [e.items[0] for e in examples]}
    columns |= {f"negative_{k}": [e.items[k] for e in examples] for k in range(1, negatives + 1)}
    model = SentenceTransformer(base_path(DEFAULT_MODEL), device="cpu")
    model.max_seq_length = length
    arguments = SentenceTransformerTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=2e-5,
        warmup_ratio=0.1,
        weight_decay=0.01,
        seed=seed,
        use_cpu=True,
        save_strategy="no",
        report_to="none",
        logging_steps=steps,
        disable_tqdm=True,
        bf16=precision == "bf16",
    )
    loss = losses.MultipleNegativesRankingLoss(model, scale=20.0)
    trainer = SentenceTransformerTrainer(model, arguments, train_dataset=HfDataset.from_dict(columns), loss=loss)
    seconds = trainer.train().metrics["train_runtime"]
    model.save(output_dir)
    return {"pairs/s": steps * batch * (1 + negatives) / seconds, "seconds": seconds}


def _in_child(function: Callable, arguments: tuple, results) -> None:
    torch.set_num_threads(THREADS)
    out = function(*arguments)
    # VmHWM, the peak of this process's own memory (ru_maxrss would carry the parent's peak across the fork)
    peak = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    results.put(out | {"peak MiB": int(peak.split()[1]) / 1024})


def in_child(function: Callable, *arguments) -> dict:
    """``function(*arguments)`` in a fresh process, with that process's peak memory."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_in_child, args=(function, arguments, results))
    child.start()
    out = results.get()
    child.join()
    return out


def text_auc(model_dir: str) -> float:
    """Group AUC of a model's text logits on the validation users (no priors, no calibration needed)."""
    from recsys.evaluation.metrics import evaluate_scores
    from recsys.scoring.loading import load_scorer

    frame = read_clicks(DATA / "valid.csv")
    logits = load_scorer(model_dir).score_pairs(list(zip(frame[QUERY], frame[ITEM], strict=True)))
    return evaluate_scores(frame, logits, logits, intervals=False).values["auc"]


def training(report: Report, steps: int, batch: int = 16, length: int = 64, negatives: int = 4) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        peer, ours = "sentence-transformers trainer + MNRL", "finetune.train"
        runs = {
            f"{peer}, full fine-tuning (peer)": (train_peer, f"{folder}/peer", steps, batch, length, negatives),
            f"{ours}, full fine-tuning": (train_clicktune, f"{folder}/full", steps, batch, length, 0),
            f"{ours}, LoRA rank 8 (the default recipe)": (train_clicktune, f"{folder}/lora", steps, batch, length, 8),
            f"{peer}, full fine-tuning, bf16": (
                train_peer,
                f"{folder}/peer16",
                steps,
                batch,
                length,
                negatives,
                "bf16",
            ),
            f"{ours}, full fine-tuning, --mixed-precision bf16": (
                train_clicktune,
                f"{folder}/full16",
                steps,
                batch,
                length,
                0,
                "bf16",
            ),
        }
        for name, (function, out, *arguments) in runs.items():
            result = in_child(function, out, *arguments)
            rows.append({"trainer": name, **result, "validation AUC": text_auc(out)})
    peer = rows[0]["pairs/s"]
    for row in rows:
        row["× peer"] = row["pairs/s"] / peer
    report.add(
        "Training: pairs/s against SentenceTransformerTrainer",
        f"{steps} steps of {batch} lists (a click and {negatives} non-clicks of its group, the same lists for "
        f"both), max_length {length}, the packaged MiniLM, lr 2e-5 with 10% warm-up, seed 42, each trainer in "
        "its own process (peak memory is that process's). Pairs/s counts (context, title) pairs per second of "
        "training (ClickTune: its loop's own clock, evaluation excluded; the peer: `train_runtime`). Validation "
        "AUC is of the text score on the validation users, after the same steps.\n\n" + table(rows),
    )
    report.figures["training"] = rows


# -- 6: cost growth -------------------------------------------------------------------------------------------


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


# -- the run --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=TRAINED_MODEL, help="a bi-encoder folder (make demo trains it)")
    parser.add_argument("--texts", type=int, default=2000, help="titles per encoder run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per encoder timing, the best kept")
    parser.add_argument("--train-steps", type=int, default=30, help="steps of each trainer; 0 leaves training out")
    parser.add_argument("--out", type=Path, default=HERE / "speed.md")
    parser.add_argument("--quick", action="store_true", help="small sizes: a check that every part runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request of gradio_client
    if not (args.model / "clicktune.json").is_file():
        raise SystemExit(f"{args.model} holds no ClickTune model: run `make demo` (or pass --model DIR)")
    torch.set_num_threads(THREADS)
    quick = args.quick
    texts, contexts = real_texts()
    report = Report()
    report.figures["machine"] = machine()

    from recsys.scoring.loading import load_scorer

    limit = matmul_rate()
    report.figures["matmul_gflops"] = limit / 1e9
    encoders(report, args.model, texts[: 200 if quick else args.texts], limit, 1 if quick else args.repeats)
    cross_encoders(report, texts[: 64 if quick else 500], contexts, limit, 1 if quick else 2)

    scorer = load_scorer(str(args.model))  # as the app serves it
    flops = FlopCount.of(scorer.model.encoder)
    length = scorer.metadata.max_length

    def floor(items: list[str], context: str) -> float:
        return flops.of_lengths(token_lengths(scorer.tokenizer, [context, *items], length)) / limit

    cached_lists(report, scorer, texts, contexts)
    catalog_rows = catalogs(
        report, scorer, texts, contexts, (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    )
    end_to_end(report, args.model, texts[2000:], contexts, floor, quick)
    if args.train_steps:
        training(report, 2 if quick else args.train_steps)
    list_rows = list_growth(report, scorer, texts, contexts, (100, 1000) if quick else (100, 1000, 10_000))
    chart(args.out.with_suffix(".png"), list_rows, catalog_rows)
    report.add(
        "Cost growth",
        f"![time against list and catalog size]({args.out.with_suffix('.png').name})\n\n"
        + table(list_rows)
        + "\n\n"
        + table(catalog_rows),
    )
    facts = report.figures["machine"]
    header = (
        "# Speed against the peers (`make bench`)\n\n"
        f"Measured {facts['date']} on {facts['cpu']} ({facts['cores']} cores, {THREADS} torch threads), "
        f"Python {facts['python']}; "
        + ", ".join(f"{k} {v}" for k, v in facts["versions"].items())
        + f". fp32 matmul limit in this run: {limit / 1e9:.0f} GFLOP/s. Generated by `python -m bench.speed`; "
        "these machines are shared and noisy, so compare the ratios."
    )
    report.write(args.out, header)


if __name__ == "__main__":
    main()
