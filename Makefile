# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MODEL_DIR ?= models/clicktune
MOVIELENS_DIR ?= models/clicktune-movielens
FEEDBACK_DIR ?= feedback-data
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test test-fast format install results search curve replay load bench clean browser

# pip shows what it fetches and installs (a minute or two on a fresh machine), rather than a silent wait.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "Installing the pinned requirements into $(VENV)..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install --progress-bar on -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# The default recipe on each bundled log (seed 42), kept for next time. It stops one evaluation after its best
# (--patience 1): the best steps, 25 for Bing News and 50 for MovieLens, come before the default patience of 2
# would stop, so the model is the same byte for byte, a third sooner. metrics.json is written last: a run stopped
# half-way is not mistaken for a trained model.
DEMO_TRAINING := --patience 1
$(MODEL_DIR)/metrics.json: | $(VENV)/.installed
	$(PY) -m finetune.train $(DEMO_TRAINING) --output-dir $(MODEL_DIR)

$(MOVIELENS_DIR)/metrics.json: | $(VENV)/.installed
	$(PY) -m finetune.train $(DEMO_TRAINING) --train-file data/movielens/train.csv \
		--eval-file data/movielens/valid.csv --output-dir $(MOVIELENS_DIR)

# A model's ONNX Runtime exports, served only where they rank as the model does (onnx/agreement.json; a minute).
%/onnx/agreement.json: %/metrics.json
	$(PY) -m recsys.scoring.onnx_export export --model $*

# Each model against the baselines on its held-out users, so that the Model tab opens with its verdict.
$(FEEDBACK_DIR)/held-out-evaluated: $(MODEL_DIR)/onnx/agreement.json $(MOVIELENS_DIR)/onnx/agreement.json
	FEEDBACK_DIR=$(FEEDBACK_DIR) $(PY) -m recsys.serving.served
	touch $@

# Both logs' models in one app. The local operator may browse and export the feedback (FEEDBACK_BROWSING=1);
# a public Space leaves it off.
demo: $(VENV)/.installed $(FEEDBACK_DIR)/held-out-evaluated
	FEEDBACK_DIR=$(FEEDBACK_DIR) FEEDBACK_BROWSING=1 $(PY) app.py

# The browser test drives Debian's chromium (never `playwright install`, which downloads a browser): the
# browser and a font, without the ~120 recommended packages (printing, avahi, samba libraries) it needs not.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null; }

test: $(VENV)/.installed browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

# The edit-and-rerun loop: everything but the tests marked slow (a second or more each) and the browser.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow and not browser"

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# README's held-out tables (the default recipe on both bundled logs, 3 seeds, against every baseline),
# then why Bing News' two held-out files disagree: bench/results.md and bench/later.md.
results: $(VENV)/.installed
	$(PY) -m bench.results
	$(PY) -m bench.later

# Would the loop pick the right model with users? make results' models against the zero-shot base model in interleaved
# replays of the held-out logs, two click models, 5 replay seeds (a few minutes): bench/replay.md.
replay: $(VENV)/.installed
	$(PY) -m bench.replay

# The levers of the recipe, tried on the validation users of both logs (bench/search.md).
search: $(VENV)/.installed
	$(PY) -m bench.search

# The learning curve (hours here): held-out group AUC against training clicks, fine-tuned beside popularity and
# zero-shot, on nested fractions of each log's training users (Bing News 10-100%, MovieLens 2.5% and 5% of a pool
# eight times its train.csv), 3 seeds: bench/curve.md, bench/curve.json and
# docs/curve.png. A stopped run goes on where it stopped (bench/curve_runs.jsonl). Bing News' whole-pool points are
# `make results`' own runs, scored from models/results rather than trained again where that run is there.
curve: $(VENV)/.installed
	$(PY) -m bench.curve --full-models models/results

# Load and crash test of the served app, not part of `make test` (about 10 min here): 16 gradio_client
# sessions of 25 ranks of 100 items with feedback, a SIGKILL mid-load, a restart, and the store checked
# (bench/load.md). Options go in LOAD_ARGS, e.g. make load LOAD_ARGS="--clients 4 --requests 3 --items 20".
load: $(VENV)/.installed
	$(PY) -m bench.load $(LOAD_ARGS)

# Speed against the peers, side by side in one run (about 15 min here; bench/speed.md and its chart), with the
# demo model's ONNX Runtime exports measured beside PyTorch and sentence-transformers. Options go in BENCH_ARGS, e.g. make bench BENCH_ARGS="--quick".
bench: $(VENV)/.installed $(MODEL_DIR)/onnx/agreement.json
	$(PY) -m bench.speed --model $(MODEL_DIR) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) models runs .pytest_cache .ruff_cache
