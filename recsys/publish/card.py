"""The model card (README.md) of a saved model, built with huggingface_hub's ModelCard.

It reads what sits in the model folder: ``clicktune.json`` (always), ``metrics.json`` (the
training run) and ``evaluation.json`` (``python -m recsys.evaluation.evaluator --json``, the table against
the baselines). The card's ``model-index`` holds the model's metrics and, as metrics named
"... (<name> baseline)" with the baseline's name as their ``config``, the baselines' on the same
data; without ``evaluation.json`` it falls back to the eval-set metrics that training recorded.

The metadata follows the Hub's conventions for sentence-transformers models: ``library_name``,
the task and tags that sentence-transformers gives a bi- or cross-encoder, ``base_model`` only
where it is a Hub id, metric types such as ``ndcg_at_10``. A click log is no Hub dataset: the card
names it in its text and in the results' dataset name, and lists no ``datasets``, unless it is given
the Hub id of the data it was trained on.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from recsys.evaluation.evaluator import format_table
from recsys.evaluation.metrics import RANKING_METRICS, Metrics
from recsys.evaluation.results import Evaluation
from recsys.model.artifact import CARD_FILE, EVALUATION_FILE, ModelMetadata, is_hub_id, public_name
from recsys.model.text_lengths import TextLengths

LICENSE = "apache-2.0"  # the licence of the default base model, all-MiniLM-L6-v2
LIBRARY_NAME = "sentence-transformers"  # both architectures' folders load with it (recsys.model.architectures)
TASK_TYPE = "text-ranking"
TAGS = ("recommendation", "click-through-rate")  # beside ClickTune's, the library's and the architecture's
# The model-index needs a dataset type, which the Hub reads as a dataset id; sentence-transformers writes this
# for data that is no Hub dataset, and so does the card for a click log.
NO_HUB_DATASET = "unknown"
# How each criterion that training records in metrics["threshold"] reads in the card.
THRESHOLD_CRITERIA = {
    "youden_j": "maximise Youden's J (true-positive rate − false-positive rate; 0 for calling every row clicked)",
}

# How the card's code loads the model and ranks with it (ClickTune's own API).
CLICKTUNE_IMPORTS = (
    "import pandas as pd\n"
    "from recsys.scoring.loading import load_scorer  # ClickTune\n"
    "from recsys.scoring.ranking import rank_candidates\n"
)
TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A text-relevance ranker fine-tuned on click logs with ClickTune: given a context (a query, or a
short text of a user's recent interests) and an item's text, it scores how likely the user is to
click the item.

- **Architecture:** {{ architecture }}
- **Base model:** {{ base_model }}
- **Licence:** {{ license }}
- **Training data:** {{ training_data }}
- **Objective:** {{ objective }}
- **Final score:** {{ final_score }}
- **Decision threshold:** {{ threshold }}

## Evaluation

{{ evaluation }}

## Intended use and limitations

Ranking candidate items (news, products, documents) for a context, as one feature of a final
ranking. It learned from the clicks it was given: the population, language and item types of
that log, and the position and popularity biases in it. Click probabilities are Platt-calibrated
on the eval set and drift when the traffic does. Not for decisions about people.

## How to load it

With ClickTune, which adds the item priors and applies the calibration and threshold saved in `clicktune.json`:

```python
{{ load_code }}
items = pd.DataFrame({"item": ["warriors win game 7", "new iphone released"]})
rank_candidates(scorer, "nba playoffs | lakers trade", items)  # the ranked table: rank, score, click_probability
```

With sentence-transformers, for the text score alone:

```python
{{ sentence_transformers_code }}
```

With plain transformers: {{ plain_load }}
"""


def _describe_data(evaluation: Evaluation | None, metadata: ModelMetadata) -> str:
    selection = " (the eval set that training selected the model on, so the model's figures are optimistic)"
    if evaluation is None:
        return f"{_selected_on(metadata.training)}{selection}"
    where = (
        f"`{evaluation.data_file}`" if evaluation.data_file else "the click log given to `recsys.evaluation.evaluator`"
    )
    return where + (selection if evaluation.data_split == "validation" else "")


def _length_reason(training: dict) -> str:
    """Why the model reads texts up to its max_length: chosen from the train file's lengths, or given."""
    lengths = training.get("text_lengths")
    if not isinstance(lengths, dict) or training.get("max_length") != lengths.get("max_length"):
        return ""
    try:
        return f" (chosen from the train file: {TextLengths(**lengths).measured()})"
    except TypeError:  # a record edited by hand: the card says what it can
        return ""


def _selected_on(training: dict) -> str:
    """What training selected the model on: its eval file, or the share of its train file held out."""
    if training.get("eval_file"):
        return f"`{Path(training['eval_file']).name}`"
    return training.get("validation") or "`?`"


def describe_base_model(base_model: str) -> str:
    """The base model as the card names it: a Hub id as it is, a local folder by its name."""
    name = public_name(base_model)
    return f"`{name}`" + (" (a local folder)" if name != base_model else "")


def describe_final_score(metadata: ModelMetadata) -> str:
    """How the model's ranking score is made: the text logit, plus the learned blend of item priors."""
    if not metadata.blend:
        return "the text logit alone (no item priors)."
    weights = dict(metadata.blend)
    terms = " ".join(f"{w:+.3f} × {name}" for name, w in weights.items() if name != "text")
    return (
        f"{weights.pop('text', 1.0):.3f} × text logit {terms}, with the item priors of the training log "
        "(`item_priors.csv`) and the weights fitted on the eval set; an item the log never showed has all "
        "priors 0 and is ranked by its text alone."
    )


def describe_threshold(metadata: ModelMetadata) -> str:
    """The decision threshold, how it was chosen and how it does: precision and recall beside the base rate."""
    value = f"{metadata.threshold:.3f} on the click probability"
    summary = metadata.metrics.get("threshold")
    if summary is None:
        if metadata.fine_tuned:
            return f"{value}, chosen on the eval set (how it does there was not recorded)."
        return f"{value}, the default: a zero-shot model had no eval set to choose one on."
    criterion = THRESHOLD_CRITERIA.get(summary["criterion"], f"optimise `{summary['criterion']}`")
    return (
        f'{value}, chosen on the eval set ({summary["rows"]} rows) to {criterion}. There, "clicked" has '
        f"precision {summary['precision']:.3f} and recall {summary['recall']:.3f} (balanced accuracy "
        f"{summary['balanced_accuracy']:.3f}) and is said of {summary['predicted_positive_rate']:.1%} of rows; "
        f"base rate {summary['base_rate']:.1%} clicks, the precision of calling every row clicked."
    )


def _evaluation_markdown(evaluation: Evaluation | None, metadata: ModelMetadata, folder: str) -> str:
    if evaluation is not None:
        return (
            f"Per-group metrics (MIND protocol) on {_describe_data(evaluation, metadata)}, against the baselines, "
            "with bootstrap 95% intervals over groups:\n\n" + format_table(evaluation)
        )
    command = (
        f"python -m recsys.evaluation.evaluator --model {folder} --data HELD_OUT.csv --train-file TRAIN.csv "
        f"--json {folder}/{EVALUATION_FILE}"
    )
    eval_metrics = metadata.metrics.get("eval")
    if eval_metrics is None:
        return f"No evaluation was saved with this model. To add the table against the baselines, run\n`{command}`."
    rows = "\n".join(f"| {name} | {eval_metrics[name]:.3f} |" for name in RANKING_METRICS)
    return (
        f"Eval-set metrics recorded by training on {_describe_data(None, metadata)}; no baselines were "
        f"evaluated. To add the table against the baselines, run\n`{command}`.\n\n| metric | value |\n|---|---|\n"
        + rows
    )


def metric_type(name: str) -> str:
    """A metric's id in the Hub's style: ``ndcg@10`` as ``ndcg_at_10``; ``auc`` and ``mrr`` as they are."""
    return name.replace("@", "_at_")


def eval_results(
    evaluation: Evaluation | None, metadata: ModelMetadata, dataset_name: str, dataset_type: str = NO_HUB_DATASET
) -> list[EvalResult] | None:
    """The ``model-index`` entries: the model's ranking metrics, then each baseline's, on one data set.

    ``dataset_type`` is the data's Hub id where it is a Hub dataset; ``dataset_name`` names it for people.
    """
    if evaluation is not None:
        baselines = [(name, b.metrics) for name, b in evaluation.baselines.items()]
        split, scorers = evaluation.data_split, [(None, evaluation.model), *baselines]
    elif metadata.metrics.get("eval") is not None:
        split, scorers = "validation", [(None, Metrics.from_dict(metadata.metrics["eval"]))]
    else:
        return None
    return [
        EvalResult(
            task_type=TASK_TYPE,
            task_name="Click ranking",
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_split=split,
            metric_type=metric_type(name),
            metric_name=name if baseline is None else f"{name} ({baseline} baseline)",
            metric_config=baseline,
            metric_value=round(metrics.values[name], 4),
        )
        for baseline, metrics in scorers
        for name in RANKING_METRICS
    ]


def _dataset_name(evaluation: Evaluation | None, metadata: ModelMetadata) -> str:
    """The data the card's metrics are on, for people: the click log's file, and the folder of the training log
    (``bing_news`` for the bundled sample)."""
    train_file = metadata.training.get("train_file")
    data_file = evaluation.data_file if evaluation is not None else Path(metadata.training.get("eval_file", "")).name
    source = f"{Path(train_file).parent.name} click log" if train_file else "Click log"
    return f"{source} ({data_file})" if data_file else source


def describe_training(metadata: ModelMetadata) -> tuple[str, str]:
    """The card's "training data" and "objective" lines, from the run's settings as ``clicktune.json`` saved them."""
    training = metadata.training
    if not training:
        return "none (zero-shot)", "none"
    training_data = (
        f"`{Path(training['train_file']).name}`, {training.get('train_rows', '?')} rows (one row per item shown, "
        f"clicked or not); model selected on {_selected_on(training)}"
    )
    in_batch = training.get("in_batch_negatives")  # as the run trained: only where the loss and model use them
    objective = (
        f"{training.get('loss', '?')} loss{' with in-batch negatives' if in_batch else ''}, best after "
        f"{training.get('best_step', '?')} steps of {training.get('batch_size', '?')}, learning rate "
        f"{training.get('learning_rate', '?')}; texts read up to {metadata.max_length} tokens"
        f"{_length_reason(training)}"
    )
    return training_data, objective


def clicktune_load_code(repo_id: str | None, folder: str) -> str:
    """The card's code that loads the model with ClickTune: from the Hub where published, else from a folder."""
    if repo_id:
        return (
            f"from huggingface_hub import snapshot_download\n{CLICKTUNE_IMPORTS}\n"
            f'scorer = load_scorer(snapshot_download("{repo_id}"))'
        )
    return f'{CLICKTUNE_IMPORTS}\nscorer = load_scorer("{folder}")'


def build_model_card(
    model_dir: str | Path,
    model_name: str | None = None,
    dataset: str | None = None,
    repo_id: str | None = None,
    license: str = LICENSE,
) -> ModelCard:
    """The card of the model in ``model_dir``; ``repo_id`` (OWNER/NAME) is where it is published, if anywhere.

    ``dataset`` is the Hub id of the data the model was trained and evaluated on, where it is a Hub dataset; a
    name that is no Hub id only names the data. The card is published with the model, so it names files and
    folders, never a path of this machine.
    """
    model_dir = Path(model_dir)
    metadata = ModelMetadata.load(model_dir) or ModelMetadata()
    evaluation = Evaluation.load(model_dir / EVALUATION_FILE)
    from recsys.model.architectures import model_class  # imported here: --help loads no torch

    architecture = model_class(metadata.architecture)
    name = model_name or (repo_id.split("/")[-1] if repo_id else model_dir.name)
    folder = f"path/to/{name}"  # where a reader keeps the folder: not where it is on this machine
    hub_dataset = dataset if is_hub_id(dataset) else None
    card_data = ModelCardData(
        model_name=name,
        base_model=metadata.base_model if is_hub_id(metadata.base_model) else None,
        license=license,
        language="en",
        library_name=LIBRARY_NAME,
        pipeline_tag=architecture.pipeline_tag,
        tags=list(dict.fromkeys(("clicktune", LIBRARY_NAME, *architecture.hub_tags, architecture.title, *TAGS))),
        datasets=[hub_dataset] if hub_dataset else None,
        eval_results=eval_results(
            evaluation, metadata, dataset or _dataset_name(evaluation, metadata), hub_dataset or NO_HUB_DATASET
        ),
    )
    training_data, objective = describe_training(metadata)
    model_ref = repo_id or folder
    sentence_transformers_code = architecture.sentence_transformers_load.format(
        model=model_ref,
        scale=f"{metadata.scale:.6g}",
        bias=f"{'-' if metadata.bias < 0 else '+'} {abs(metadata.bias):.6g}",
    )
    load_code = clicktune_load_code(repo_id, folder)
    return ModelCard.from_template(
        card_data,
        template_str=TEMPLATE,
        model_name=name,
        architecture=architecture.title,
        base_model=describe_base_model(metadata.base_model),
        license=license,
        training_data=training_data,
        objective=objective,
        final_score=describe_final_score(metadata),
        threshold=describe_threshold(metadata),
        evaluation=_evaluation_markdown(evaluation, metadata, folder),
        load_code=load_code,
        sentence_transformers_code=sentence_transformers_code,
        plain_load=architecture.plain_load,
    )


def write_model_card(model_dir: str | Path, **kwargs: str) -> Path:
    path = Path(model_dir) / CARD_FILE
    build_model_card(model_dir, **kwargs).save(path)
    return path
