"""A bi-encoder served by ONNX Runtime: its export, the encoder that runs it, and the check that decides.

    python -m recsys.scoring.onnx_runtime export --model DIR [--data FILE]

:func:`export` writes the model's sentence encoder (the transformer, mean pooling over the attention mask
and L2 normalisation, as ``BiEncoder.embed``) to ``DIR/onnx/model.onnx``, with dynamic batch and sequence
axes, and a copy whose weights are quantized to int8 (dynamic quantization, per channel) to
``DIR/onnx/model_qint8.onnx``. Each graph takes ``input_ids`` and ``attention_mask`` and returns
``sentence_embedding`` (the normalised vector that :class:`OnnxEncoder` reads) and ``last_hidden_state``
(what sentence-transformers' ONNX backend reads from ``onnx/model.onnx``, its folder convention, and pools
itself).

An export is served only where it ranks as the model does. :func:`check` scores a click log's
(query, item) pairs with the PyTorch model and with each export and compares their text logits
(:func:`agreement`): the Spearman correlation over all rows, and the share of groups whose top 10 holds
the same items in the same order. An export passes at a Spearman of at least 0.99 with the top 10
unchanged in at least 95% of groups. ``DIR/onnx/agreement.json`` records the result for this model
(a digest of ``clicktune.json`` and the weights) and these files (their digests), so that a retrained
model or a new export is not served on an old check; :func:`serving_encoder` reads it.

Only bi-encoders are exported: a cross-encoder scores each (query, item) pair in a forward pass of its
own, with no text vectors to serve, and stays on PyTorch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.cli import run_cli, say
from recsys.data.contract import FALSE, GROUP, ITEM, QUERY, TRUE, read_clicks
from recsys.defaults import VALID_FILE, Env
from recsys.errors import UserError
from recsys.model.artifact import (
    BI,
    METADATA_FILE,
    WEIGHTS_PATTERN,
    ModelFolderError,
    ModelMetadata,
    model_version,
    read_json,
    write_text_atomic,
)
from recsys.scoring.vectors import Advance, TextEncoder, TorchEncoder, VectorCache

logger = logging.getLogger(__name__)

ONNX_DIR = "onnx"  # sentence-transformers' folder for a model's ONNX files
FP32, INT8 = "fp32", "int8"
ONNX_FILES = {INT8: "model_qint8.onnx", FP32: "model.onnx"}  # by precision, in the order serving prefers them
AGREEMENT_FILE = "agreement.json"
INPUTS = ("input_ids", "attention_mask")
VECTOR, TOKENS = "sentence_embedding", "last_hidden_state"  # the graph's outputs

MIN_SPEARMAN = 0.99
MIN_TOP_UNCHANGED = 0.95
TOP = 10
ENCODE_BATCH = 64  # texts per ONNX Runtime call, as recsys.scoring.scorer's SCORE_BATCH
ONNX_FILE_LIMIT = 2**31  # bytes: protobuf's limit on one .onnx file

_EXPORT = "python -m recsys.scoring.onnx_runtime export --model {model_dir}"


def onnx_precisions(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The precisions that ``CLICKTUNE_ONNX`` lets serving use, preferred first: unset or 1, both; fp32; 0, none."""
    text = (os.environ if env is None else env).get(Env.ONNX, "").strip().lower()
    if text in ("", *TRUE):
        return tuple(ONNX_FILES)
    if text in FALSE:
        return ()
    if text == FP32:
        return (FP32,)
    raise UserError(
        f"{Env.ONNX}={text!r} must be 1 (serve the int8 or fp32 ONNX export that passed its check), "
        f"{FP32} (the fp32 export only) or 0 (serve PyTorch)"
    )


def require_bi_encoder(model_dir: str | Path) -> ModelMetadata:
    """The metadata of a local bi-encoder folder (a base model's: the defaults); anything else is refused."""
    path = Path(model_dir)
    if not path.is_dir():
        raise UserError(
            f"{path}: no such folder; ONNX files are written into a local model folder: give the folder that "
            "`python -m finetune.train --output-dir` wrote, or a base model's folder"
        )
    metadata = ModelMetadata.load(path)
    if metadata is not None and metadata.architecture != BI:
        raise UserError(
            f"{path}: a {metadata.architecture}-encoder is not exported to ONNX (only a bi-encoder's text vectors "
            "are served by ONNX Runtime); serve this model with PyTorch as it is, or train a bi-encoder "
            "(`python -m finetune.train --architecture bi`) to export"
        )
    return metadata or ModelMetadata(base_model=str(path))


# -- export -----------------------------------------------------------------------------------------------------


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

    from recsys.model.architectures import SentenceEncoder, load_model, tokenize

    path = Path(model_dir)
    metadata = require_bi_encoder(path)
    model, tokenizer = load_model(BI, str(path))  # checks the folder first
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


# -- encoding ---------------------------------------------------------------------------------------------------


class OnnxEncoder:
    """A bi-encoder's ONNX export run by ONNX Runtime on the CPU, batched as
    :class:`~recsys.scoring.vectors.TorchEncoder`: length-sorted batches of ``batch_size`` texts, padded to the batch's
    longest, truncated at ``max_length``.

    ``file`` is a name in ``model_dir/onnx`` (or a path); ``threads`` are ONNX Runtime's intra-op threads,
    by default as many as PyTorch uses. Thread-safe: one session serves concurrent ``encode`` calls.
    """

    def __init__(
        self,
        model_dir: str | Path,
        file: str | Path,
        max_length: int,
        batch_size: int = ENCODE_BATCH,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort  # imported here, as torch and transformers: --help loads none of them
        import torch
        from transformers import AutoTokenizer

        path = Path(model_dir, ONNX_DIR, file)  # an absolute ``file`` stays as it is
        if not path.is_file():
            raise UserError(f"{path}: no such ONNX file; write it with `{_EXPORT.format(model_dir=model_dir)}`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        outputs = {output.name: output for output in self.session.get_outputs()}
        if VECTOR not in outputs or [i.name for i in self.session.get_inputs()] != list(INPUTS):
            raise UserError(
                f"{path}: not a ClickTune export (inputs {', '.join(INPUTS)}, output {VECTOR}); "
                f"export again with `{_EXPORT.format(model_dir=model_dir)}`"
            )
        self.dimension = outputs[VECTOR].shape[-1]
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.max_length, self.batch_size = max_length, batch_size
        precisions = {name: precision for precision, name in ONNX_FILES.items()}
        self.name = f"onnx {precisions.get(path.name, path.name)}"

    def encode(self, texts: Sequence[str], progress: Advance | None = None) -> np.ndarray:
        """Normalised float32 vectors of ``texts``, in input order; ``progress`` gets the count after each batch."""
        from recsys.model.architectures import length_sorted_batches, tokenize  # imported here: --help loads no torch

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for index in length_sorted_batches(texts, self.batch_size):
            batch = tokenize(self.tokenizer, self.max_length, [texts[i] for i in index])
            out[index] = self.session.run([VECTOR], {name: batch[name].numpy() for name in INPUTS})[0]
            if progress is not None:
                progress(len(index))
        return out


# -- agreement --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """How one export's scores rank a click log against the PyTorch model's."""

    spearman: float  # rank correlation of the text logits, over all rows together
    top10_unchanged: float  # share of groups whose top 10 holds the same items in the same order
    groups: int
    rows: int

    @property
    def passed(self) -> bool:
        return self.spearman >= MIN_SPEARMAN and self.top10_unchanged >= MIN_TOP_UNCHANGED

    def summary(self) -> str:
        verdict = "passed" if self.passed else f"failed (needs >= {MIN_SPEARMAN} and >= {MIN_TOP_UNCHANGED:.0%})"
        return (
            f"Spearman {self.spearman:.5f}, top {TOP} unchanged in {self.top10_unchanged:.1%} "
            f"of {self.groups} groups: {verdict}"
        )


def top_items(scores: np.ndarray, top: int = TOP) -> np.ndarray:
    """The positions of the ``top`` highest scores, high to low; ties in input order, as ``rank_scores`` ranks."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:top]


def agreement(reference: np.ndarray, candidate: np.ndarray, groups: Sequence[str] | pd.Series) -> Agreement:
    """How ``candidate``'s scores rank the rows of each group against ``reference``'s.

    Spearman is over all rows together (a NaN, from scores without any spread, fails); the top 10 of a group
    (all of it, where it is shorter) is unchanged where it holds the same items in the same order.
    """
    if not len(reference) == len(candidate) == len(groups):
        raise ValueError(f"{len(reference)} reference, {len(candidate)} candidate scores and {len(groups)} groups")
    if len(reference) == 0:
        raise ValueError("no scores to compare")
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    from scipy.stats import spearmanr  # imported here: --help loads no scipy.stats (a second)

    spearman = float(spearmanr(reference, candidate).statistic)
    rows = pd.Series(np.arange(len(reference))).groupby(np.asarray(groups), sort=False)
    unchanged = [
        np.array_equal(top_items(reference[index]), top_items(candidate[index])) for index in rows.groups.values()
    ]
    return Agreement(
        spearman=spearman if math.isfinite(spearman) else 0.0,
        top10_unchanged=float(np.mean(unchanged)),
        groups=len(unchanged),
        rows=len(reference),
    )


@dataclass(frozen=True)
class CheckedExport:
    """One ONNX file and its agreement with the model it was exported from."""

    precision: str
    file: str  # relative to the model folder
    sha256: str  # agreement.json vouches for these bytes only
    agreement: Agreement


@dataclass(frozen=True)
class AgreementReport:
    """``onnx/agreement.json``: which exports of which model rank a click log as the model does."""

    model_version: str
    model_sha256: str  # of clicktune.json and the weights (:func:`model_digest`)
    max_length: int
    data_file: str
    exports: tuple[CheckedExport, ...]

    def served(self, precisions: Sequence[str] = tuple(ONNX_FILES)) -> CheckedExport | None:
        """The first of ``precisions`` whose export passed; None: serve PyTorch."""
        passed = {export.precision: export for export in self.exports if export.agreement.passed}
        return next((passed[p] for p in precisions if p in passed), None)

    def save(self, model_dir: str | Path) -> Path:
        served = self.served()
        data = {
            "model_version": self.model_version,
            "model_sha256": self.model_sha256,
            "max_length": self.max_length,
            "data_file": self.data_file,
            "scores": "text logits of the PyTorch model (reference) and of each export",
            "spearman": "over all rows",
            "top10_unchanged": f"share of groups whose top {TOP} holds the same items in the same order",
            "min_spearman": MIN_SPEARMAN,
            "min_top10_unchanged": MIN_TOP_UNCHANGED,
            "exports": [
                {"precision": e.precision, "file": e.file, "sha256": e.sha256, **asdict(e.agreement)}
                | {"passed": e.agreement.passed}
                for e in self.exports
            ],
            "serve": served.precision if served else None,
        }
        path = Path(model_dir) / ONNX_DIR / AGREEMENT_FILE
        write_text_atomic(path, json.dumps(data, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> AgreementReport | None:
        """The folder's report, or None where it has none. Whether an export passed is judged again from its
        figures, by today's thresholds.

        As an interrupted save's journal (``recsys.model.commits``), the report may name only the model folder's own
        files: each export's file is ``onnx/`` and that precision's file name (:data:`ONNX_FILES`), a regular file
        where it exists, and neither it, the ``onnx/`` folder nor the report is a link. A report that names
        anything else, or whose values are not of their types, is refused (:class:`ModelFolderError`) before any
        file it names is read.
        """
        path = Path(model_dir) / ONNX_DIR / AGREEMENT_FILE
        again = f"run `{_EXPORT.format(model_dir=model_dir)}` again"
        if path.parent.is_symlink() or path.is_symlink():
            link = path.parent if path.parent.is_symlink() else path
            raise ModelFolderError(link, "is a link; a model folder's ONNX files are its own, never links", again)
        if not path.is_file():
            return None
        data = read_json(path)
        try:
            exports = tuple(_checked_export(e) for e in data["exports"])
            report = cls(data["model_version"], data["model_sha256"], data["max_length"], data["data_file"], exports)
            for name in ("model_version", "model_sha256", "data_file"):
                _require(isinstance(getattr(report, name), str), name, getattr(report, name))
            _require(_whole(report.max_length), "max_length", report.max_length)
        except _WrongValue as err:
            problem = f"not an agreement report (its {err}, not what ClickTune writes there)"
            raise ModelFolderError(path, problem, again) from None
        except (KeyError, TypeError) as err:
            raise ModelFolderError(path, f"not an agreement report ({err!r} is wrong)", again) from None
        for export_ in exports:
            _require_own_file(Path(model_dir), path, export_, again)
        return report


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


class _WrongValue(TypeError):
    """A report's value of another type or range than ClickTune writes; its message names the key and value."""


def _require(good: bool, name: str, value: object) -> None:
    if not good:
        raise _WrongValue(f"{name} is {value!r}")


def _checked_export(entry: object) -> CheckedExport:
    """One export of a report as the report's types; a value of another type raises :class:`_WrongValue`."""
    _require(isinstance(entry, dict), "export", entry)
    export_ = CheckedExport(
        entry["precision"],
        entry["file"],
        entry["sha256"],
        Agreement(**{k: entry[k] for k in Agreement.__annotations__}),
    )
    for name in ("precision", "file", "sha256"):
        _require(isinstance(getattr(export_, name), str), name, getattr(export_, name))
    for name in ("spearman", "top10_unchanged"):
        value = getattr(export_.agreement, name)
        _require(isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value), name, value)
    for name in ("groups", "rows"):
        _require(_whole(getattr(export_.agreement, name)), name, getattr(export_.agreement, name))
    return export_


def _require_own_file(model_dir: Path, report: Path, export_: CheckedExport, again: str) -> None:
    """An export names its precision's file in the folder's ``onnx/``, a regular file (where it exists), no link."""
    own = f"{ONNX_DIR}/{ONNX_FILES[export_.precision]}" if export_.precision in ONNX_FILES else None
    file = model_dir / ONNX_DIR / ONNX_FILES.get(export_.precision, "")
    if export_.file != own or file.is_symlink() or (file.exists() and not file.is_file()):
        names = ", ".join(f"{ONNX_DIR}/{name}" for name in ONNX_FILES.values())
        raise ModelFolderError(
            report,
            f"its {export_.precision!r} export names {export_.file!r}, which is not one of the model folder's own "
            f"ONNX files ({names}, regular files, never links); nothing it names was read",
            again,
        )


def sha256(files: Sequence[Path]) -> str:
    """One digest of the names and contents of ``files``."""
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as handle:
            digest.update(f"{file.name} {hashlib.file_digest(handle, 'sha256').hexdigest()}\n".encode())
    return digest.hexdigest()


def model_digest(model_dir: str | Path) -> str:
    """What an export depends on: ``clicktune.json`` (every training run writes a new one) and the weights."""
    path = Path(model_dir)
    metadata = [path / METADATA_FILE] if (path / METADATA_FILE).is_file() else []
    return sha256([*metadata, *sorted(path.glob(WEIGHTS_PATTERN))])


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
    compare their rankings (:func:`agreement`) and write ``onnx/agreement.json``.

    ``data_file`` defaults to :func:`default_data`.
    """
    import torch  # imported here, as the model's: --help loads no torch

    from recsys.model.architectures import load_model

    path = Path(model_dir)
    metadata = require_bi_encoder(path)
    data_file = Path(data_file) if data_file is not None else default_data(metadata)
    clicks = read_clicks(data_file)
    model, tokenizer = load_model(BI, str(path))
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
        exports.append(CheckedExport(precision, f"{ONNX_DIR}/{name}", sha256([file]), result))
    report = AgreementReport(
        model_version(path, metadata), model_digest(path), metadata.max_length, str(data_file), tuple(exports)
    )
    report.save(path)
    return report


# -- serving ----------------------------------------------------------------------------------------------------


def serving_encoder(
    model_dir: str | Path,
    metadata: ModelMetadata,
    batch_size: int = ENCODE_BATCH,
    env: Mapping[str, str] | None = None,
) -> TextEncoder | None:
    """The ONNX encoder to serve a model folder's bi-encoder with; None: serve PyTorch.

    The int8 export where ``onnx/agreement.json`` passed it for this exact model (the digest of its
    ``clicktune.json`` and weights, and its ``max_length``) and this exact file, else the fp32 export on the
    same terms, else None: for a cross-encoder, a Hub id or base model name (no local folder), a folder never
    exported or checked, a check of another version of the model (retrained since: a warning says to export
    again), a file changed since its check, or ``CLICKTUNE_ONNX=0`` (``fp32`` allows the fp32 export only;
    ``env`` defaults to the process environment). A damaged ``agreement.json``, or one that names a file other
    than the folder's own exports (a path elsewhere, a link), is refused
    (:class:`~recsys.model.artifact.ModelFolderError`), as the folder's other JSON files are: nothing is served.

    ``recsys.scoring.scorer.load_scorer`` passes the result as ``Scorer(..., encoder=...)`` (None keeps the PyTorch
    encoder), whose cached vectors are kept by model version and encoder (``encoder.name``). Costs digests of the
    weights and of the served file (0.15 to 0.3 s for MiniLM) and an ONNX Runtime session.
    """
    precisions = onnx_precisions(env)
    path = Path(model_dir)
    if not precisions or metadata.architecture != BI or not path.is_dir():
        return None
    report = AgreementReport.load(path)
    if report is None:
        if (path / ONNX_DIR).is_dir():
            logger.info(
                "%s: no %s, so no export is served; run `%s`", path, AGREEMENT_FILE, _EXPORT.format(model_dir=path)
            )
        return None
    if report.model_sha256 != model_digest(path) or report.max_length != metadata.max_length:
        logger.warning(
            "%s: the ONNX exports were checked on %s, not on this model (retrained since?): serving PyTorch; "
            "export again with `%s`",
            path,
            report.model_version,
            _EXPORT.format(model_dir=path),
        )
        return None
    for precision in precisions:
        served = report.served((precision,))
        if served is None:
            continue
        file = path / served.file
        if not file.is_file() or sha256([file]) != served.sha256:
            logger.warning("%s: changed since its check; export again with `%s`", file, _EXPORT.format(model_dir=path))
            continue
        logger.info("serving %s's %s ONNX export (%s)", path, precision, served.agreement.summary())
        return OnnxEncoder(path, file.name, metadata.max_length, batch_size)
    return None


# -- command line -----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys.scoring.onnx_runtime",
        description="Serve a bi-encoder with ONNX Runtime: export it (fp32 and int8) and check which export "
        f"ranks as the model does (Spearman >= {MIN_SPEARMAN}, top {TOP} unchanged in >= "
        f"{MIN_TOP_UNCHANGED:.0%} of groups).",
        epilog="Installed as a package (pip install .), the same command is clicktune-onnx.",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        help="what to do; `python -m recsys.scoring.onnx_runtime export --help` lists its flags",
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
    """``python -m recsys.scoring.onnx_runtime``, installed as ``clicktune-onnx``."""
    run_cli(main)


if __name__ == "__main__":
    cli()
