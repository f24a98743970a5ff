"""Loading a model to score with: a base model as a zero-shot bi-encoder, a saved folder as the architecture it
saved (read once, after the folder check has finished an interrupted save), and the packaged MiniLM."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from recsys.data.contract import ITEM, RANK
from recsys.model.architectures import BiEncoder, CrossEncoder
from recsys.model.artifact import BI, COMMIT_DIR, COMMIT_MANIFEST, CROSS, DEFAULT_MODEL, ModelMetadata
from recsys.model.commits import begin_commit, commit
from recsys.scoring.loading import load_scorer
from recsys.scoring.ranking import SCORE, rank_candidates
from recsys.scoring.scorer import Scorer

HEADLINES = json.loads((Path(__file__).parent / "data" / "headlines.json").read_text(encoding="utf-8"))
ITEMS = HEADLINES["items"]


def test_load_scorer_on_a_base_model_is_zero_shot_bi_encoder(tiny_model_dir: Path, bi_scorer: Scorer) -> None:
    assert bi_scorer.metadata == ModelMetadata(base_model=str(tiny_model_dir))  # the defaults: a bi-encoder
    assert bi_scorer.metadata.architecture == BI
    assert isinstance(bi_scorer.model, BiEncoder)
    assert not bi_scorer.metadata.fine_tuned
    assert bi_scorer.version == f"{tiny_model_dir.name} (zero-shot)"
    assert not bi_scorer.model.training
    assert not bi_scorer.model.encoder.training
    assert "[UNK]" not in bi_scorer.tokenizer.tokenize(ITEMS[0])


def test_load_scorer_reads_the_saved_architecture(cross_dir: Path, cross_scorer: Scorer) -> None:
    assert cross_scorer.metadata == ModelMetadata.load(cross_dir)
    assert cross_scorer.metadata.architecture == CROSS
    assert isinstance(cross_scorer.model, CrossEncoder)
    assert cross_scorer.model.encoder.config.num_labels == 1


def test_load_scorer_loads_the_model_that_an_interrupted_save_committed(
    tiny_model_dir: Path, cross_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save killed just after its commit point: the folder still holds the old bi-encoder's files, its
    clicktune.json saying bi, and the committed cross-encoder waits in the staging folder. The scorer reads the
    folder once the check has finished the save: the cross-encoder, never the old architecture over its weights."""
    folder = tmp_path / "clicktune"
    shutil.copytree(tiny_model_dir, folder)
    ModelMetadata(architecture=BI, base_model=str(tiny_model_dir)).save(folder)
    staging = begin_commit(folder)
    for file in cross_dir.iterdir():
        shutil.copy(file, staging / file.name)
    rename = os.replace

    def killed_after_the_commit_point(source: str, target: str) -> None:
        if Path(target).name != COMMIT_MANIFEST:
            raise KeyboardInterrupt("killed after the commit point")
        rename(source, target)

    monkeypatch.setattr(os, "replace", killed_after_the_commit_point)
    with pytest.raises(KeyboardInterrupt):
        commit(folder)
    monkeypatch.setattr(os, "replace", rename)
    assert (folder / COMMIT_DIR / COMMIT_MANIFEST).is_file()
    assert ModelMetadata.load(folder).architecture == BI  # what a read before the check would see

    scorer = load_scorer(str(folder))
    assert scorer.metadata.architecture == CROSS and isinstance(scorer.model, CrossEncoder)
    assert scorer.metadata == ModelMetadata.load(cross_dir)
    assert not (folder / COMMIT_DIR).exists()


@pytest.mark.slow
def test_packaged_minilm_ranks_the_relevant_item_first() -> None:
    scorer = load_scorer(None)
    assert scorer.metadata == ModelMetadata(base_model=DEFAULT_MODEL)
    assert scorer.model.encoder.config.hidden_size == 384
    relevant = "Lakers beat the Celtics in overtime to reach the NBA finals"
    irrelevant = ["Easy sourdough bread recipe for beginners", "Stock markets fall as interest rates rise"]
    ranked = rank_candidates(scorer, "nba basketball playoffs", pd.DataFrame({ITEM: [*irrelevant, relevant]}))
    assert ranked[ITEM].iloc[0] == relevant and ranked[RANK].iloc[0] == 1
    assert ranked[SCORE].iloc[0] > ranked[SCORE].iloc[1]
