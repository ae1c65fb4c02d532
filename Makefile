# The two commands of the quick start, and the checks around them.
# Each target creates .venv and installs the project into it when needed.

VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed-stamp

# The database tests run on SQLite and on this PostgreSQL server.
export GPUBROKER_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: demo test test-deps lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# `make demo PORT=8001 HOST=0.0.0.0` to serve elsewhere than 127.0.0.1:8000.
PORT ?= 8000
HOST ?= 127.0.0.1

demo: $(STAMP)
	$(VENV)/bin/gpubroker serve --demo --host $(HOST) --port $(PORT)

# PostgreSQL, Chromium and a Docker engine, installed or started where missing (needs root then).
test-deps:
	bash scripts/test-deps.sh

test: $(STAMP) test-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(VENV)/bin/python scripts/bench_search.py
	$(VENV)/bin/python scripts/bench_ledger.py
	$(VENV)/bin/python scripts/bench_rentals.py
	$(VENV)/bin/python scripts/bench_proxy.py
