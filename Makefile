# songqueue: `make demo` runs one real job end to end; `make test` runs the test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUEUES ?= submit,poll,download
CONCURRENCY ?= 2

.PHONY: demo test worker sandbox flower install clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python deploy/local/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

# One worker on every queue; honours SONGQUEUE_* from the environment or .env.
worker: $(STAMP)
	$(BIN)/celery -A workers.celery_app worker -Q $(QUEUES) -c $(CONCURRENCY) --loglevel INFO

sandbox: $(STAMP)
	$(BIN)/songqueue sandbox --port $${SANDBOX_PORT:-8808}

flower: $(STAMP)
	$(BIN)/celery -A workers.celery_app flower

clean:
	rm -rf $(VENV) var .pytest_cache
