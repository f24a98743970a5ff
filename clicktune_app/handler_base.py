"""What every tab's handlers share: the served models (reloaded when a promotion replaces them), the feedback store,
the cached evaluations, the limits, and the rule that the library's user errors reach the page as ``gr.Error``;
anything else is a bug and stays one."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gradio as gr

from recsys.defaults import BUNDLED_LOGS, BundledLog
from recsys.errors import ContractError, UserError
from recsys.feedback.store import FeedbackStore
from recsys.serving.downloads import Downloads
from recsys.serving.evaluations import Evaluations
from recsys.serving.service import LiveModels, ServedModels
from recsys.serving.settings import Limits


def user_errors(handler: Callable) -> Callable:
    """Show the library's user errors (bad input, a limit) as a Gradio error; anything else stays a bug."""

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except ContractError as err:
            raise gr.Error(str(err), title="Cannot read that") from err
        except UserError as err:
            raise gr.Error(str(err), title="Cannot do that") from err

    return wrapped


class HandlerBase:
    """The state of one served log's handlers; each tab's handlers (``*_handlers``) add their methods to it."""

    def __init__(
        self,
        models: ServedModels,
        store: FeedbackStore,
        evaluations: Evaluations,
        limits: Limits,
        *,
        feedback_browsing: bool = False,
        log: BundledLog = BUNDLED_LOGS[0],
        on_reload: Callable[[ServedModels], None] | None = None,
    ) -> None:
        self.store, self.evaluations, self.limits = store, evaluations, limits
        # The served folder's model, reloaded when a promotion or rollback replaces it; on_reload hears of it too.
        self.live = LiveModels(models, on_reload=self._reloaded)
        self.on_reload = on_reload
        self.feedback_browsing = feedback_browsing  # visitors may read and download the stored feedback
        self.log = log  # the click log the model serves: its held-out files and the words for its items
        self.downloads = Downloads()

    @property
    def models(self) -> ServedModels:
        """The models loaded now; a request takes them once, from :meth:`serving`."""
        return self.live.models

    @models.setter
    def models(self, models: ServedModels) -> None:
        self.live.models = models

    def serving(self) -> ServedModels:
        """The models to serve one request with, reloaded first where the served folder holds a new model."""
        return self.live.current()

    def _reloaded(self, models: ServedModels) -> None:
        self.evaluations.models = models  # evaluations are cached per model version
        if self.on_reload is not None:
            self.on_reload(models)
