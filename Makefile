# Chimera Monitor: the commands people and CI use.
#   make demo   set up everything and run the system until Ctrl-C
#   make test   the whole test suite (starts Kafka and PostgreSQL if needed)
#   make up / make down / make status   the whole local stack in the background:
#               Kafka, PostgreSQL and the four services
#   make infra  Kafka and PostgreSQL alone (migrated, with their topics)
#   make bench  every benchmark in bench/ (not part of make test), results in bench/results/
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Where `chimera dev up` writes the endpoints: the state folder's stack.env.
STACK_ENV := $(or $(CHIMERA_STATE_DIR),.chimera)/stack.env
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: install infra up down status test unit bench demo schemas migrate topics retention clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

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
