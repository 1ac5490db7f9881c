# The two commands of the README:
#   make run    start a worker with an embedded nats-server and the demo agents
#   make test   every lint, type check and test (what CI runs)

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	WORKER_DEMO_AGENTS=true WORKER_STATE_DIR=$${WORKER_STATE_DIR:-.state} \
	WORKER_LOG_FORMAT=$${WORKER_LOG_FORMAT:-console} $(BIN)/agentos-worker

lint: $(STAMP)
	$(BIN)/ruff check worker tests bench
	$(BIN)/ruff format --check worker tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.http

clean:
	rm -rf $(VENV) .state .pytest_cache .mypy_cache .ruff_cache
