# Tidings. `make run` serves the demo; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench web worker beat clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/python scripts/run.py

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m bench

# The single processes, as docker-compose.yml runs them.
web: install
	$(BIN)/daphne -b $${HOST:-127.0.0.1} -p $${PORT:-8000} config.asgi:application

worker: install
	$(BIN)/celery -A config worker --loglevel INFO

beat: install
	$(BIN)/celery -A config beat --loglevel INFO

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
