"""spaces/build.py: the Space bundle it writes (front matter, requirements, contents), its refusals, publishing."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import SpaceCard, metadata_load
from huggingface_hub.utils import filter_repo_objects

from recsys.errors import UserError
from recsys.model.artifact import DEFAULT_MODEL, ModelMetadata
from recsys.publish.upload_plan import list_files, plan_folder, plan_upload

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_SpaceTestTokenThatMustNeverBeWritten42"
FRONT_MATTER_KEYS = {
    "title",
    "emoji",
    "sdk",
    "sdk_version",
    "app_file",
    "python_version",
    "models",
    "license",
    "short_description",
}


# spaces/build.py is a script, not a package (a ``spaces`` package would shadow the one the Space runtime installs),
# so it is loaded from its path. The Hub is out of reach: publishing runs against ``RecordingHfApi`` (conftest.py),
# which checks each call against the real ``HfApi``. The built Space served end to end: tests/test_spaces.py.
def _load_builder():
    spec = importlib.util.spec_from_file_location("clicktune_space_build", REPO / "spaces" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_builder()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(folder: Path) -> dict[str, str]:
    """Requirement lines of the bundle, by canonical name; pip options (--extra-index-url) left out."""
    lines = (folder / "requirements.txt").read_text().splitlines()
    return {_canonical(re.split(r"[<>=!~\[;\s]", line)[0]): line for line in lines if line and line[0] != "-"}


@pytest.fixture
def space_dir(tmp_path: Path, trained_model_dir: Path) -> Path:
    """A Space built by the command line, with a model fine-tuned from a Hub base model."""
    metadata = ModelMetadata.load(trained_model_dir)
    metadata.base_model = DEFAULT_MODEL
    metadata.save(trained_model_dir)
    out = tmp_path / "space"
    assert build.main(["--model-dir", str(trained_model_dir), "--dry-run", str(out)]) == 0
    return out


@pytest.mark.slow
def test_readme_front_matter_has_every_key_the_space_needs(space_dir):
    metadata = metadata_load(space_dir / "README.md")
    assert set(metadata) >= FRONT_MATTER_KEYS
    assert metadata["sdk"] == "gradio"
    assert metadata["sdk_version"] == importlib.metadata.version("gradio")
    assert _requirements(space_dir)["gradio"] == f"gradio=={metadata['sdk_version']}"
    assert (space_dir / metadata["app_file"]).is_file()
    assert metadata["python_version"] == "3.11"
    assert metadata["models"] == [DEFAULT_MODEL]
    assert metadata["license"] == "apache-2.0"
    assert 0 < len(metadata["short_description"]) <= 60  # the Hub's limit
    card = SpaceCard.load(space_dir / "README.md")
    assert card.data.sdk == "gradio" and "`HOST=0.0.0.0`" in card.text


def test_sdk_version_is_the_gradio_that_requirements_pin():
    pinned = {_canonical(line.split("==")[0]): line for line in (REPO / "requirements.txt").read_text().splitlines()}
    assert pinned["gradio"] == f"gradio=={importlib.metadata.version('gradio')}"


@pytest.mark.slow
def test_space_of_a_hub_model_loads_it_by_id(tmp_path):
    out = build.build_space(tmp_path / "space", hub_model_id="me/clicktune-news")
    metadata = metadata_load(out / "README.md")
    assert metadata["models"] == ["me/clicktune-news"]
    assert metadata["preload_from_hub"] == ["me/clicktune-news"]
    assert not (out / build.MODEL_FOLDER).exists()
    assert build.space_variables("me/clicktune-news") == {"HOST": "0.0.0.0", "MODEL_DIR": "me/clicktune-news"}


@pytest.mark.slow
def test_requirements_cover_everything_the_bundle_imports(space_dir):
    imported = set()
    for path in space_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    local = {"app", "clicktune_app", "recsys"}
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m not in local | {"__future__"}}
    assert {"gradio", "torch", "transformers", "pandas", "huggingface_hub"} <= third_party

    required = _requirements(space_dir)
    providers = importlib.metadata.packages_distributions()
    for module in third_party:
        assert any(_canonical(d) in required for d in providers[module]), f"{module} is not in requirements.txt"
    repo_pins = {_canonical(re.split("==", line)[0]): line for line in (REPO / "requirements.txt").read_text().split()}
    for name, line in required.items():
        assert re.fullmatch(r"[\w.-]+==[\w.+-]+", line), line
        if name in repo_pins:
            assert line == repo_pins[name]  # the repository's pin, not whatever is newest
    lines = (space_dir / "requirements.txt").read_text().splitlines()
    assert lines[0] == "--extra-index-url https://download.pytorch.org/whl/cpu" and "pyarrow" in required


@pytest.mark.slow
def test_bundle_holds_no_spaces_module_to_shadow_the_runtime(space_dir, tmp_path):
    assert not (REPO / "spaces" / "__init__.py").exists()  # the builder's folder is no package either
    assert not any(part in ("spaces", "spaces.py") for path in list_files(space_dir) for part in path.split("/"))
    (space_dir / "spaces.py").write_text("")
    with pytest.raises(RuntimeError, match="would shadow the Space runtime's `spaces` package"):
        build.check_no_spaces_module(space_dir)


@pytest.mark.slow
def test_bundle_holds_the_app_the_library_data_and_the_published_model_only(space_dir, trained_model_dir):
    files = set(list_files(space_dir))
    assert {
        "README.md",
        "app.py",
        "requirements.txt",
        "clicktune_app/layout.py",
        "recsys/__init__.py",
        "recsys/model/architectures.py",
    } <= files
    assert {"data/bing_news/test_users.csv", "data/bing_news/raw/LICENSE", "data/movielens/raw/README.txt"} <= files
    examples = sorted(REPO.glob("data/examples/*/*.*"))  # each log's examples.json and candidate lists
    assert {"bing_news", "movielens"} <= {path.parent.name for path in examples}
    assert {path.relative_to(REPO).as_posix() for path in examples} <= files
    model = {path.removeprefix("models/clicktune/") for path in files if path.startswith("models/clicktune/")}
    assert model == set(plan_upload(list_files(trained_model_dir)).upload)  # what `recsys.publish.hub push` publishes
    assert {"model.safetensors", "clicktune.json", "tokenizer.json"} <= model
    assert not [path for path in model if path.startswith(("checkpoints/", "runs/", "feedback-data/", "."))]
    assert not [path for path in files if "__pycache__" in path]
    # Python comes from app.py, clicktune_app/ and recsys/ only (not data/examples/make_examples.py, spaces/pins.py).
    packages = [path for name in ("clicktune_app", "recsys") for path in (REPO / name).rglob("*.py")]
    packages = [path.relative_to(REPO).as_posix() for path in packages]
    assert {path for path in files if path.endswith(".py")} == {"app.py", *packages}
    # The Space upload plan takes all of it but the build's marker, and nothing a run of the app (or a careless
    # hand) leaves beside it.
    assert build.BUILD_MARKER in files
    plan = plan_upload(files, build.SPACE_FILES)
    assert plan.upload == tuple(sorted(files - {build.BUILD_MARKER})) and build.BUILD_MARKER in plan.left_out
    stray = [
        "feedback-data/feedback.sqlite3",
        "recsys/model/__pycache__/architectures.cpython-311.pyc",
        ".env",
        "token",
    ]
    plan = plan_upload([*files, *stray], build.SPACE_FILES)
    assert set(plan.left_out) == {*stray, build.BUILD_MARKER}


def test_bundle_holds_a_bi_encoders_sentence_transformers_files(tmp_path, tiny_model_dir):
    from recsys.model.architectures import load_model, save_model

    model, tokenizer = load_model("bi", str(tiny_model_dir))
    save_model(model, tokenizer, tmp_path / "model", ModelMetadata(base_model=DEFAULT_MODEL, max_length=24))
    (tmp_path / "space").mkdir()
    copied = build.copy_model(tmp_path / "model", tmp_path / "space")
    assert {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"} <= set(copied)
    assert json.loads((tmp_path / "space" / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"]
    assert set(copied) == set(list_files(tmp_path / "model"))


@pytest.mark.slow
def test_no_built_file_holds_the_token(tmp_path, trained_model_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    out = build.build_space(tmp_path / "space", model_dir=trained_model_dir)
    for path in list_files(out):
        assert TOKEN.encode() not in (out / path).read_bytes(), path
    # A model folder that holds the token is refused, not bundled.
    (trained_model_dir / "metrics.json").write_text(json.dumps({"token": TOKEN}))
    with pytest.raises(UserError, match="your Hugging Face token"):
        build.build_space(tmp_path / "space", model_dir=trained_model_dir)


@pytest.mark.slow
def test_build_replaces_its_own_output_and_nothing_else(tmp_path, trained_model_dir):
    out = build.build_space(tmp_path / "space", model_dir=trained_model_dir)
    (out / "left-over.txt").write_text("from an earlier build")
    build.build_space(out, model_dir=trained_model_dir)
    assert not (out / "left-over.txt").exists() and (out / build.BUILD_MARKER).is_file()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="mine is not empty and was not built by this command"):
        build.build_space(tmp_path / "mine", model_dir=trained_model_dir)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    with pytest.raises(UserError, match="exactly one of --model-dir"):
        build.build_space(tmp_path / "other", model_dir=trained_model_dir, hub_model_id="me/x")
    # The model to bundle inside an earlier build: replacing the build would delete it first.
    inner = out / "models" / "clicktune"
    with pytest.raises(UserError, match=r"space: holds the input folder .*models/clicktune"):
        build.build_space(out, model_dir=inner)
    assert (inner / "model.safetensors").is_file()


def test_the_output_is_never_the_model_folder_nor_inside_it_nor_the_repository(
    tmp_path, tmp_path_factory, trained_model_dir
):
    before = _tree(trained_model_dir)
    with pytest.raises(UserError, match=r"clicktune: is the input folder .*clicktune; give --dry-run"):
        build.main(["--model-dir", str(trained_model_dir), "--dry-run", str(trained_model_dir)])
    with pytest.raises(UserError, match=r"space: is inside the model folder .*clicktune"):
        build.main(["--model-dir", str(trained_model_dir), "--dry-run", str(trained_model_dir / "space")])
    assert _tree(trained_model_dir) == before and not (trained_model_dir / "space").exists()
    # Through a link: to the model folder's parent, or the model named by a link from elsewhere.
    (tmp_path / "alias").symlink_to(tmp_path)
    with pytest.raises(UserError, match=r"alias/clicktune: is the input folder .*clicktune, through a link"):
        build.build_space(tmp_path / "alias" / "clicktune", model_dir=trained_model_dir)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "model").symlink_to(trained_model_dir)
    with pytest.raises(UserError, match=r": holds the input folder .*elsewhere\d*/model, through a link"):
        build.build_space(tmp_path, model_dir=elsewhere / "model")
    assert _tree(trained_model_dir) == before


def _dry_run_command(model_dir: Path, out: Path) -> subprocess.CompletedProcess:
    """``python spaces/build.py --model-dir MODEL --dry-run OUT`` as a user runs it, offline."""
    command = [sys.executable, str(REPO / "spaces" / "build.py"), "--model-dir", str(model_dir), "--dry-run", str(out)]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.slow
def test_a_linked_file_of_the_model_is_refused_not_bundled(tmp_path, trained_model_dir):
    """A model's merges.txt linked to a secret outside the folder: the build says so and bundles nothing of it."""
    secret = tmp_path / "secret.txt"
    secret.write_text("PRIVATE KEY 1234")
    (trained_model_dir / "merges.txt").symlink_to(secret)
    out = tmp_path / "space"
    done = _dry_run_command(trained_model_dir, out)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert f"{trained_model_dir}: merges.txt is a link" in line and "in place of the link" in line
    assert not out.exists()  # refused before anything is written
    assert "merges.txt" in plan_folder(trained_model_dir).left_out
    # A folder already built is not published with a link in it either.
    built = build.build_space(tmp_path / "built", hub_model_id="me/clicktune-news")
    (built / "notes.md").symlink_to(secret)
    with pytest.raises(UserError, match=r"notes\.md is a link"):
        build.publish_space(built, "me/s", variables={}, token=TOKEN, api=None)


def test_a_link_among_the_repositorys_files_is_left_out_and_named(tmp_path, trained_model_dir, caplog):
    repo = tmp_path / "repo"
    for name in ("app.py", "requirements.txt", "clicktune_app/__init__.py"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes((REPO / name).read_bytes())
    (repo / "recsys").mkdir()
    (repo / "recsys" / "__init__.py").write_text("")
    secret = tmp_path / "secret.txt"
    secret.write_text("PRIVATE KEY 1234")
    (repo / "recsys" / "notes.py").symlink_to(secret)
    (repo / "data" / "examples" / "news").mkdir(parents=True)
    (repo / "data" / "examples" / "news" / "examples.json").symlink_to(secret)
    out = build.build_space(tmp_path / "space", hub_model_id="me/clicktune-news", repo=repo)
    assert not (out / "recsys" / "notes.py").exists() and not (out / "data" / "examples").exists()
    assert "recsys/notes.py: left out of the Space: a link" in caplog.text
    assert "data/examples/news/examples.json: left out of the Space: a link" in caplog.text
    (repo / "app.py").unlink()
    (repo / "app.py").symlink_to(REPO / "app.py")
    with pytest.raises(UserError, match=r"app\.py is a link"):
        build.build_space(tmp_path / "space", hub_model_id="me/clicktune-news", repo=repo)


@pytest.mark.slow
def test_a_linked_marker_is_no_earlier_build_and_nothing_is_deleted(tmp_path, trained_model_dir):
    """A planted .clicktune-space-build link in a folder of the user's files: refused, with --dry-run too."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    real = build.build_space(tmp_path / "space", hub_model_id="me/clicktune-news") / build.BUILD_MARKER
    (mine / build.BUILD_MARKER).symlink_to(real)  # a link to a real build's marker
    before = _tree(mine)
    with pytest.raises(UserError, match=rf"mine: its {re.escape(build.BUILD_MARKER)} is a link"):
        build.main(["--model-dir", str(trained_model_dir), "--dry-run", str(mine)])
    with pytest.raises(UserError, match="is a link, not the file that a build writes, so nothing in it is deleted"):
        build.build_space(mine, hub_model_id="me/clicktune-news")
    assert _tree(mine) == before and (mine / build.BUILD_MARKER).is_symlink()


def _tree(folder: Path) -> dict[str, bytes]:
    return {path: (folder / path).read_bytes() for path in list_files(folder)}


@pytest.mark.slow
def test_a_repository_is_never_taken_for_an_earlier_build(tmp_path, trained_model_dir):
    """The folder that the old check took for a Space (an app.py, a README with `sdk: gradio`) is refused untouched."""
    repo = tmp_path / "repo"
    for path in ("app.py", "recsys/model/architectures.py", ".git/HEAD", "models/clicktune/model.safetensors"):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(f"precious {path}")
    (repo / "README.md").write_text("---\nsdk: gradio\napp_file: app.py\n---\n# My app\n")
    before = _tree(repo)

    with pytest.raises(UserError, match=rf"{re.escape(str(repo))} is not empty and was not built by this command"):
        build.main(["--model-dir", str(trained_model_dir), "--dry-run", str(repo)])
    assert _tree(repo) == before

    # As a command: one line that names the folder and the fix, exit status 2, and still nothing deleted.
    done = _dry_run_command(trained_model_dir, repo)
    assert done.returncode == 2
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert str(repo) in line and "give --dry-run a new or empty folder" in line and "Traceback" not in done.stderr
    assert _tree(repo) == before

    with pytest.raises(UserError, match=rf"{re.escape(str(REPO))}: is the input folder {re.escape(str(REPO))};"):
        build.build_space(REPO, model_dir=trained_model_dir)  # never, whatever its files say


@pytest.mark.slow
def test_bundle_holds_no_path_of_this_machine(space_dir, trained_model_dir, tiny_model_dir, tmp_path_factory):
    local = [str(REPO), str(tmp_path_factory.getbasetemp()), str(trained_model_dir), str(tiny_model_dir)]
    for path, content in _tree(space_dir).items():
        assert not [p for p in local if p.encode() in content], path
    metadata = json.loads((space_dir / build.MODEL_FOLDER / "clicktune.json").read_text())
    assert metadata["training"]["train_file"] == "clicks.csv"
    # The model folder itself keeps its paths: publishing re-evaluates on the eval file that training used.
    assert ModelMetadata.load(trained_model_dir).training["train_file"].startswith("/")


@pytest.mark.slow
def test_publish_creates_or_updates_the_space_and_waits_for_it(space_dir, recording_hf_api, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    recording_hf_api.runtimes = [{"stage": "RUNNING"}, {"stage": "BUILDING"}, {"stage": "RUNNING"}]
    url, runtime = build.publish_space(
        space_dir,
        "me/clicktune-space",
        variables=build.space_variables(None),
        private=True,
        hardware="cpu-upgrade",
        poll=0,
        api=recording_hf_api,
    )
    assert url == "https://huggingface.co/spaces/me/clicktune-space" and runtime.stage == "RUNNING"
    [create] = recording_hf_api.called("create_repo")
    assert create["repo_type"] == "space" and create["space_sdk"] == "gradio" and create["exist_ok"]
    assert create["private"] is True and create["space_hardware"] == "cpu-upgrade"
    assert create["token"] == TOKEN
    assert [(c["key"], c["value"]) for c in recording_hf_api.called("add_space_variable")] == [("HOST", "0.0.0.0")]
    assert recording_hf_api.called("request_space_hardware")[0]["hardware"] == "cpu-upgrade"
    [upload] = recording_hf_api.called("upload_folder")
    assert upload["repo_type"] == "space" and upload["delete_patterns"] == ["*"]
    selected = filter_repo_objects(
        list_files(space_dir), allow_patterns=upload["allow_patterns"], ignore_patterns=upload["ignore_patterns"]
    )
    assert sorted(selected) == [path for path in list_files(space_dir) if path != build.BUILD_MARKER]
    # The stale RUNNING of the previous build did not count: it waited through BUILDING.
    assert len(recording_hf_api.called("get_space_runtime")) == 3


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_wait_reports_a_failed_build_and_gives_up_after_the_timeout(recording_hf_api):
    recording_hf_api.runtimes = [{"stage": "BUILDING"}, {"stage": "BUILD_ERROR", "errorMessage": "pip failed"}]
    clock = _Clock()
    runtime = build.wait_for_space(recording_hf_api, "me/s", TOKEN, 600, sleep=clock.sleep, clock=clock)
    assert runtime.stage == "BUILD_ERROR" and runtime.raw["errorMessage"] == "pip failed"

    recording_hf_api.runtimes = [{"stage": "BUILDING"}] * 5
    with pytest.raises(TimeoutError, match="still BUILDING after 60 s"):
        build.wait_for_space(recording_hf_api, "me/s", TOKEN, 60, poll=15, sleep=clock.sleep, clock=clock)
