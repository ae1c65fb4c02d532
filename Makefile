# The two commands of the quick start, and the checks around them.
# Each target creates .venv and installs the project into it when needed.

VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed-stamp

# The database tests run on SQLite and on this PostgreSQL server.
export GPUBROKER_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: demo test lint bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gpubroker serve --demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(VENV)/bin/python scripts/bench_search.py
	$(VENV)/bin/python scripts/bench_ledger.py
