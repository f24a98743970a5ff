"""Whether an ONNX export ranks as the model does, and ``onnx/agreement.json``, the report that records it.

The ONNX files of a bi-encoder folder are its ``onnx/`` folder's (sentence-transformers' folder convention):
``model.onnx`` (fp32) and ``model_qint8.onnx`` (int8 weights). :func:`agreement` compares the text logits of the
PyTorch model and of an export on a click log: the Spearman correlation over all rows, and the share of groups whose
top 10 holds the same items in the same order. An export passes at a Spearman of at least 0.99 with the top 10
unchanged in at least 95% of groups. :class:`AgreementReport` records the result for this model (a digest of
``clicktune.json`` and the weights, ``recsys.model.artifact.model_digest``) and these files (their
``recsys.model.artifact.content_digest``), so that a retrained model or a new export is not served on an old check;
it is read back strictly, naming only the folder's own files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.atomic_files import write_text_atomic
from recsys.model.artifact import ModelFolderError, read_json

ONNX_DIR = "onnx"  # sentence-transformers' folder for a model's ONNX files
FP32, INT8 = "fp32", "int8"
ONNX_FILES = {INT8: "model_qint8.onnx", FP32: "model.onnx"}  # by precision, in the order serving prefers them
AGREEMENT_FILE = "agreement.json"

MIN_SPEARMAN = 0.99
MIN_TOP_UNCHANGED = 0.95
TOP = 10

# What a message tells people to run to write (or write again) a folder's exports and their report.
EXPORT_COMMAND = "python -m recsys.scoring.onnx_export export --model {model_dir}"


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
    """The positions of the ``top`` highest scores, high to low; ties in input order, as ``recsys.scoring.ranking``
    ranks."""
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
    sha256: str  # the file's content_digest (recsys.model.artifact): agreement.json vouches for these bytes only
    agreement: Agreement


@dataclass(frozen=True)
class AgreementReport:
    """``onnx/agreement.json``: which exports of which model rank a click log as the model does."""

    model_version: str
    model_sha256: str  # of clicktune.json and the weights (recsys.model.artifact.model_digest)
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
        again = f"run `{EXPORT_COMMAND.format(model_dir=model_dir)}` again"
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
