"""The app's event handlers for one served log, as plain methods so that tests can call them without a browser:
one class per tab, joined here."""

from __future__ import annotations

from clicktune_app.classify_compare_handlers import ClassifyCompareHandlers
from clicktune_app.feedback_handlers import FeedbackHandlers
from clicktune_app.model_handlers import ModelHandlers
from clicktune_app.rank_handlers import RankHandlers


class Handlers(RankHandlers, ClassifyCompareHandlers, ModelHandlers, FeedbackHandlers):
    """Every tab's handlers over one served log's state (:class:`~clicktune_app.handler_base.HandlerBase`)."""
