# Chimera Monitor: the commands people and CI use.
#   make demo   set up everything and run the system until Ctrl-C
#   make test   the whole test suite (starts the local stack if needed)
#   make up / make down / make status   the local Kafka + PostgreSQL stack
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STACK_ENV := .chimera/stack.env
PYTEST_ARGS ?=

.PHONY: install up down status test unit demo schemas migrate topics retention clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

up: install
	$(BIN)/chimera dev up
	source $(STACK_ENV) && $(BIN)/chimera migrate && $(BIN)/chimera topics

down:
	@if [ -x $(BIN)/chimera ]; then $(BIN)/chimera dev down; else echo "nothing installed, nothing running"; fi

status: install
	$(BIN)/chimera dev status

test: up
	source $(STACK_ENV) && $(BIN)/python -m pytest $(PYTEST_ARGS)

unit: install
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

demo: up
	source $(STACK_ENV) && $(BIN)/chimera demo

schemas: install
	$(BIN)/chimera schemas

migrate topics retention: up
	source $(STACK_ENV) && $(BIN)/chimera $@

clean: down
	rm -rf .chimera $(VENV)
