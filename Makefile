# MNIST Lab: `make run` starts the app, `make test` runs lint and every test.
# Both create .venv on first use and reinstall only when a requirements file changes.

PYTHON ?= python3
VENV ?= .venv
PORT ?= 8501
ADDRESS ?= localhost
# Streamlit's file watcher is off: a code change reloads the pages' modules and a
# running job drops out of view. `make run WATCH=auto` live-reloads while you develop.
WATCH ?= none

BIN := $(VENV)/bin
# One stamp per requirements set: newer requirements files trigger a reinstall.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint bench venv

run: $(RUN_STAMP)
	$(BIN)/streamlit run app.py \
		--server.headless true \
		--server.address $(ADDRESS) \
		--server.port $(PORT) \
		--server.fileWatcherType $(WATCH) \
		--browser.gatherUsageStats false

test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest
	# The unit tests once more with the fast CPU path off (mnist_core.fast): the plain path stays right.
	MNIST_LAB_FAST_PATH=0 $(BIN)/pytest -q -m "not slow" tests/unit

bench: $(RUN_STAMP)
	$(BIN)/python -m benchmarks

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

venv: $(DEV_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -r requirements.txt
	touch $@

$(DEV_STAMP): requirements-dev.txt requirements-ray.txt requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -r requirements-dev.txt
	touch $@ $(RUN_STAMP)
