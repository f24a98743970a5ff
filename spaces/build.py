"""Build the ClickTune app as a Hugging Face Space, and publish it.

    python spaces/build.py --model-dir models/clicktune --dry-run build/space
    python spaces/build.py --model-dir models/clicktune --space-id OWNER/NAME [--private] [--hardware cpu-basic]
    python spaces/build.py --hub-model-id OWNER/MODEL --space-id OWNER/NAME

The Space folder holds README.md (the Spaces front matter: sdk gradio at the version installed
here, which is the one requirements.txt pins), app.py with the clicktune_app and recsys packages
copied from the repository, the data files app.py shows (data/examples, the Bing News held-out and
training splits with their licence; spaces/space_files.py lists them), requirements.txt (the
repository's pins for what those files import),
and either the model's published files under models/clicktune/ (app.py's default MODEL_DIR) or,
with --hub-model-id, no model: the Space then loads that Hub model at start (the Space variable
MODEL_DIR names it).

--dry-run DIR only writes the folder: a new or empty one, or one that an earlier build wrote (its
marker file, .clicktune-space-build, a regular file and no link, says so); anything else is refused,
and nothing in it deleted. DIR is never the model folder, the repository, a folder inside the model
folder or one that holds either. The bundled clicktune.json and metrics.json name files and folders,
never paths of this machine. Without --dry-run, the folder is built in a temporary directory,
the Space is created or updated (create_repo, then upload_folder, which makes the Space mirror
the folder) and the command waits until the Space runs or fails, then prints its URL.

No link is followed into the Space: a model folder holding a link that is no clutter is refused, as
`recsys.publish.hub push` refuses it, and a link among the repository's files that the Space copies is left
out, each named in a warning.

Run this as a script: spaces/ is not a Python package, and the bundle holds no module named
``spaces``, because the Space runtime installs a PyPI package of that name.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for folder in (REPO, HERE):  # the library sits beside this folder; pins.py beside this file
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from huggingface_hub import HfApi, SpaceHardware, SpaceRuntime, SpaceStage  # noqa: E402
from huggingface_hub import get_token as stored_token  # noqa: E402
from pins import imported_modules, read_pins, requirements_for  # noqa: E402
from runtime import wait_for_space  # noqa: E402
from space_card import space_card  # noqa: E402
from space_files import APP_FILE, DATA_FILES, PACKAGES, check_app_file, copy_app, copy_data  # noqa: E402

from recsys.cli import run_cli, say  # noqa: E402
from recsys.data.file_checks import check_not_an_input_folder  # noqa: E402
from recsys.defaults import MODEL_FOLDER, Env  # noqa: E402
from recsys.errors import UserError  # noqa: E402
from recsys.model.artifact import ModelMetadata, is_hub_id, public_name  # noqa: E402
from recsys.model.checks import check_model_folder  # noqa: E402
from recsys.publish.hub import refuse_token_leaks, resolve_token  # noqa: E402
from recsys.publish.upload_plan import list_files, plan_folder, published_files, refuse_links  # noqa: E402

logger = logging.getLogger("spaces.build")

# Written first into every build: only a folder holding it may be replaced by the next build. A hidden
# file, so that the upload plan leaves it home.
BUILD_MARKER = ".clicktune-space-build"
MODEL_VARIABLE = Env.MODEL_DIR
# app.py serves on HOST, 127.0.0.1 by default; a Space must listen on every interface.
SPACE_VARIABLES = {Env.HOST: "0.0.0.0"}
REQUIREMENTS_FILE = "requirements.txt"
SPACE_FILES = (
    "README.md",
    APP_FILE,
    REQUIREMENTS_FILE,
    *(f"{p}/*.py" for p in PACKAGES),
    f"{MODEL_FOLDER}/*",
    *DATA_FILES,
)
MAX_MODEL_MB = 500  # larger models go to a model repo (recsys.publish.hub push) and the Space loads them by id


def _model_size_mb(model_dir: Path, files: tuple[str, ...]) -> float:
    return sum((model_dir / f).stat().st_size for f in files) / 2**20


def copy_model(model_dir: Path, target: Path, max_mb: float = MAX_MODEL_MB) -> list[str]:
    """Copy the published files of a saved model (as ``recsys.publish.hub`` publishes them) into ``target``."""
    check_model_folder(model_dir)
    plan = plan_folder(model_dir)
    refuse_links(model_dir, plan)
    size = _model_size_mb(model_dir, plan.upload)
    if size > max_mb:
        raise UserError(
            f"{model_dir}: {size:.0f} MB is too large to bundle (over {max_mb} MB); publish it with "
            "`python -m recsys.publish.hub push --model-dir DIR --repo-id OWNER/NAME` and build with --hub-model-id"
        )
    for path, content in published_files(model_dir, plan.upload).items():
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):  # ClickTune's JSON, without the paths of this machine
            (target / path).write_bytes(content)
        else:
            shutil.copy2(content, target / path)
    return list(plan.upload)


def _prepare(out: Path, repo: Path, model_dir: Path | None) -> None:
    """Make ``out`` an empty folder holding only the build marker, deleting nothing that this command did not build.

    A folder is replaced only where it holds the marker that every build writes first (a regular file,
    not a link), and never where it is, holds or lies inside what the build reads (the repository, the
    model being bundled; a folder inside the repository, such as build/space, is fine).
    """
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"{out} is not a folder; give --dry-run a new or empty folder")
    fix = "give --dry-run a new or empty folder outside the model folder"
    check_not_an_input_folder(out, (repo,) if model_dir is None else (repo, model_dir), fix)
    if model_dir is not None and out.resolve().is_relative_to(model_dir.resolve()):
        raise UserError(f"{out}: is inside the model folder {model_dir}, which the build reads; {fix}")
    if out.exists() and any(out.iterdir()):
        marker = out / BUILD_MARKER
        if marker.is_symlink():
            raise UserError(
                f"{out}: its {BUILD_MARKER} is a link, not the file that a build writes, so nothing in it is deleted; "
                "give --dry-run a new or empty folder, or delete that folder yourself"
            )
        if not marker.is_file():
            raise UserError(
                f"{out} is not empty and was not built by this command (it has no {BUILD_MARKER}), so nothing in it "
                "is deleted; give --dry-run a new or empty folder, or delete that folder yourself"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / BUILD_MARKER).write_text(
        "Written by spaces/build.py: the next build into this folder replaces all of it. Not uploaded.\n",
        encoding="utf-8",
    )


def build_space(
    out: str | Path,
    model_dir: str | Path | None = None,
    hub_model_id: str | None = None,
    title: str = "ClickTune",
    repo: Path = REPO,
    max_model_mb: float = MAX_MODEL_MB,
) -> Path:
    """Write a complete Space folder to ``out`` (replacing an earlier build there) and return it."""
    if (model_dir is None) == (hub_model_id is None):
        raise UserError("give the model as exactly one of --model-dir DIR (bundled) or --hub-model-id OWNER/NAME")
    if hub_model_id is not None and not is_hub_id(hub_model_id):
        raise UserError(f"--hub-model-id {hub_model_id!r}: give OWNER/NAME, e.g. my-team/clicktune-news")
    check_app_file(repo)
    out = Path(out)
    # Before anything is written:
    metadata = check_model_folder(model_dir) if model_dir is not None else None
    if model_dir is not None:
        refuse_links(model_dir, plan_folder(model_dir))
    _prepare(out, repo, None if model_dir is None else Path(model_dir))

    copy_app(repo, out)
    copy_data(repo, out)
    if model_dir is not None:
        copy_model(Path(model_dir), out / MODEL_FOLDER, max_model_mb)
        base_model = (metadata or ModelMetadata()).base_model
        models = [base_model] if is_hub_id(base_model) else []
        model_line = f"bundled in `{MODEL_FOLDER}/` (base model `{public_name(base_model)}`)"
    else:
        models = [hub_model_id]
        model_line = (
            f"[{hub_model_id}](https://huggingface.co/{hub_model_id}), loaded at start "
            f"(the Space variable {MODEL_VARIABLE} names it)"
        )

    pins = read_pins(repo / REQUIREMENTS_FILE)
    requirements = requirements_for(imported_modules(out), pins)
    (out / REQUIREMENTS_FILE).write_text("\n".join(requirements) + "\n", encoding="utf-8")
    variables = space_variables(hub_model_id)
    space_card(pins, title, models, model_line, hub_model_id, variables, APP_FILE).save(out / "README.md")

    check_no_spaces_module(out)
    token = stored_token()  # HF_TOKEN or the login; only read to prove that no file holds it
    if token:
        refuse_token_leaks(out, list_files(out), token)
    logger.info("built the Space in %s", out)
    return out


def check_no_spaces_module(folder: Path) -> None:
    """The Space runtime imports the PyPI package ``spaces``: nothing in the bundle may shadow it."""
    shadows = [p for p in (folder / "spaces", folder / "spaces.py") if p.exists()]
    if shadows:
        raise RuntimeError(f"{', '.join(map(str, shadows))} would shadow the Space runtime's `spaces` package")


def space_variables(hub_model_id: str | None) -> dict[str, str]:
    """The Space's environment: where to serve and, for a model on the Hub, its id as MODEL_DIR."""
    return {**SPACE_VARIABLES, **({MODEL_VARIABLE: hub_model_id} if hub_model_id else {})}


def publish_space(
    folder: Path,
    space_id: str,
    *,
    variables: dict[str, str],
    private: bool = False,
    hardware: str | None = None,
    timeout: float = 1800,
    poll: float = 15.0,
    api: HfApi | None = None,
    token: str | None = None,
) -> tuple[str, SpaceRuntime]:
    """Create or update the Space ``space_id`` from a built folder and wait for it; returns its URL and runtime."""
    token = resolve_token(token)
    plan = plan_folder(folder, SPACE_FILES)
    refuse_links(folder, plan)
    refuse_token_leaks(folder, plan.upload, token)
    api = api or HfApi()
    api.create_repo(
        space_id,
        token=token,
        private=private or None,
        repo_type="space",
        space_sdk="gradio",
        space_hardware=hardware,
        space_variables=[{"key": key, "value": value} for key, value in variables.items()],
        exist_ok=True,
    )
    # create_repo leaves an existing Space's hardware and variables as they were.
    for key, value in variables.items():
        api.add_space_variable(space_id, key, value, token=token)
    if hardware:
        api.request_space_hardware(space_id, hardware, token=token)
    logger.info("uploading %d files to Space %s", len(plan.upload), space_id)
    api.upload_folder(
        repo_id=space_id,
        folder_path=folder,
        repo_type="space",
        token=token,
        allow_patterns=plan.allow_patterns,
        ignore_patterns=plan.ignore_patterns,
        delete_patterns=["*"],  # the Space mirrors the folder: files of an earlier build go
        commit_message="Build the ClickTune Space",
    )
    url = f"https://huggingface.co/spaces/{space_id}"
    return url, wait_for_space(api, space_id, token, timeout, poll)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python spaces/build.py",
        description=__doc__.split("\n\n")[0],
        epilog="Run it as a script (spaces/ is not a package). Publishing needs a network and a token with write "
        "access, from $HF_TOKEN or `hf auth login`, never from a flag.",
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model-dir", type=Path, help="a saved model folder to bundle in the Space")
    model.add_argument(
        "--hub-model-id", help="OWNER/NAME of a Hub model that the Space loads at start, instead of bundling one"
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--dry-run",
        type=Path,
        metavar="DIR",
        help="only write the Space folder to DIR (new, empty, or written by an earlier build); no network",
    )
    target.add_argument("--space-id", help="OWNER/NAME of the Space to create or update")
    parser.add_argument("--title", default="ClickTune", help="the Space's title (default: %(default)s)")
    parser.add_argument("--private", action="store_true", help="create the Space private")
    parser.add_argument(
        "--hardware",
        choices=[h.value for h in SpaceHardware],
        metavar="HARDWARE",
        help="the Space's hardware, one of: %(choices)s (default: none asked for: a new Space runs on cpu-basic, "
        "an existing one keeps its own)",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds to wait for the Space to run (default: %(default)s)"
    )
    parser.add_argument(
        "--max-model-mb",
        type=float,
        default=MAX_MODEL_MB,
        help="largest model to bundle, in MB; publish a larger one with recsys.publish.hub and give --hub-model-id "
        "(default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Build (and publish) the Space; a user error raises ``UserError``, which ``run_cli`` shows as one line."""
    args = build_parser().parse_args(argv)
    if args.space_id is not None and not is_hub_id(args.space_id):
        raise UserError(f"--space-id {args.space_id!r}: give OWNER/NAME, e.g. my-team/clicktune")
    build = dict(model_dir=args.model_dir, hub_model_id=args.hub_model_id, title=args.title)
    if args.dry_run:
        say(str(build_space(args.dry_run, max_model_mb=args.max_model_mb, **build)))
        return 0
    with tempfile.TemporaryDirectory(prefix="clicktune-space-") as folder:
        build_space(folder, max_model_mb=args.max_model_mb, **build)
        try:
            url, runtime = publish_space(
                Path(folder),
                args.space_id,
                variables=space_variables(args.hub_model_id),
                private=args.private,
                hardware=args.hardware,
                timeout=args.timeout,
            )
        except TimeoutError as error:
            logger.error("https://huggingface.co/spaces/%s %s", args.space_id, error)
            return 1
    say(f"{url} {runtime.stage}")
    if runtime.stage != SpaceStage.RUNNING:
        logger.error("%s", runtime.raw.get("errorMessage") or "see the Space's logs")
        return 1
    return 0


if __name__ == "__main__":
    run_cli(main)
