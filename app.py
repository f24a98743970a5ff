"""ClickTune's Gradio app: rank item lists, classify one item, compare base vs fine-tuned, collect feedback.

    python app.py        # or `make demo`, which trains models/clicktune first

Configuration, from the environment (defaults in brackets; ``recsys.defaults`` holds them):

    MODEL_DIR        one model to serve [none: each bundled log's model that `make demo` trained, Bing News in
                     models/clicktune and MovieLens in models/clicktune-movielens; where neither is trained, the
                     zero-shot base model]
    FEEDBACK_DIR     where feedback (SQLite) and cached evaluations are kept [feedback-data/]
    MAX_ITEMS        candidates per list [1000]
    MAX_UPLOAD_MB    size of an uploaded file, at most 1024 [5]
    MAX_TEXT_CHARS   characters in a context or an item [5000]
    EVAL_FILE        held-out click log of the Model tab [the served log's first held-out file]
    TRAIN_FILE       training click log, for the popularity baseline [the served log's training file]
    CATALOG_DIR      a catalog that `python -m recsys.scoring.catalog build` indexed for the served model, which the
                     Rank tab and /rank_catalog rank whole [none]
    CHALLENGER_DIR   a second model (folder or Hub id) that the first log's Rank tab may interleave with the
                     served one, blind, to compare them on users' marks [none]
    HOST, PORT       where to serve [127.0.0.1, 7860]; Gradio's GRADIO_SERVER_NAME and GRADIO_SERVER_PORT too
                     (where both names of one setting are given, they must agree)
    FEEDBACK_BROWSING    1: visitors may browse and export the stored feedback [0: counts only]
    FEEDBACK_REPO        a Hub dataset (OWNER/NAME) the feedback is mirrored to and restored from [none]
    FEEDBACK_PUSH_MINUTES  how often the mirror commits [10]
    CLICKTUNE_ONNX   serve a model folder's ONNX Runtime export where its check passed: 1, int8 or fp32; fp32,
                     the fp32 export only; 0, always PyTorch [1]
    CLICKTUNE_ALLOW_PICKLE  1: load a folder's pytorch_model.bin (a pickle, which can run code when loaded) where
                     it has no model.safetensors [0: such a folder is refused]

The layout is ``clicktune_app``; this file parses ``--help`` and serves, importing Gradio and the models only
then, so that ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import logging

from recsys.cli import run_cli


def build_parser() -> argparse.ArgumentParser:
    """``--help`` only: the app takes its settings from the environment, as a Space gives them."""
    summary, usage, heading, settings = __doc__.split("\n\n")[:4]
    configuration = f"{heading}\n\n{settings}"
    return argparse.ArgumentParser(
        prog="python app.py",
        description=f"{summary}\n\n{usage}",
        epilog=f"{configuration}\n\nInstalled as a package (pip install .), the same command is clicktune-app.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def serve(argv: list[str] | None = None) -> None:
    """Serve the app with the settings of the environment; a bad setting or model folder ends in one line."""
    build_parser().parse_args(argv)
    # Imported here, with Gradio and torch: --help loads neither.
    from clicktune_app.layout import create_app, launch_options
    from recsys.serving.settings import AppConfig

    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio polls its own server at start
    app_config = AppConfig.from_env()
    create_app(app_config).launch(**launch_options(app_config))


def main() -> None:
    """``python app.py``, or ``clicktune-app`` where the package is installed."""
    run_cli(serve)


if __name__ == "__main__":
    main()
