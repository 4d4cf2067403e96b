# The two set-up commands: `make demo` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint format bench services clean guard-range

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.base: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)/.base $@

demo: $(VENV)/.base
	$(BIN)/hybridwb demo

services:
	bash scripts/services.sh

test: $(VENV)/.dev services
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.dev services
	$(BIN)/python benchmarks/run.py

guard-range: $(VENV)/.dev
	bash scripts/sqlglot_range.sh

clean:
	rm -rf $(VENV) .hybridwb reports/demo .pytest_cache
