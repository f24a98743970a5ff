"""A bi-encoder's ONNX export served by ONNX Runtime: the encoder that runs it and the choice of what to serve.

:class:`OnnxEncoder` runs an export written by ``recsys.scoring.onnx_export`` (inputs ``input_ids`` and
``attention_mask``, output ``sentence_embedding``, the normalised vector). :func:`serving_encoder` picks the export
that ``onnx/agreement.json`` (``recsys.scoring.onnx_agreement``) passed for this exact model and file, or None to
serve PyTorch, among the precisions it is given; :func:`onnx_precisions` reads them from the value of
``CLICKTUNE_ONNX``, which ``recsys.serving.settings`` reads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recsys.data.contract import FALSE, TRUE
from recsys.defaults import Env
from recsys.errors import UserError
from recsys.model.artifact import BI, ModelMetadata, content_digest, model_digest
from recsys.scoring.onnx_agreement import AGREEMENT_FILE, EXPORT_COMMAND, FP32, ONNX_DIR, ONNX_FILES, AgreementReport
from recsys.scoring.vectors import Advance, TextEncoder

logger = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask")
VECTOR, TOKENS = "sentence_embedding", "last_hidden_state"  # the graph's outputs

ENCODE_BATCH = 64  # texts per ONNX Runtime call, as recsys.scoring.scorer's SCORE_BATCH
# The precisions that may be served unless told otherwise, preferred first: either export, where its check passed.
ANY_ONNX = tuple(ONNX_FILES)


def onnx_precisions(value: str) -> tuple[str, ...]:
    """The precisions that a value of ``CLICKTUNE_ONNX`` lets serving use, preferred first: "" or 1, both; fp32;
    0, none."""
    text = value.strip().lower()
    if text in ("", *TRUE):
        return ANY_ONNX
    if text in FALSE:
        return ()
    if text == FP32:
        return (FP32,)
    raise UserError(
        f"{Env.ONNX}={text!r} must be 1 (serve the int8 or fp32 ONNX export that passed its check), "
        f"{FP32} (the fp32 export only) or 0 (serve PyTorch)"
    )


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
            raise UserError(f"{path}: no such ONNX file; write it with `{EXPORT_COMMAND.format(model_dir=model_dir)}`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        outputs = {output.name: output for output in self.session.get_outputs()}
        if VECTOR not in outputs or [i.name for i in self.session.get_inputs()] != list(INPUTS):
            raise UserError(
                f"{path}: not a ClickTune export (inputs {', '.join(INPUTS)}, output {VECTOR}); "
                f"export again with `{EXPORT_COMMAND.format(model_dir=model_dir)}`"
            )
        self.dimension = outputs[VECTOR].shape[-1]
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.max_length, self.batch_size = max_length, batch_size
        precisions = {name: precision for precision, name in ONNX_FILES.items()}
        self.name = f"onnx {precisions.get(path.name, path.name)}"

    def encode(self, texts: Sequence[str], progress: Advance | None = None) -> np.ndarray:
        """Normalised float32 vectors of ``texts``, in input order; ``progress`` gets the count after each batch."""
        from recsys.model.relevance_model import length_sorted_batches, tokenize  # imported here: --help loads no torch

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for index in length_sorted_batches(texts, self.batch_size):
            batch = tokenize(self.tokenizer, self.max_length, [texts[i] for i in index])
            out[index] = self.session.run([VECTOR], {name: batch[name].numpy() for name in INPUTS})[0]
            if progress is not None:
                progress(len(index))
        return out


def serving_encoder(
    model_dir: str | Path,
    metadata: ModelMetadata,
    batch_size: int = ENCODE_BATCH,
    precisions: Sequence[str] = ANY_ONNX,
) -> TextEncoder | None:
    """The ONNX encoder to serve a model folder's bi-encoder with; None: serve PyTorch.

    The int8 export where ``onnx/agreement.json`` passed it for this exact model (the digest of its
    ``clicktune.json`` and weights, and its ``max_length``) and this exact file, else the fp32 export on the
    same terms, else None: for a cross-encoder, a Hub id or base model name (no local folder), a folder never
    exported or checked, a check of another version of the model (retrained since: a warning says to export
    again), a file changed since its check, or no ``precisions`` (the ones that may be served, preferred first:
    :func:`onnx_precisions`). A damaged ``agreement.json``, or one that names a file other
    than the folder's own exports (a path elsewhere, a link), is refused
    (:class:`~recsys.model.artifact.ModelFolderError`), as the folder's other JSON files are: nothing is served.

    ``recsys.scoring.loading.load_scorer`` passes the result as ``Scorer(..., encoder=...)`` (None keeps the PyTorch
    encoder), whose cached vectors are kept by model version and encoder (``encoder.name``). Costs digests of the
    weights and of the served file (0.15 to 0.3 s for MiniLM) and an ONNX Runtime session.
    """
    path = Path(model_dir)
    if not precisions or metadata.architecture != BI or not path.is_dir():
        return None
    report = AgreementReport.load(path)
    if report is None:
        if (path / ONNX_DIR).is_dir():
            logger.info(
                "%s: no %s, so no export is served; run `%s`",
                path,
                AGREEMENT_FILE,
                EXPORT_COMMAND.format(model_dir=path),
            )
        return None
    if report.model_sha256 != model_digest(path) or report.max_length != metadata.max_length:
        logger.warning(
            "%s: the ONNX exports were checked on %s, not on this model (retrained since?): serving PyTorch; "
            "export again with `%s`",
            path,
            report.model_version,
            EXPORT_COMMAND.format(model_dir=path),
        )
        return None
    for precision in precisions:
        served = report.served((precision,))
        if served is None:
            continue
        file = path / served.file
        if not file.is_file() or content_digest([file]) != served.sha256:
            logger.warning(
                "%s: changed since its check; export again with `%s`", file, EXPORT_COMMAND.format(model_dir=path)
            )
            continue
        logger.info("serving %s's %s ONNX export (%s)", path, precision, served.agreement.summary())
        return OnnxEncoder(path, file.name, metadata.max_length, batch_size)
    return None
