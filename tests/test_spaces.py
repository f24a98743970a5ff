"""The Space that spaces/build.py bundles, served end to end: started from its own folder, it ranks with its model.

spaces/build.py is a script, not a package (a ``spaces`` package would shadow the one the Space
runtime installs), so tests/test_build.py loads it from its path; what the bundle holds, and publishing it, are
tested there.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_build import build

from recsys.model.artifact import DEFAULT_MODEL, ModelMetadata
from recsys.scoring.loading import load_scorer

REPO = Path(__file__).resolve().parents[1]


def _wait_until_served(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the app did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_built_space_serves_the_bundled_model_from_its_own_folder(tmp_path, trained_model_dir, free_port):
    from gradio_client import Client

    # From a Hub base model, which the Space can load as its zero-shot baseline: the bundle names a local
    # base folder by its name only, which no Space has.
    metadata = ModelMetadata.load(trained_model_dir)
    metadata.base_model = DEFAULT_MODEL
    metadata.save(trained_model_dir)
    out = build.build_space(tmp_path / "space", model_dir=trained_model_dir)
    port = free_port()
    settings = ("PYTHONPATH", "MODEL_DIR", "FEEDBACK_DIR", "EVAL_FILE", "TRAIN_FILE", "HOST", "PORT")
    env = {key: value for key, value in os.environ.items() if key not in settings}
    env.update(HOST="127.0.0.1", PORT=str(port), HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1")

    # What the app's interpreter sees, started the same way: the bundle's recsys, and no path into the repository.
    probe = subprocess.run(
        [sys.executable, "-c", "import json, sys, recsys; print(json.dumps([recsys.__file__, sys.path]))"],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    recsys_file, path = json.loads(probe.stdout)
    assert Path(recsys_file).resolve().is_relative_to(out.resolve())
    assert not [entry for entry in path if entry and Path(entry).resolve() == REPO]

    log = tmp_path / "app.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=out, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_until_served(url, process, log)
        if Path(f"/proc/{process.pid}/cwd").exists():
            assert Path(f"/proc/{process.pid}/cwd").resolve() == out.resolve()
        context = "microsoft windows stock"
        items = ["microsoft windows update released", "lakers win game", "star wars trailer"]
        no_weights = {"headers": ["feature", "weight"], "data": [], "metadata": None}
        table, download, status = Client(url, verbose=False).predict(
            context, None, "\n".join(items), "item", no_weights, 10, api_name="/rank"
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()

    rows = [dict(zip(table["headers"], row, strict=True)) for row in table["data"]]
    assert [row["rank"] for row in rows] == [1, 2, 3]
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    # The bundled model ranked the list: its folder and the digest of its bundled clicktune.json name it,
    # and it orders the items as the same folder does when loaded here.
    digest = hashlib.sha256((out / build.MODEL_FOLDER / "clicktune.json").read_bytes()).hexdigest()[:8]
    assert f"Model: `clicktune@{digest}`" in status
    import pandas as pd

    from recsys.scoring.ranking import rank_candidates

    expected = rank_candidates(load_scorer(str(out / build.MODEL_FOLDER)), context, pd.DataFrame({"item": items}))
    assert [row["item"] for row in rows] == expected["item"].tolist()
    assert Path(download).name == "ranked.csv"
