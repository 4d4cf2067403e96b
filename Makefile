# The two set-up commands: `make demo` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo lab test lint typecheck mutation format bench services clean guard-range

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.base: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

# the demo needs the sample data (demo) and papermill (workflows) extras
$(VENV)/.demo: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[demo,workflows]'
	touch $(VENV)/.base $@

$(VENV)/.lab: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[demo,workflows,notebook]'
	touch $(VENV)/.base $(VENV)/.demo $@

# make test: dev tools with every extra
$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)/.base $(VENV)/.demo $(VENV)/.lab $@

demo: $(VENV)/.demo
	$(BIN)/hybridwb demo

# JupyterLab on this project, hybridwb loaded in every kernel, the guides in notebooks/guides
lab: $(VENV)/.lab
	$(BIN)/hybridwb lab

services:
	bash scripts/services.sh

test: $(VENV)/.dev services
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest --durations=25

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy over hybridwb/ (configuration in pyproject.toml [tool.mypy])
typecheck: $(VENV)/.dev
	$(BIN)/mypy

# Not part of `make test`: mutates the modules that carry guarantees and runs the fast tests
# that cover each mutant (pure and SQLite, no servers); scores go to
# benchmarks/results/mutation.json. MODULES="guard binds" limits the run.
mutation: $(VENV)/.dev
	$(BIN)/python benchmarks/mutation.py $(MODULES)

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.dev services
	$(BIN)/python benchmarks/run.py

guard-range: $(VENV)/.dev
	bash scripts/sqlglot_range.sh

clean:
	rm -rf $(VENV) .hybridwb reports/demo .pytest_cache
