# Tidings. `make run` serves the demo; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench bench-feed bench-inbound bench-dashboard web inbound worker beat clean

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

# bench.feed builds the 1M-activity data set (progress bar on stderr) unless a matching one is
# there; bench.dashboard copies it, so it runs after.
bench: install
	$(BIN)/python -m bench
	$(BIN)/python -m bench.feed
	$(BIN)/python -m bench.inbound --web 2
	$(BIN)/python -m bench.dashboard

# The timeline and home-feed pages against django-activity-stream (docs/benchmarks-feed.md).
bench-feed: install
	$(BIN)/python -m bench.feed

# The inbound email benchmark alone (docs/benchmarks-inbound.md).
bench-inbound: install
	$(BIN)/python -m bench.inbound --web 2

# The team dashboard and the request queue on the 1M-activity data set (docs/benchmarks-dashboard.md).
bench-dashboard: install
	$(BIN)/python -m bench.dashboard

# The single processes, as docker-compose.yml runs them.
web: install
	$(BIN)/python -m config.processes web

# The inbound email tier (uvicorn; the balancer sends /integrations/email/inbound/ to it).
inbound: install
	$(BIN)/python -m config.processes inbound

worker: install
	$(BIN)/python -m config.processes worker

beat: install
	$(BIN)/python -m config.processes beat

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
