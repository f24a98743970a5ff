"""Every training setting, with its default and its help (``field`` metadata, as the Hugging Face example scripts
keep theirs); the command line is built from this dataclass."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace

from recsys.defaults import FEEDBACK_DIR, MODEL_DIR, TRAIN_FILE, VALID_FILE, Env
from recsys.errors import UserError
from recsys.model.artifact import ARCHITECTURES, BI, DEFAULT_MODEL

LOSSES = ("pointwise", "listwise")
POSITION_WEIGHTS = ("none", "ips")  # ips: inverse propensity weights by the position each click was shown at
PRECISIONS = ("no", "bf16", "fp16")  # Accelerate's mixed_precision; fp16 needs a GPU
# Accelerate's trackers (accelerate.utils.LoggerType), written out: --help loads no accelerate; a test checks them.
REPORT_TO = (
    "none",
    "all",
    "aim",
    "tensorboard",
    "wandb",
    "trackio",
    "comet_ml",
    "mlflow",
    "clearml",
    "dvclive",
    "swanlab",
)
LORA_LEARNING_RATE, FULL_LEARNING_RATE = 5e-4, 2e-5


@dataclass
class TrainConfig:
    # data
    train_file: str = field(
        default=str(TRAIN_FILE),
        metadata={"help": "click log to learn from (the bundled Bing News sample unless given)"},
    )
    eval_file: str = field(
        default="",
        metadata={
            "help": (
                "click log for model selection, early stopping, the threshold, calibration and the blend; none: a "
                "seeded --holdout share of the train file's users (groups where it has no user column), or with the "
                "bundled train file the bundled valid.csv"
            )
        },
    )
    holdout: float = field(
        default=0.15,
        metadata={"help": "the share of the train file's users held out for validation, where no --eval-file"},
    )
    output_dir: str = field(
        default=str(MODEL_DIR),
        metadata={"help": "the saved model (the app's default); checkpoints/ and runs/ go inside it"},
    )
    # model
    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={"help": "base model: a local folder, or a Hub id where a hub is reachable"},
    )
    architecture: str = field(
        default=BI,
        metadata={"help": "bi: embeddings + cosine; cross: one logit over the (query, item) pair"},
    )
    max_length: int = field(
        default=0,
        metadata={"help": "tokens per text (bi) or per pair (cross); 0: the train file's 95th percentile, at most 256"},
    )
    freeze_layers: int = field(
        default=0,
        metadata={"help": "freeze the embeddings and the lowest N encoder layers; 0 trains everything"},
    )
    lora_rank: int = field(
        default=8,
        metadata={
            "help": "bi-encoder: train low-rank adapters (peft LoRA) of this rank instead of the weights; 0: all"
        },
    )
    # objective
    loss: str = field(
        default="listwise",
        metadata={"help": "pointwise: BCE per row; listwise: softmax over a click and its group's non-clicks"},
    )
    negatives: int = field(default=4, metadata={"help": "listwise: non-clicks from the same group beside each click"})
    in_batch_negatives: bool = field(
        default=False,
        metadata={"help": "listwise bi-encoder only: also rank each click against the batch's other items"},
    )
    scale: float = field(
        default=20.0,
        metadata={"help": "bi-encoder: cosine scale (inverse temperature) when starting from a base model"},
    )
    scale_learning_rate: float = field(
        default=0.0,
        metadata={"help": "bi-encoder: learning rate of the scale and bias; 0 keeps them fixed"},
    )
    wise_alpha: float = field(
        default=1.0,
        metadata={"help": "WiSE-FT: evaluate and save alpha * fine-tuned + (1 - alpha) * base weights"},
    )
    position_weights: str = field(
        default="none",
        metadata={"help": "ips: weight each click by 1/propensity of its position (needs a position column)"},
    )
    propensity_eta: float = field(
        default=1.0,
        metadata={"help": "ips: the propensity of position r is 1/r**eta, unless --propensity-file"},
    )
    propensity_file: str = field(
        default="",
        metadata={"help": "ips: a CSV or JSON of position -> propensity (as recsys.feedback.propensity writes it)"},
    )
    propensity_clip: float = field(
        default=10.0,
        metadata={"help": "ips: the largest weight a click gets (1/propensity is clipped to it)"},
    )
    item_priors: bool = field(
        default=True,
        metadata={"help": "add the items' click rates in the train log to the text score, blend fitted on eval"},
    )
    # optimisation
    learning_rate: float = field(
        default=0.0,
        metadata={"help": "0: 5e-4 with LoRA adapters, 2e-5 for full fine-tuning (both chosen on validation)"},
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW's weight decay"})
    warmup_ratio: float = field(
        default=0.1,
        metadata={"help": "fraction of an epoch's steps (of --max-steps where shorter) spent warming up"},
    )
    batch_size: int = field(default=16, metadata={"help": "rows (pointwise) or lists (listwise) per step and process"})
    gradient_accumulation_steps: int = field(
        default=1,
        metadata={"help": "batches whose gradients add up to one optimiser step"},
    )
    mixed_precision: str = field(
        default="no",
        metadata={"help": "bf16: Accelerate's bfloat16 autocast (CPUs with AVX512-BF16 or AMX run it faster)"},
    )
    num_epochs: int = field(
        default=10,
        metadata={
            "help": (
                "the most passes over the train file, where --max-steps is -1 (early stopping and the time budget end "
                "most runs sooner)"
            )
        },
    )
    max_steps: int = field(
        default=-1,
        metadata={"help": "optimiser steps to train (overrides num_epochs); -1: epochs, until early stopping"},
    )
    patience: int = field(
        default=2,
        metadata={"help": "stop after this many evaluations without a better eval AUC; 0 never stops early"},
    )
    time_budget: float = field(
        default=30.0,
        metadata={"help": "minutes the run may take (evaluations included); it then keeps its best; 0: none"},
    )
    eval_steps: int = field(
        default=25,
        metadata={"help": "also evaluate every N steps; 0 evaluates at the end of each epoch only"},
    )
    eval_batch_size: int = field(default=64, metadata={"help": "rows per batch when scoring the eval file"})
    seed: int = field(default=42, metadata={"help": "seeds the data order, the negatives drawn and any new weights"})
    # bookkeeping
    resume: bool = field(
        default=False,
        metadata={"help": "continue from the newest checkpoint in output_dir/checkpoints"},
    )
    keep_checkpoints: bool = field(
        default=False,
        metadata={"help": "keep output_dir/checkpoints after the run, to --resume it later; else deleted"},
    )
    report_to: str = field(default="tensorboard", metadata={"help": 'an Accelerate tracker name, or "none"'})
    push_to_hub: bool = field(
        default=False,
        metadata={"help": "publish the saved model to the Hub (needs a network and HF_TOKEN)"},
    )
    hub_model_id: str = field(default="", metadata={"help": "OWNER/NAME on the Hub, for --push-to-hub"})
    hub_private: bool = field(
        default=False,
        metadata={"help": "create the Hub repo private, with --push-to-hub (an existing repo keeps its own)"},
    )

    def validate(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise UserError(f"--architecture must be one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}")
        if self.loss not in LOSSES:
            raise UserError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for name in ("batch_size", "gradient_accumulation_steps", "eval_batch_size", "negatives"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1")
        if self.max_length < 0:
            raise UserError("--max-length must be a number of tokens, or 0 to choose it from the train file")
        if self.num_epochs < 1 and self.max_steps < 1:
            raise UserError("give --num-epochs or --max-steps of at least 1")
        if not (self.time_budget >= 0 and math.isfinite(self.time_budget)):
            raise UserError(f"--time-budget is minutes, 0 or more (0: none), got {self.time_budget}")
        if not 0.0 < self.wise_alpha <= 1.0:
            raise UserError(f"--wise-alpha must be in (0, 1], got {self.wise_alpha}")
        if self.lora_rank < 0:
            raise UserError("--lora-rank must be 0 or more")
        if self.learning_rate < 0:
            raise UserError("--learning-rate must be positive, or 0 for the default")
        if self.uses_lora and self.wise_alpha < 1:
            raise UserError("--wise-alpha interpolates whole weights: give --lora-rank 0 with it")
        if self.freeze_layers < 0:
            raise UserError("--freeze-layers must be 0 or more")
        if not 0.0 < self.holdout < 1.0:
            raise UserError(f"--holdout must be between 0 and 1 (a share of the users), got {self.holdout}")
        if not (self.propensity_eta >= 0 and math.isfinite(self.propensity_eta)):
            raise UserError(f"--propensity-eta must be 0 or more, got {self.propensity_eta}")
        if not self.propensity_clip >= 1:
            raise UserError(f"--propensity-clip must be 1 or more (the largest weight), got {self.propensity_clip}")
        if self.propensity_file and self.position_weights != "ips":
            raise UserError("--propensity-file is read only with --position-weights ips; give both, or neither")
        if self.push_to_hub and not self.hub_model_id:
            raise UserError("--push-to-hub needs --hub-model-id OWNER/NAME")

    def resolved(self) -> TrainConfig:
        """The settings a run trains with, as both saved files record them (``clicktune.json``, ``metrics.json``):
        ``learning_rate`` 0 becomes its default, and ``in_batch_negatives`` holds only where it acts (a listwise
        loss, a model that supports them), so that a reader of the files never derives either again."""
        from recsys.model.architectures import model_class  # imported here: --help loads no torch

        default_rate = LORA_LEARNING_RATE if self.uses_lora else FULL_LEARNING_RATE
        supported = self.loss == "listwise" and model_class(self.architecture).supports_in_batch_negatives
        return replace(
            self,
            learning_rate=self.learning_rate or default_rate,
            in_batch_negatives=self.in_batch_negatives and supported,
        )

    @property
    def uses_lora(self) -> bool:
        """LoRA adapters are for models that support them; a cross-encoder's new head trains with all its weights."""
        from recsys.model.architectures import model_class  # imported here: --help loads no torch

        return self.lora_rank > 0 and model_class(self.architecture).supports_adapters

    def inputs(self) -> list[str]:
        """What the run reads and must never write into: the click logs, the model it starts from (where that is a
        folder here), and the app's feedback folder (``$FEEDBACK_DIR`` and the default one)."""
        feedback = dict.fromkeys([str(FEEDBACK_DIR), os.environ.get(Env.FEEDBACK_DIR) or str(FEEDBACK_DIR)])
        start = [self.model_name_or_path] if os.path.exists(self.model_name_or_path) else []  # else a Hub id
        files = (self.train_file, self.validation_file, self.propensity_file)
        return [file for file in files if file] + [*start, *feedback]

    @property
    def bundled(self) -> bool:
        """Whether the run learns from the bundled Bing News sample (no --train-file of the user's own)."""
        return os.path.abspath(self.train_file) == os.path.abspath(TRAIN_FILE)

    @property
    def validation_file(self) -> str:
        """The click log that validation reads: --eval-file, the bundled valid.csv with the bundled train file, or
        none (a share of the train file is held out)."""
        return self.eval_file or (str(VALID_FILE) if self.bundled else "")

    def to_dict(self) -> dict:
        return asdict(self)


# Hugging Face's names for settings where ours differ, and where they come from; accepted beside ours, so that
# flags copied from their examples work here.
HF_NAMES = {
    "eval_file": ("--validation-file", "the example scripts' run_glue.py"),
    "max_length": ("--max-seq-length", "the example scripts' run_glue.py"),
    "batch_size": ("--per-device-train-batch-size", "Trainer's TrainingArguments"),
    "eval_batch_size": ("--per-device-eval-batch-size", "Trainer's TrainingArguments"),
    "num_epochs": ("--num-train-epochs", "Trainer's TrainingArguments"),
    "hub_private": ("--hub-private-repo", "Trainer's TrainingArguments"),
}


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's default after its help, as Trainer's ``--help`` shows them; an empty one reads "none"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default == "":
            return f"{action.help} (default: none)"
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m finetune.train",
        description="Fine-tune a text-relevance model on click logs.",
        epilog="Hugging Face Trainer's names are ours where a setting has one (--learning-rate, --weight-decay, "
        "--warmup-ratio, --gradient-accumulation-steps, --max-steps, --eval-steps, --seed, --report-to, "
        "--push-to-hub, --hub-model-id); where ours differ, theirs are accepted too (listed above). --patience is "
        "EarlyStoppingCallback's early_stopping_patience, and --resume is --resume-from-checkpoint without a path "
        "(the newest checkpoint in --output-dir). Installed as a package (pip install .), the same command is "
        "clicktune-train.",
        formatter_class=DefaultsHelpFormatter,
    )
    choices = {
        "architecture": ARCHITECTURES,
        "loss": LOSSES,
        "report_to": REPORT_TO,
        "mixed_precision": PRECISIONS,
        "position_weights": POSITION_WEIGHTS,
    }  # listed by --help
    for setting in fields(TrainConfig):
        flag = "--" + setting.name.replace("_", "-")
        help_text = setting.metadata["help"].replace("%", "%%")  # argparse expands %(...)s in help
        if setting.type in ("bool", bool):
            options = {"action": argparse.BooleanOptionalAction}
        else:
            kind = {"int": int, "float": float, "str": str}[str(setting.type)]
            options = {"type": kind, "choices": choices.get(setting.name)}
        parser.add_argument(flag, default=setting.default, help=help_text, **options)
        if setting.name in HF_NAMES:  # its own line in --help, and errors name our flag
            hf_flag, where = HF_NAMES[setting.name]
            hf_help = f"{flag} by its Hugging Face name, from {where}"
            parser.add_argument(hf_flag, dest=setting.name, default=argparse.SUPPRESS, help=hf_help, **options)
    return parser


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    args = build_parser().parse_args(argv)
    config = TrainConfig(**vars(args))
    config.validate()
    return config
