# songqueue: `make demo` runs one real job end to end; `make test` runs the test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUEUES ?= submit,poll,download
CONCURRENCY ?= 2

.PHONY: demo test worker beat sandbox flower faults bench bench-quick install clean

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

# Benchmarks (bench/): markdown tables on stdout and in bench/results/latest.md. Private
# Redis, sandbox and workers per benchmark; the full run takes about half an hour on 2 cores.
.PHONY: bench bench-quick
# Every fault scenario with the default watchdog settings; prints the report table.
# FAULT_ARGS="--amqp amqp://guest:guest@127.0.0.1:5672/songqueue-ci" runs it on RabbitMQ.
faults: $(STAMP)
	$(BIN)/python tests/fault_scenarios.py --jobs $${FAULT_JOBS:-10} $(FAULT_ARGS)

# The watchdog's clock (and, later, scheduled playlists): run exactly one.
beat: $(STAMP)
	mkdir -p var && $(BIN)/celery -A workers.celery_app beat --loglevel INFO --schedule var/celerybeat-schedule

bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-quick: $(STAMP)
	$(BIN)/python bench/run.py --quick

clean:
	rm -rf $(VENV) var .pytest_cache
