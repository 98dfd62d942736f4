# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
CORPUS ?= corpus
INDEX ?= index
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup run index test lint format bench bench-build bench-speed bench-scale train-reader calibrate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: pip takes the CPU build from this machine's disk;
	# an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	# Export both models to ONNX once (cached under ~/.cache/article-qa, keyed by the weights).
	$(BIN)/python -m retrieval.runtime
	touch $(STAMP)

setup: $(STAMP)

index: setup
	$(BIN)/article-qa build --corpus $(CORPUS) --index $(INDEX)

run: index
	$(BIN)/streamlit run app.py --server.port $(PORT) -- --corpus $(CORPUS) --index $(INDEX)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: setup lint
	$(BIN)/pytest

# The SQuAD benchmark (data in ../shared/data, never copied here); see README.
DATA ?= ../shared/data
RESULTS ?= bench-results
bench: setup
	mkdir -p $(RESULTS)
	$(BIN)/article-qa eval --articles $(DATA)/squad-dev-tune.json --articles $(DATA)/squad-dev-test.json \
		--questions $(DATA)/squad-dev-test.json --limit 2000 --seed 0 --json $(RESULTS)/standard.json
	$(BIN)/article-qa eval --articles $(DATA)/squad-dev-test.json --questions $(DATA)/squad-dev-test.json \
		--unanswerable $(DATA)/squad-dev-tune.json --limit 1000 --seed 0 --json $(RESULTS)/abstention.json
	$(BIN)/article-qa eval --articles $(DATA)/squad-dev-test.json \
		--questions $(DATA)/squad2-dev-test.json --seed 0 --json $(RESULTS)/same-topic.json
	$(BIN)/article-qa eval --articles $(DATA)/squad-dev-tune.json --articles $(DATA)/squad-dev-test.json \
		--natural --split held-out --seed 0 --json $(RESULTS)/natural.json

# Retrains the span reader on the tune half only, in three stages (about two hours on 2 cores):
# SQuAD's questions (capped at 80 min); one epoch more from those weights in which half of
# the questions also come without some of the words they copied from their sentence; one more
# with, besides, the natural set's questions over the 11 articles `make calibrate` never
# indexes, five times each (so the confidence is still fitted on natural questions it never saw).
train-reader: setup
	nice -n 5 $(BIN)/python -m retrieval.training --data $(DATA)/squad-dev-tune.json --out retrieval/reader
	nice -n 5 $(BIN)/python -m retrieval.training --data $(DATA)/squad-dev-tune.json --out retrieval/reader \
		--init retrieval/reader --drop-words 0.5 --epochs 1 --lr 3e-5 --max-minutes 30
	nice -n 5 $(BIN)/python -m retrieval.training --data $(DATA)/squad-dev-tune.json --out retrieval/reader \
		--init retrieval/reader --drop-words 0.5 --natural 5 --epochs 1 --lr 3e-5 --max-minutes 30

# Refits answer selection, confidence, the shipped threshold and the confidence words on the
# tune half (about 15 minutes; `--evidence FILE` makes a refit of the same reader take seconds).
calibrate: setup
	$(BIN)/python -m retrieval.calibrate --data $(DATA)

# Incremental-build figures: a full build of 24 articles against adding one and changing none.
bench-build: setup
	mkdir -p $(RESULTS)
	$(BIN)/article-qa eval-build --articles $(DATA)/squad-dev-tune.json \
		--add $(DATA)/squad-dev-test.json --json $(RESULTS)/build.json

# The index at 100,000 and 1,000,000 passages: the evaluation articles among synthetic ones.
# The 1M build peaks near 19 GB of memory and writes 7.4 GB to the temp folder (about 22 min).
bench-scale: setup
	mkdir -p $(RESULTS)
	$(BIN)/article-qa eval-scale --data $(DATA) --passages 100000 --passages 1000000 \
		--questions 200 --json $(RESULTS)/scale.json

# Each way of running the models on the same texts: sentence-transformers, ONNX Runtime fp32/int8.
bench-speed: setup
	mkdir -p $(RESULTS)
	$(BIN)/article-qa eval-speed --articles $(DATA)/squad-dev-test.json --json $(RESULTS)/speed.json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
