"""The model card (README.md) of a saved model, built with huggingface_hub's ModelCard.

It reads what sits in the model folder: ``clicktune.json`` (always), ``metrics.json`` (the
training run) and ``evaluation.json`` (``python -m recsys.evaluate --json``, the held-out table
against the baselines, which becomes the card's ``model-index``).
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from recsys.metrics import RANKING_METRICS
from recsys.models import DEFAULT_MODEL, ModelMetadata

EVALUATION_FILE = "evaluation.json"
TRAINING_METRICS_FILE = "metrics.json"

TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A text-relevance ranker fine-tuned on click logs with [ClickTune](https://github.com/): given a
context (a query, or a short text of a user's recent interests) and an item's text, it scores how
likely the user is to click the item.

- **Architecture:** {{ architecture }}
- **Base model:** `{{ base_model }}`
- **Training data:** {{ training_data }}
- **Objective:** {{ objective }}
- **Decision threshold** (click probability, best F1 on the eval set): {{ threshold }}

## Evaluation

{{ evaluation }}

## Intended use and limitations

Ranking candidate items (news, products, documents) for a context, as one feature of a final
ranking. It learned from the clicks it was given: the population, language and item types of
that log, and the position and popularity biases in it. Click probabilities are Platt-calibrated
on the eval set and drift when the traffic does. Not for decisions about people.

## How to load it

```python
from recsys.models import load_scorer  # ClickTune

scorer = load_scorer("{{ model_dir }}")
scorer.rank("nba playoffs | lakers trade", ["warriors win game 7", "new iphone released"])
```

With plain transformers: {{ plain_load }}
"""


def _evaluation_markdown(evaluation: dict | None) -> str:
    if evaluation is None:
        return "No held-out evaluation was saved with this model; see `metrics.json` for the eval-set history."
    from recsys.evaluate import format_table  # the evaluator owns the table's layout

    return (
        "Per-group metrics (MIND protocol) on held-out users, with bootstrap 95% intervals over groups:\n\n"
        + format_table(evaluation)
    )


def _eval_results(evaluation: dict | None, dataset: str) -> list[EvalResult] | None:
    if evaluation is None:
        return None
    return [
        EvalResult(
            task_type="text-ranking",
            dataset_type=dataset,
            dataset_name=dataset,
            metric_type=name,
            metric_name=name,
            metric_value=round(float(evaluation[name]), 4),
        )
        for name in RANKING_METRICS
    ]


def build_model_card(model_dir: str | Path, model_name: str | None = None, dataset: str = "bing-news-dkn") -> ModelCard:
    model_dir = Path(model_dir)
    metadata = ModelMetadata.load(model_dir) or ModelMetadata()
    evaluation_path = model_dir / EVALUATION_FILE
    evaluation = json.loads(evaluation_path.read_text()) if evaluation_path.is_file() else None
    training = metadata.training
    name = model_name or model_dir.name
    base = metadata.base_model if metadata.base_model != DEFAULT_MODEL else DEFAULT_MODEL
    card_data = ModelCardData(
        model_name=name,
        base_model=base,
        license="apache-2.0",
        language="en",
        library_name="transformers",
        pipeline_tag="text-ranking" if metadata.architecture == "cross" else "sentence-similarity",
        tags=["clicktune", "recommendation", "click-through-rate", f"{metadata.architecture}-encoder"],
        eval_results=_eval_results(evaluation, dataset),
    )
    rows = training.get("train_rows")
    training_data = f"`{Path(training['train_file']).name}`, {rows} rows" if training else "none (zero-shot)"
    objective = (
        f"{training.get('loss', '?')} loss, {training.get('best_step', '?')} steps of "
        f"{training.get('batch_size', '?')}, learning rate {training.get('learning_rate', '?')}"
        if training
        else "none"
    )
    plain = (
        "`AutoModel.from_pretrained(dir)`, mean-pool and normalise; logit = scale * cosine + bias "
        "with scale and bias from `clicktune.json`."
        if metadata.architecture == "bi"
        else "`AutoModelForSequenceClassification.from_pretrained(dir)`; one logit per (query, item) pair."
    )
    return ModelCard.from_template(
        card_data,
        template_str=TEMPLATE,
        model_name=name,
        architecture="bi-encoder" if metadata.architecture == "bi" else "cross-encoder",
        base_model=metadata.base_model,
        training_data=training_data,
        objective=objective,
        threshold=f"{metadata.threshold:.3f}",
        evaluation=_evaluation_markdown(evaluation),
        model_dir=str(model_dir),
        plain_load=plain,
    )


def write_model_card(model_dir: str | Path, **kwargs: str) -> Path:
    path = Path(model_dir) / "README.md"
    build_model_card(model_dir, **kwargs).save(path)
    return path
