# The two set-up commands: `make demo` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo lab labextension guides test lint typecheck mutation format bench services clean guard-range

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

# an editable install does not copy data files: link the prebuilt JupyterLab extension.
# jupysql-plugin (installed with jupysql) forces Python on every editor that is not %%sql
# and fails to start on JupyterLab 4.6; ours highlights %%sql too, so it is switched off.
LABEXT := $(VENV)/share/jupyter/labextensions/hybridwb-sql-cells
define link_labextension
	mkdir -p $(dir $(LABEXT))
	ln -sfn $(CURDIR)/hybridwb/labextension $(LABEXT)
	-$(BIN)/jupyter labextension disable --level=sys_prefix jupysql-plugin
endef

$(VENV)/.lab: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[demo,workflows,notebook]'
	$(link_labextension)
	touch $(VENV)/.base $(VENV)/.demo $@

# make test: dev tools with every extra
# (the mysqlclient extra builds against the MariaDB client library: scripts/build_deps.sh)
$(VENV)/.dev: $(BIN)/python pyproject.toml
	bash scripts/build_deps.sh
	$(BIN)/pip install -q -e '.[dev]'
	$(link_labextension)
	touch $(VENV)/.base $(VENV)/.demo $(VENV)/.lab $@

demo: $(VENV)/.demo
	$(BIN)/hybridwb demo

# JupyterLab on this project, hybridwb loaded in every kernel, the guides in notebooks/guides
lab: $(VENV)/.lab
	$(BIN)/hybridwb lab

# rebuild the SQL-cell extension (needs Node/npm; the built files in hybridwb/labextension are
# committed, so nobody else needs Node)
labextension: $(VENV)/.lab
	cd labextension && npm install --no-audit --no-fund && PATH=$(CURDIR)/$(BIN):$$PATH npm run build

services:
	bash scripts/services.sh

# regenerate the guides' committed outputs on the seeded sample (strict nbval in
# tests/test_guides.py compares every cell with them); review with `git diff notebooks/guides`
guides: $(VENV)/.dev
	$(BIN)/python scripts/regen_guides.py

# lint (ruff and mypy) first: CI runs `make test` only
# four workers on two cores: tests also wait (kernels starting, servers stopped on purpose,
# pauses between batches, retries), and more workers fill it (fresh clones on this 2-core
# machine: pytest 921 s with two workers, 820 s with three (stop 35); 749 s with four for
# 10,029 tests (stop 36), where three had taken 809-866 s for 9,794; 774-958 s for 10,242
# at stop 37 and 38, and six workers 1,019 s: the two cores are busy throughout, so only less
# work helps; 701 s for 10,264 once PostgreSQL test stores were copied from a migrated
# template, stop 38)
# bytecode is written even where the environment says not to (PYTHONDONTWRITEBYTECODE): every
# CLI command and kernel the tests start would compile hybridwb again, and each worker
# would rewrite every test module's asserts again
# `-p no:nbval`: nbval's plugin imports nbformat, whose jsonschema builds rfc3987-syntax's IRI
# grammar (~1 CPU-s in each of the five pytest processes); only tests/test_guides.py uses
# nbval, in a pytest of its own that loads the plugin itself
test: lint services
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -p no:nbval -n 4 --dist loadfile --no-loadscope-reorder --durations=25

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# mypy alone over hybridwb/ (configuration in pyproject.toml [tool.mypy]; also in lint)
typecheck: $(VENV)/.dev
	$(BIN)/mypy

# Not part of `make test`: mutates the modules that carry guarantees and runs the fast tests
# that cover each mutant (pure and SQLite; platform.campaigns with its PostgreSQL tests;
# workflows.runner with a papermill stand-in and the tiny real-kernel runs); scores go to
# benchmarks/results/mutation.json. MODULES="guard binds" limits the run; `kill -USR1` on
# the script stops it after the current mutant and records what ran (partial).
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
