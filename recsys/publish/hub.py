"""Publish a saved model folder to the Hugging Face Hub.

    python -m recsys.publish.hub plan --model-dir models/clicktune
    python -m recsys.publish.hub push --model-dir models/clicktune --repo-id OWNER/NAME [--private]
                              [--eval-file HELD_OUT.csv --train-file TRAIN.csv]

What goes up is decided by ``recsys.publish.upload_plan.plan_upload``, a pure function of the folder's file names:
the weights (safetensors), config, tokenizer, ``clicktune.json``, ``metrics.json``, ``evaluation.json`` and the model
card. Checkpoints, TensorBoard runs, caches, pickles, feedback databases and anything that looks like a secret stay
home, each with the reason. ClickTune's JSON files go up without the paths of this machine that training recorded in
them.

Only the folder's own regular files go up: a link (to a file or a folder, wherever it points) is
never followed. ``plan`` lists each link as left out, and ``push`` refuses a folder holding a link
that is no clutter (one in ``checkpoints/`` or ``runs/``, say, stays home as those do), before it
writes anything there: the card and ``evaluation.json`` would be written through a link.

Before uploading, :func:`push_model` evaluates the model against the baselines where no current
``evaluation.json`` exists (on ``--eval-file``, else on the eval file that training used) and
rewrites the model card, so that the card's ``model-index`` carries that table.

The token comes from ``HF_TOKEN`` or the huggingface_hub login (``hf auth login``) only; nothing
here writes it anywhere, and a folder holding its value is refused before any upload.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, get_token

from recsys.cli import run_cli, say
from recsys.data.contract import read_clicks
from recsys.errors import UserError
from recsys.evaluation.evaluator import evaluate
from recsys.evaluation.results import Evaluation
from recsys.model.artifact import EVALUATION_FILE, ModelMetadata, is_hub_id, model_digest
from recsys.model.checks import check_model_folder
from recsys.publish.card import write_model_card
from recsys.publish.upload_plan import plan_folder, published_files, refuse_links
from recsys.scoring.loading import load_scorer

logger = logging.getLogger(__name__)


def resolve_token(token: str | None = None) -> str:
    """The token to publish with: the one given, else ``HF_TOKEN``, else the huggingface_hub login."""
    token = token or get_token()
    if not token:
        raise UserError(
            "no Hugging Face token: set HF_TOKEN (a write token from https://huggingface.co/settings/tokens) "
            "or run `hf auth login` once"
        )
    return token


def files_containing(folder: str | Path, paths: Iterable[str], secret: str) -> list[str]:
    """The files among ``paths`` whose bytes contain ``secret`` (a token must never be published)."""
    needle = secret.encode()
    return [path for path in paths if needle in (Path(folder) / path).read_bytes()]


def refuse_token_leaks(folder: str | Path, paths: Iterable[str], token: str) -> None:
    leaks = files_containing(folder, paths, token)
    if leaks:
        raise UserError(
            f"{folder}: {', '.join(leaks)} contain(s) your Hugging Face token; remove it from those files "
            "and revoke it at https://huggingface.co/settings/tokens before publishing"
        )


def _evaluation_is_current(model_dir: Path) -> bool:
    """``evaluation.json`` is of the model in the folder now: it records the folder's ``model_digest``."""
    evaluation = Evaluation.load(model_dir / EVALUATION_FILE)
    return evaluation is not None and evaluation.model_sha256 == model_digest(model_dir)


def write_evaluation(
    model_dir: Path, eval_file: str | Path, train_file: str | Path | None = None, split: str | None = None
) -> Evaluation:
    """Evaluate the model and the baselines on ``eval_file``; save the result as ``evaluation.json``.

    ``split`` names what the file is to this model (``validation`` for the file training selected on).
    """
    logger.info("evaluating %s against the baselines on %s", model_dir, eval_file)
    train = read_clicks(train_file) if train_file else None
    evaluation = evaluate(load_scorer(str(model_dir)), read_clicks(eval_file), train, data_file=Path(eval_file).name)
    evaluation.data_split, evaluation.model_sha256 = split, model_digest(model_dir)
    evaluation.save(model_dir / EVALUATION_FILE)
    return evaluation


def refresh_evaluation(
    model_dir: Path, eval_file: str | Path | None = None, train_file: str | Path | None = None
) -> None:
    """Write ``evaluation.json`` on ``eval_file``, or, where none is given, on training's eval file when the
    saved one is missing or of another model (it records another ``model_digest``: a model trained since)."""
    split = None
    if eval_file is None:
        if _evaluation_is_current(model_dir):
            return
        training = (ModelMetadata.load(model_dir) or ModelMetadata()).training
        eval_file, train_file = training.get("eval_file"), training.get("train_file")
        if not eval_file or not Path(eval_file).is_file():
            logger.warning(
                "%s: evaluation.json is missing or of another model, and training's eval file %s is not here; "
                "give --eval-file to evaluate against the baselines",
                model_dir,
                eval_file,
            )
            return
        if train_file and not Path(train_file).is_file():
            train_file = None
        split = "validation"
    write_evaluation(model_dir, eval_file, train_file, split)


def push_model(
    model_dir: str | Path,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    *,
    eval_file: str | Path | None = None,
    train_file: str | Path | None = None,
    api: HfApi | None = None,
) -> str:
    """Publish a saved model folder as the Hub model ``repo_id``, with a fresh model card; returns its URL.

    ``private`` applies when the repo is created; an existing repo keeps its visibility.
    """
    model_dir = Path(model_dir)
    if not is_hub_id(repo_id):  # checked before the slow evaluation, not after
        raise UserError(f"repo id {repo_id!r}: give OWNER/NAME, e.g. my-team/clicktune-news")
    check_model_folder(model_dir)
    refuse_links(model_dir, plan_folder(model_dir))  # before the card and evaluation.json are written there
    token = resolve_token(token)
    refresh_evaluation(model_dir, eval_file, train_file)
    write_model_card(model_dir, repo_id=repo_id)
    plan = plan_folder(model_dir)
    refuse_links(model_dir, plan)
    refuse_token_leaks(model_dir, plan.upload, token)
    for path, why in plan.left_out.items():
        logger.info("left out %s: %s", path, why)

    operations = [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=content if isinstance(content, bytes) else str(content))
        for path, content in published_files(model_dir, plan.upload).items()
    ]
    api = api or HfApi()
    url = api.create_repo(repo_id, token=token, private=private or None, repo_type="model", exist_ok=True)
    logger.info("uploading %d files from %s to %s", len(operations), model_dir, url)
    api.create_commit(
        repo_id=repo_id, repo_type="model", operations=operations, token=token, commit_message="Upload ClickTune model"
    )
    return str(url)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys.publish.hub",
        description="Publish a saved model to the Hub.",
        epilog="Installed as a package (pip install .), the same command is clicktune-hub. The token comes from "
        "$HF_TOKEN or `hf auth login`, never from a flag.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, help="what to do; `python -m recsys.publish.hub push --help` lists its flags"
    )
    plan = commands.add_parser(
        "plan",
        help="list which files would be published and which stay home (no network)",
        description="List which files of a model folder would be published and which stay home, with the reason "
        "for each. Needs no network and no token.",
    )
    plan.add_argument("--model-dir", required=True, type=Path, help="the saved model folder")
    push = commands.add_parser(
        "push",
        help="publish the model folder with a fresh model card",
        description="Evaluate (where needed), rewrite the model card, create the Hub repo if it does not exist and "
        "upload the planned files; prints the repo's URL.",
    )
    push.add_argument("--model-dir", required=True, type=Path, help="the saved model folder")
    push.add_argument("--repo-id", required=True, help="OWNER/NAME on the Hub")
    push.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its own)")
    push.add_argument(
        "--eval-file",
        type=Path,
        help="evaluate against the baselines on this click log first, e.g. a held-out split (default: keep "
        "evaluation.json, or where it is missing or of another model, evaluate on the eval file training used, "
        "labelled validation)",
    )
    push.add_argument(
        "--train-file",
        type=Path,
        help="training click log, for the popularity baseline (default: none with --eval-file; without it, the one "
        "training used)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "plan":
        check_model_folder(args.model_dir)
        upload_plan = plan_folder(args.model_dir)
        lines = [f"upload    {path}" for path in upload_plan.upload]
        say("\n".join(lines + [f"left out  {path}  ({why})" for path, why in upload_plan.left_out.items()]))
        return
    url = push_model(
        args.model_dir, args.repo_id, private=args.private, eval_file=args.eval_file, train_file=args.train_file
    )
    say(url)


def cli() -> None:
    """``python -m recsys.publish.hub``, installed as ``clicktune-hub``."""
    run_cli(main)


if __name__ == "__main__":
    cli()
