"""Exporting a bi-encoder to ONNX and checking each export against the model: ``clicktune-onnx``.

    python -m recsys.scoring.onnx_export export --model DIR [--data FILE]

:func:`export` writes the model's sentence encoder (the transformer, mean pooling over the attention mask
and L2 normalisation, as ``BiEncoder.embed``) to ``DIR/onnx/model.onnx``, with dynamic batch and sequence
axes, and a copy whose weights are quantized to int8 (dynamic quantization, per channel) to
``DIR/onnx/model_qint8.onnx``. Each graph takes ``input_ids`` and ``attention_mask`` and returns
``sentence_embedding`` (the normalised vector that ``recsys.scoring.onnx_runtime.OnnxEncoder`` reads) and
``last_hidden_state`` (what sentence-transformers' ONNX backend reads from ``onnx/model.onnx``, its folder
convention, and pools itself).

An export is served only where it ranks as the model does. :func:`check` scores a click log's
(query, item) pairs with the PyTorch model and with each export, compares their text logits
(``recsys.scoring.onnx_agreement.agreement``) and writes ``DIR/onnx/agreement.json``, which
``recsys.scoring.onnx_runtime.serving_encoder`` reads. :func:`load_bi_encoder` checks and loads the folder for both.

Only bi-encoders are exported: a cross-encoder scores each (query, item) pair in a forward pass of its
own, with no text vectors to serve, and stays on PyTorch.
"""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recsys.cli import run_cli, say
from recsys.data.contract import GROUP, ITEM, QUERY, read_clicks
from recsys.defaults import VALID_FILE, Env
from recsys.errors import UserError
from recsys.model.artifact import BI, ModelMetadata, content_digest, model_digest, model_version
from recsys.model.checks import check_model_folder
from recsys.scoring.onnx_agreement import (
    FP32,
    INT8,
    MIN_SPEARMAN,
    MIN_TOP_UNCHANGED,
    ONNX_DIR,
    ONNX_FILES,
    TOP,
    AgreementReport,
    CheckedExport,
    agreement,
)
from recsys.scoring.onnx_runtime import ENCODE_BATCH, INPUTS, TOKENS, VECTOR, OnnxEncoder
from recsys.scoring.scorer import require_bi_encoder
from recsys.scoring.vectors import TextEncoder, TorchEncoder, VectorCache

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from recsys.model.architectures import BiEncoder

logger = logging.getLogger(__name__)

ONNX_FILE_LIMIT = 2**31  # bytes: protobuf's limit on one .onnx file


def load_bi_encoder(model_dir: str | Path) -> tuple[BiEncoder, PreTrainedTokenizerBase, ModelMetadata]:
    """A local bi-encoder folder, checked (``recsys.model.checks``) and loaded, and its metadata (a base model's: the
    defaults); anything else is refused."""
    path = Path(model_dir)
    if not path.is_dir():
        raise UserError(
            f"{path}: no such folder; ONNX files are written into a local model folder: give the folder that "
            "`python -m finetune.train --output-dir` wrote, or a base model's folder"
        )
    saved = check_model_folder(path)
    metadata = saved or ModelMetadata(base_model=str(path))
    require_bi_encoder(metadata.architecture, str(path), "an ONNX export")
    from recsys.model.architectures import load_checked_model  # imported here: --help loads no torch

    model, tokenizer = load_checked_model(BI, str(path), saved)
    return model, tokenizer, metadata


class _ErrorsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextmanager
def quiet_exporters() -> Iterator[None]:
    """Only errors from the exporters: torch.onnx's optimiser logs each graph rewrite, and onnxruntime's quantizer
    logs each tensor to the root logger, with advice to pre-process the graph first (its shape inference does
    not complete on torch.onnx's graphs)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger_.level for logger_ in loggers]
    root, only_errors = logging.getLogger(), _ErrorsOnly()
    for logger_ in loggers:
        logger_.setLevel(logging.ERROR)
    root.addFilter(only_errors)  # a logger's filter sees only what is logged to it: not what propagates
    try:
        with warnings.catch_warnings():
            # Both inputs share their axes: torch.onnx names them once and warns for the second.
            warnings.filterwarnings("ignore", message="# The axis name", category=UserWarning)
            yield
    finally:
        root.removeFilter(only_errors)
        for logger_, level in zip(loggers, levels, strict=True):
            logger_.setLevel(level)


def export(model_dir: str | Path) -> dict[str, Path]:
    """Write a bi-encoder folder's fp32 and int8 ONNX files into its ``onnx/`` folder; their paths by precision.

    Both are written aside and moved into place at the end, so that a failed export leaves the files that
    were there. Neither is served until :func:`check` has passed it.
    """
    import torch  # imported here, as the model's: --help loads no torch

    from recsys.model.architectures import SentenceEncoder
    from recsys.model.relevance_model import tokenize

    path = Path(model_dir)
    model, tokenizer, metadata = load_bi_encoder(path)
    size = sum(p.numel() * p.element_size() for p in model.encoder.parameters())
    if size >= ONNX_FILE_LIMIT:
        raise UserError(
            f"{path}: the model's {size / 2**30:.1f} GiB of weights exceed one ONNX file; serve it with PyTorch"
        )
    folder = path / ONNX_DIR
    folder.mkdir(exist_ok=True)
    files = {precision: folder / name for precision, name in ONNX_FILES.items()}
    partial = {
        precision: file.with_name(f".{file.stem}.{os.getpid()}.partial.onnx") for precision, file in files.items()
    }
    # Two texts of different lengths: an axis of size 1 would be exported as a constant.
    example = tokenize(tokenizer, metadata.max_length, ["a short text", "and a longer text, padded less"])
    axes = {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")}
    logger.info("exporting %s to ONNX", path)
    try:
        with quiet_exporters():
            torch.onnx.export(
                SentenceEncoder(model).eval(),
                tuple(example[name] for name in INPUTS),
                partial[FP32],
                input_names=list(INPUTS),
                output_names=[TOKENS, VECTOR],
                dynamic_shapes={name: axes for name in INPUTS},
                dynamo=True,
                external_data=False,
                verbose=False,
            )
            # Per channel (a scale per weight column): MiniLM's int8 vectors kept a cosine of 0.99 to fp32's, where
            # one scale per tensor kept 0.96.
            from onnxruntime.quantization import QuantType, quantize_dynamic  # 1.4 s to import: only to export

            quantize_dynamic(partial[FP32], partial[INT8], weight_type=QuantType.QInt8, per_channel=True)
        for precision, file in files.items():
            os.replace(partial[precision], file)
    finally:
        for file in partial.values():
            file.unlink(missing_ok=True)
    return files


def default_data(metadata: ModelMetadata) -> Path:
    """The click log to check on: the eval file training selected the model on, else the bundled validation split."""
    for candidate in (metadata.training.get("eval_file"), VALID_FILE):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise UserError("no click log to check the exports on (training's eval file is not here): give --data FILE")


def check(
    model_dir: str | Path,
    data_file: str | Path | None = None,
    batch_size: int = ENCODE_BATCH,
    threads: int | None = None,
) -> AgreementReport:
    """Score ``data_file``'s (query, item) pairs with the PyTorch model and with each ONNX file of the folder,
    compare their rankings (``recsys.scoring.onnx_agreement.agreement``) and write ``onnx/agreement.json``.

    ``data_file`` defaults to :func:`default_data`.
    """
    import torch  # imported here, as the model's: --help loads no torch

    path = Path(model_dir)
    model, tokenizer, metadata = load_bi_encoder(path)
    data_file = Path(data_file) if data_file is not None else default_data(metadata)
    clicks = read_clicks(data_file)
    texts = [*clicks[QUERY], *clicks[ITEM]]

    def text_logits(encoder: TextEncoder) -> np.ndarray:  # each distinct text encoded once, as serving does
        vectors = torch.from_numpy(VectorCache(max_items=0).encode(encoder.name, encoder, texts))
        with torch.inference_mode():
            return model.logits(vectors[: len(clicks)], vectors[len(clicks) :]).numpy()

    logger.info("scoring %d rows of %s with PyTorch", len(clicks), data_file)
    reference = text_logits(TorchEncoder(model, tokenizer, metadata.max_length, batch_size))
    exports = []
    for precision, name in reversed(ONNX_FILES.items()):  # fp32 first, as the report lists them
        encoder = OnnxEncoder(path, name, metadata.max_length, batch_size, threads)
        result = agreement(reference, text_logits(encoder), clicks[GROUP])
        logger.info("%s: %s", encoder.name, result.summary())
        file = path / ONNX_DIR / name
        exports.append(CheckedExport(precision, f"{ONNX_DIR}/{name}", content_digest([file]), result))
    report = AgreementReport(
        model_version(path, metadata), model_digest(path), metadata.max_length, str(data_file), tuple(exports)
    )
    report.save(path)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys.scoring.onnx_export",
        description="Serve a bi-encoder with ONNX Runtime: export it (fp32 and int8) and check which export "
        f"ranks as the model does (Spearman >= {MIN_SPEARMAN}, top {TOP} unchanged in >= "
        f"{MIN_TOP_UNCHANGED:.0%} of groups).",
        epilog="Installed as a package (pip install .), the same command is clicktune-onnx.",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        help="what to do; `python -m recsys.scoring.onnx_export export --help` lists its flags",
    )
    command = commands.add_parser(
        "export",
        help="write onnx/model.onnx and onnx/model_qint8.onnx into the model folder and check them",
        description="Export the model folder's bi-encoder to onnx/model.onnx (fp32) and onnx/model_qint8.onnx "
        "(int8 weights), score a click log with PyTorch and with each, and write onnx/agreement.json, which "
        f"serving reads: the int8 export where it passed, else fp32 where it passed, else PyTorch ({Env.ONNX}=0: "
        "PyTorch always).",
    )
    command.add_argument("--model", required=True, type=Path, help="the bi-encoder's model folder")
    command.add_argument(
        "--data",
        type=Path,
        help="click log to compare the rankings on (default: the eval file that training used, else the bundled "
        "Bing News validation split)",
    )
    return parser


def main(argv: list[str] | None = None) -> AgreementReport:
    args = build_parser().parse_args(argv)
    for precision, file in export(args.model).items():
        logger.info("wrote %s (%s)", file, precision)
    report = check(args.model, args.data)
    for export_ in report.exports:
        say(f"{export_.precision}: {export_.agreement.summary()}")
    served = report.served()
    where = f"the {served.precision} ONNX export ({served.file})" if served else "PyTorch (no export passed)"
    say(f"serving {args.model} uses {where}; {Env.ONNX}=0 serves PyTorch")
    return report


def cli() -> None:
    """``python -m recsys.scoring.onnx_export``, installed as ``clicktune-onnx``."""
    run_cli(main)


if __name__ == "__main__":
    cli()
