"""bench.speed's encoders against the limit and the peers: ClickTune's bi-encoder vectors (PyTorch and, where
exported, ONNX Runtime fp32 and int8) against ``SentenceTransformer.encode``, and its cross-encoder against
``CrossEncoder.predict``; texts (or pairs) per second, and each as a fraction of the machine's fp32 matmul rate."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.speed_measure import FlopCount, Report, best_of, table, token_lengths

PEER_ENCODER = "sentence-transformers encode (peer)"


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
        PEER_ENCODER: lambda: peer.encode(texts, batch_size=64, convert_to_numpy=True),
        "ClickTune TorchEncoder (fp32)": lambda: TorchEncoder(scorer.model, scorer.tokenizer, length).encode(texts),
    }
    runs.update(onnx_encoders(model_dir, length, texts))
    rows = encoder_rows(runs, len(texts), work, limit, repeats)
    mean_tokens = np.mean(token_lengths(scorer.tokenizer, texts, length))
    report.add(
        "Bi-encoder: texts/s against sentence-transformers",
        f"{len(texts)} distinct Bing News titles ({mean_tokens:.0f} tokens each on average, max_length {length}), "
        f"model `{model_dir.name}`, batch 64, best of {repeats}. FLOPs counted on the real tokens "
        f"(2 x {FlopCount.of(scorer.model.encoder).weights / 1e6:.1f} M weights per token, plus attention); "
        f"this machine's fp32 matmul limit measured in the same run: {limit / 1e9:.0f} GFLOP/s.\n\n" + table(rows),
    )
    report.figures["encoders"] = rows


def encoder_rows(
    runs: dict[str, Callable[[], np.ndarray]], texts: int, work: float, limit: float, repeats: int
) -> list[dict]:
    """Each encoder's best time over ``texts`` texts (``work`` FLOPs), and how close its vectors are to the
    peer's, which runs first."""
    rows, seconds, reference = [], {}, None
    for name, run in runs.items():
        seconds[name], vectors = best_of(run, repeats)
        reference = vectors if reference is None else reference  # the peer's, the first run
        cosine = (vectors * reference).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)
        rows.append(
            {
                "encoder": name,
                "texts/s": texts / seconds[name],
                "× peer": seconds[PEER_ENCODER] / seconds[name],
                "fp32-equivalent GFLOP/s": work / seconds[name] / 1e9,
                "of the matmul limit": f"{work / seconds[name] / limit:.0%}",
                "min cosine to peer": float(cosine.min()),
            }
        )
    return rows


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
