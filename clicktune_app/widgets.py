"""Gradio components whose bad input, from the page or a script, gets a clear error instead of Gradio's traceback."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
from gradio.components.dataframe import DataframeData
from pydantic import ConfigDict, ValidationError


def number_input(box: gr.Number) -> gr.Number:
    """``box``, whose input from the page or a script must be a finite number: anything else gets a clear error
    (Gradio's own preprocessing compares ``"abc"`` with the minimum, a TypeError that a script sees as a
    generic 'upstream exception'). The check wraps the instance's preprocessing: a subclass of a Gradio
    component would make Gradio write a ``.pyi`` file beside this module whenever it is imported."""
    preprocess = box.preprocess

    def checked(payload: Any) -> float | int | None:
        is_number = isinstance(payload, int | float) and not isinstance(payload, bool)
        if payload is not None and not (is_number and np.isfinite(payload)):
            raise gr.Error(f"{box.label} must be a number, not {payload!r:.40}.", title="Cannot read that")
        return preprocess(payload)

    box.preprocess = checked
    return box


class _TableData(DataframeData):
    """Gradio's table payload, whose validation failure is a clear error rather than a pydantic traceback."""

    model_config = ConfigDict(title=DataframeData.__name__)  # the API's schema is Gradio's own

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> _TableData:
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError:
            raise gr.Error(
                f"A table must be {{'headers': [...], 'data': [[...], ...]}}, not {obj!r:.60}.",
                title="Cannot read that",
            ) from None


def table_input(table: gr.Dataframe) -> gr.Dataframe:
    """``table``, whose payload from the page or a script must be a table: anything else gets a clear error, and
    a missing table (``null``) reaches its handler as None, which the handler refuses in words (Gradio's own
    preprocessing fails on both with a traceback). Wrapped per instance, as :func:`number_input` is."""
    preprocess = table.preprocess
    table.data_model = _TableData
    table.preprocess = lambda payload: None if payload is None else preprocess(payload)
    return table
