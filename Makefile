# Chimera Monitor: the commands people and CI use.
#   make demo   set up everything and run the system until Ctrl-C
#   make lock   regenerate requirements.lock (pinned dependencies with hashes)
#   make test   the whole test suite (starts Kafka and PostgreSQL if needed)
#   make up / make down / make status   the whole local stack in the background:
#               Kafka, PostgreSQL, the four services, Prometheus, Alertmanager and the exporters
#   make infra  Kafka and PostgreSQL alone (migrated, with their topics)
#   make bench  every benchmark in bench/ (not part of make test), results in bench/results/
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Pinned dependencies with hashes (`make lock` rewrites it).
LOCK := requirements.lock
LOCK_VENV := $(VENV)/.pip-tools
PIP_TOOLS := pip-tools==7.6.2
LOCK_ARGS ?=
# Where `chimera dev up` writes the endpoints: the state folder's stack.env.
STACK_ENV := $(or $(CHIMERA_STATE_DIR),.chimera)/stack.env
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: install lock infra up down status test unit bench demo schemas migrate topics retention clean

# The console's browser tests need Debian's chromium and chromium-driver: installed here
# (as root, with apt-get) when missing, found in a moment otherwise; never a download at test time.
install: $(VENV)/.installed
	@$(BIN)/chimera dev binaries

# Every dependency (the test extra included) comes pinned, with its hashes, from
# $(LOCK); the project itself is installed on top without resolving anything.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Regenerate $(LOCK) from pyproject.toml (after changing a dependency there, or
# to take newer versions: LOCK_ARGS=--upgrade). pip-tools lives in its own venv
# inside $(VENV); hashes are the index's, so local find-links are left out.
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet $(PIP_TOOLS)
	env -u PIP_FIND_LINKS $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
		--strip-extras --extra test --extra bench --output-file $(LOCK) $(LOCK_ARGS) pyproject.toml
	env -u PIP_FIND_LINKS $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
		--strip-extras --output-file bench/peers/requirements.lock $(LOCK_ARGS) bench/peers/requirements.in

# The tests and the demo need only these (the demo runs its own services; the
# tests would share the machine's cores with four idle services).
infra: install
	$(BIN)/chimera dev up --infra

up: install
	$(BIN)/chimera dev up

down:
	@if [ -x $(BIN)/chimera ]; then $(BIN)/chimera dev down; else echo "nothing installed, nothing running"; fi

# `chimera dev status` exits 3 when a part is not running: a state to show, not a failure of make.
status: install
	@$(BIN)/chimera dev status || [ $$? -eq 3 ]

test: infra
	source $(STACK_ENV) && $(BIN)/python -m pytest $(PYTEST_ARGS)

# Minutes of load on Kafka and PostgreSQL: kept out of `make test`. BENCH_ARGS=--quick checks the
# harness in a minute or two; BENCH_ARGS='--only aggregator' runs one.
bench: infra
	source $(STACK_ENV) && $(BIN)/python bench/run_all.py $(BENCH_ARGS)

unit: install
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

demo: infra
	source $(STACK_ENV) && $(BIN)/chimera demo

schemas: install
	$(BIN)/chimera schemas

migrate topics retention: infra
	source $(STACK_ENV) && $(BIN)/chimera $@

clean: down
	rm -rf .chimera $(VENV)
