# songqueue: `make demo` runs one real job end to end; `make test` runs the test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUEUES ?= submit,poll,download,callback
CONCURRENCY ?= 2
IO_CONCURRENCY ?= 16

.PHONY: demo test lint worker worker-io beat sandbox api hooks flower metrics browser promtool node docker-compose wrk faults hosts bench bench-quick bench-100k install clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# ruff (pyflakes, pycodestyle, import order, bugbear, ...) and mypy, configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/python deploy/local/demo.py

# Integration tests spend most of their time waiting on sandbox generation timers, so six
# processes share two cores. --dist worksteal: an idle process takes tests queued on a busy
# one; with the default (each process handed a run of consecutive tests up front) one process
# was left with a row of the slow fault tests and the 1,456 tests took 10.4 min, 6.5 with
# stealing (same clone, nothing else running, 6 Dec 2026). Bytecode is written even where
# PYTHONDONTWRITEBYTECODE is set: every worker, API and CLI process the tests start would
# otherwise compile the project again. -rs prints why each skipped test skipped; under CI=true
# a missing prerequisite fails instead.
test: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest -q -rs -n $${TEST_PROCESSES:-6} --dist worksteal

# One worker on every queue; honours SONGQUEUE_* from the environment or .env.
worker: $(STAMP)
	$(BIN)/celery -A workers.celery_app worker -Q $(QUEUES) -c $(CONCURRENCY) --loglevel INFO

# The I/O-bound steps (download, finalize, callback) on threads: a backlog drains at the
# speed of the disk and the network, not of CONCURRENCY slots. Pair it with
# `make worker QUEUES=submit,poll` (docs/operations.md, "Worker layout").
worker-io: $(STAMP)
	$(BIN)/celery -A workers.celery_app worker -Q download,callback --pool threads -c $(IO_CONCURRENCY) --loglevel INFO

sandbox: $(STAMP)
	$(BIN)/songqueue sandbox --port $${SANDBOX_PORT:-8808}

# The HTTP API (docs/http-api.md): API_HOST= (default 127.0.0.1), API_PORT= (default 8800).
api: $(STAMP)
	$(BIN)/songqueue api --host $${API_HOST:-127.0.0.1} --port $${API_PORT:-8800}

# The notify hook the gateways call; point SONGQUEUE_NOTIFY_HOOK_URL at http://HOST:PORT/hooks/udio.
hooks: $(STAMP)
	$(BIN)/songqueue hooks --host $${HOOKS_HOST:-127.0.0.1} --port $${HOOKS_PORT:-8809}

# Flower with basic auth from SONGQUEUE_FLOWER_USER/_PASSWORD (refuses to start without);
# FLOWER_ARGS="--port 5555 --insecure" to change.
flower: $(STAMP)
	$(BIN)/songqueue flower $(FLOWER_ARGS)

# Prometheus metrics of jobs, providers, spend and queues on 127.0.0.1:$${METRICS_PORT:-9808}/metrics.
metrics: $(STAMP)
	$(BIN)/songqueue metrics --port $${METRICS_PORT:-9808}

# Headless Chromium and its driver for the Flower browser test (Debian packages; quiet and
# idempotent; needs root or sudo; the test skips with the reason when they are missing, fails under CI=true).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  $$SUDO apt-get update -qq >/dev/null 2>&1 && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
	  || echo "make browser: could not install chromium and chromium-driver; the Flower browser test will skip"; }

# promtool (Debian's prometheus package) for the metrics and alert-rules checks; quiet and
# idempotent like `make browser`; the tests skip with the reason without it, fail under CI=true.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  $$SUDO apt-get update -qq >/dev/null 2>&1 && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 \
	  || echo "make promtool: could not install prometheus (promtool); the promtool checks will skip"; }

# Node.js and npm (Debian's packages) for the Node webhook receiver test, which installs the
# `standardwebhooks` npm package into var/node-cache itself; same pattern as `make browser`.
node:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  $$SUDO apt-get update -qq >/dev/null 2>&1 && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null 2>&1 \
	  || echo "make node: could not install nodejs and npm; the Node webhook receiver test will skip"; }

# docker-compose (Debian's package) to validate deploy/docker-compose.yml in the tests; same pattern.
docker-compose:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  $$SUDO apt-get update -qq >/dev/null 2>&1 && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1 \
	  || echo "make docker-compose: could not install docker-compose; the compose check will skip"; }

# wrk (Debian's package) for the HTTP API benchmark's wrk rows (bench/http_api.py), which drive the API
# from C so the Python client's CPU does not cap it; same pattern; the rows skip with a note without it.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  $$SUDO apt-get update -qq >/dev/null 2>&1 && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 \
	  || echo "make wrk: could not install wrk; the HTTP API benchmark's wrk rows will skip"; }

# The fault report (docs/faults.md): every row (crash point x provider, upstream faults,
# Redis SIGKILL, disk full, ...) with every invariant checked per job; prints the table.
# FAULTS="minimax,Redis SIGKILL" runs the rows whose name contains any of these; FAULT_JOBS=N
# jobs per row (3); FAULT_ARGS="--amqp amqp://guest:guest@127.0.0.1:5672/songqueue-ci" runs
# it on RabbitMQ, FAULT_ARGS=--default-watchdog every row at the default watchdog settings.
# Then the many-hosts matrix below (its table printed, not written: `make hosts` writes it).
faults: $(STAMP)
	FAULTS="$(FAULTS)" $(BIN)/python tests/faults/fault_scenarios.py --jobs $${FAULT_JOBS:-3} $(FAULT_ARGS)
	$(BIN)/python tests/faults/sentinel_failover.py --jobs $${FAULT_JOBS:-10}
	$(BIN)/python tests/hosts/matrix.py --jobs $${HOSTS_JOBS:-200} $(HOSTS_ARGS)

# Many hosts (docs/faults.md, "Many hosts"): every role in a network namespace of its own on a
# bridge (needs root and iproute2); every fault x its layout's settings (Sentinel trio: safe, default;
# Redis Cluster: cluster-safe, cluster-default; RabbitMQ cluster: rabbit, rabbit-classic), HOSTS_JOBS jobs
# per cell (200), the checker's table printed and written into docs/faults.md. HOSTS_ARGS=
# "--faults killed --settings safe --hold 5" narrows it. First the RabbitMQ cell test that is too
# slow for `make test` (tests/hosts/test_hosts_rabbit.py).
hosts: $(STAMP)
	HOSTS_RABBIT_TEST=1 $(BIN)/python -m pytest -q -rs tests/hosts/test_hosts_rabbit.py
	$(BIN)/python tests/hosts/matrix.py --jobs $${HOSTS_JOBS:-200} --write-docs $(HOSTS_ARGS)

# The scheduled playlists of SONGQUEUE_PLAYLISTS_DIR: run exactly one (every worker runs the watchdog itself).
beat: $(STAMP)
	mkdir -p var && $(BIN)/celery -A workers.celery_app beat --loglevel INFO --schedule var/celerybeat-schedule

# Benchmarks (bench/): markdown tables on stdout; a complete run on a quiet machine from a clean,
# committed tree is published to bench/results/latest-{full,quick}.md (docs/benchmarks.md). Private
# Redis, sandbox and workers per benchmark; the full run (10,000 jobs in flight) takes about 50 minutes on 2 cores.
bench: $(STAMP) wrk
	$(BIN)/python bench/run.py

bench-quick: $(STAMP) wrk
	$(BIN)/python bench/run.py --quick

# 100,000 jobs waiting at once (about 45 minutes on 2 cores), published alone to bench/results/latest-scale-100k.md.
bench-100k: $(STAMP)
	$(BIN)/python bench/run.py --long scale-100k

clean:
	rm -rf $(VENV) var .pytest_cache
