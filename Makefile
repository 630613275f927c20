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

# `make review RUN=demo [REVIEW_PORT=8765]`: results/$(RUN)/review.parquet in Renumics Spotlight, served on
# 127.0.0.1 until Ctrl-C (the address is printed; open it in a browser). Spotlight is an optional extra in its
# own environment, .venv-review, installed from requirements-review.txt on first use (about 1.4 GB): it
# needs pandas 2, the workflow pins pandas 3. See docs/review.md.
REVIEW_VENV := .venv-review
RUN ?= demo
REVIEW_PORT ?= 0

$(REVIEW_VENV)/bin/.installed: requirements-review.txt
	@echo "Installing Renumics Spotlight into $(REVIEW_VENV) from requirements-review.txt (first use: about a minute, 1.4 GB)"
	$(PYTHON) -m venv $(REVIEW_VENV)
	$(REVIEW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(REVIEW_VENV)/bin/python -m pip install --quiet -r requirements-review.txt
	touch $@

review:
	@test -f results/$(RUN)/review.parquet || { echo "results/$(RUN)/review.parquet not found: make it first (\`make run\` makes results/demo)." >&2; exit 1; }
	@$(MAKE) --no-print-directory -s $(REVIEW_VENV)/bin/.installed
	$(REVIEW_VENV)/bin/python workflow_scripts/spotlight_launch.py results/$(RUN)/review.parquet --port $(REVIEW_PORT)
