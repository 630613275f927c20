# The two commands that matter: `make run` (the film on the embedded default) and `make test`.
# Both create .venv and install the pinned dependencies on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test lint dag bench review clean help

help:
	@echo "make run     set up .venv and make the film (results/demo/animation.gif)"
	@echo "make test    set up .venv and run the test suite"
	@echo "make lint    snakemake --lint"
	@echo "make dag     rule graph and a 3-checkpoint DAG as SVG (needs Graphviz)"
	@echo "make bench   benchmarks (writes benchmarks/RESULTS.md tables)"

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES)

test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run.py --scale $(or $(SCALE),full) --update-results benchmarks/RESULTS.md
