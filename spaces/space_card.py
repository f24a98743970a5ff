"""The Space's README (front matter and what the bundle holds), for ``spaces/build.py``; spaces/ is no package."""

from __future__ import annotations

from huggingface_hub import SpaceCard, SpaceCardData
from pins import gradio_version

PYTHON_VERSION = "3.11"
LICENSE = "apache-2.0"

README = """---
{{ card_data }}
---

# {{ title }}

Rank candidate items for a context (a query, or a short text of a user's interests) with a
text-relevance model fine-tuned on click logs by ClickTune.

- **Model:** {{ model }}
- **Built by** `python spaces/build.py` in the ClickTune repository: `app.py`, `clicktune_app/` and
  `recsys/` are copies of the repository's files.
- **Space variables**, set by that command: {{ variables }}.
- **requirements.txt** pins, from the repository's `requirements.txt`, the packages that `app.py`,
  `clicktune_app/` and `recsys/` import. torch comes from the PyTorch CPU index (`--extra-index-url`), so the
  Space does not download CUDA wheels it cannot use on CPU hardware.
- **Data:** the examples, and the held-out and training splits that the Model tab evaluates with, of a
  Bing News click sample (MIT licence, see `data/bing_news/raw/LICENSE`); examples drawn from MovieLens
  ml-latest-small (GroupLens: research use only, no commercial use; see `data/movielens/raw/README.txt`).
"""


def space_card(
    pins: dict[str, str],
    title: str,
    models: list[str],
    model_line: str,
    hub_model_id: str | None,
    variables: dict[str, str],
    app_file: str,
) -> SpaceCard:
    """The Space's README: its front matter (sdk gradio at the pinned version) and what the bundle holds."""
    data = SpaceCardData(
        title=title,
        sdk="gradio",
        sdk_version=gradio_version(pins),
        python_version=PYTHON_VERSION,
        app_file=app_file,
        license=LICENSE,
        models=models,
        emoji="🎯",
        colorFrom="indigo",
        colorTo="blue",
        pinned=False,
        short_description="Rank items for a context with a click-tuned model",
        # Download the model while the Space builds, not when the first visitor arrives.
        preload_from_hub=[hub_model_id] if hub_model_id else None,
    )
    listed = ", ".join(f"`{key}={value}`" for key, value in variables.items())
    return SpaceCard.from_template(data, template_str=README, title=title, model=model_line, variables=listed)
