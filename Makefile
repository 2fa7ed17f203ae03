# The project's commands. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/
	$(BIN)/mypy --strict tests/typing/

# The suite, with coverage measured and its floor (pyproject.toml) enforced.
pytest: $(STAMP)
	$(BIN)/coverage run -m pytest
	$(BIN)/coverage report

# DEMO_ARGS: e.g. make demo DEMO_ARGS='--duration 10 --port 0'
demo: $(STAMP)
	$(BIN)/python -m seawall demo $(DEMO_ARGS)

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

# Every suite (a few minutes); prints the results and writes them to benchmarks/RESULTS.md.
bench: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
