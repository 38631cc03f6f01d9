# make run   - set up .venv and run the service on the embedded default (SQLite + local KEK)
# make test  - set up .venv and run every check: ruff, mypy, import contracts, pytest
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint proto bench

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e clients/python -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/keysvc serve --dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

proto: $(STAMP)
	$(BIN)/python clients/python/genproto.py

bench: $(STAMP)
	$(BIN)/python -m bench.encrypt
