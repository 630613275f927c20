# The two commands that matter: `make run` (the film on the embedded default) and `make test`.
# Both create .venv and install the pinned dependencies on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test lint format dag bench review report clean help watch compare slurm

help:
	@echo "make run     set up .venv and make the film (results/demo/animation.gif)"
	@echo "make test    set up .venv and run the test suite"
	@echo "make lint    ruff, ruff format --check, snakefmt --check, snakemake --lint (make format fixes)"
	@echo "make dag     rule graph and a 3-checkpoint DAG as SVG (needs Graphviz)"
	@echo "make report  the HTML report of results/demo (report.html)"
	@echo "make review  open results/\$$(RUN)/review.parquet in Renumics Spotlight (RUN=demo; first use installs .venv-review)"
	@echo "make bench   benchmarks (writes benchmarks/RESULTS.md tables)"
	@echo "make watch   CONFIG=... film a fine-tuning while it runs (checkpoints: = the Trainer's output_dir)"
	@echo "make compare the demo at two learning rates, side by side (results/compare/lr/)"
	@echo "make slurm   install the SLURM executor plugin (for --workflow-profile profiles/slurm)"

# The pinned dependencies, then this package (embedding_film, the `embedding-film` command) in editable mode
# without its dependencies, so nothing re-resolves what requirements.txt pinned.
$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# `make slurm`: the SLURM executor plugin in .venv, for --workflow-profile profiles/slurm (docs/cluster.md).
slurm: $(BIN)/.installed-slurm

$(BIN)/.installed-slurm: $(BIN)/.installed requirements-slurm.txt
	$(BIN)/python -m pip install --quiet -r requirements-slurm.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES)

# `make compare`: configs/compare.yaml, the demo and the demo at a tenth of its learning rate, side by side.
compare: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) --configfile configs/compare.yaml

test: $(BIN)/.installed
	$(BIN)/python -m pytest

# `make lint`: ruff (lint, then format check) on the Python, snakefmt on the Snakemake files, snakemake --lint.
# `make format` rewrites the files the way the two checks want them.
LINTED := workflow_scripts tests benchmarks
SMK := Snakefile rules

lint: $(BIN)/.installed
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/snakefmt --check --line-length 120 $(SMK)
	$(BIN)/snakemake --lint

format: $(BIN)/.installed
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/snakefmt --line-length 120 $(SMK)

clean:
	rm -rf results .snakemake

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run.py --scale $(or $(SCALE),full) --repeat $(or $(REPEAT),1) --update-results benchmarks/RESULTS.md

# `make review RUN=demo [TABLE=train_review] [REVIEW_PORT=8765]`: results/$(RUN)/review.parquet (the eval images,
# first vs last checkpoint; TABLE=train_review: the training images by likely label error) in Renumics Spotlight, served on
# 127.0.0.1 until Ctrl-C (the address is printed; open it in a browser). Spotlight is an optional extra in its
# own environment, .venv-review, installed from requirements-review.txt on first use (about 1.4 GB): it
# needs pandas 2, the workflow pins pandas 3. See docs/review.md.
REVIEW_VENV := .venv-review
RUN ?= demo
TABLE ?= review
REVIEW_PORT ?= 0

$(REVIEW_VENV)/bin/.installed: requirements-review.txt
	@echo "Installing Renumics Spotlight into $(REVIEW_VENV) from requirements-review.txt (first use: about a minute, 1.4 GB)"
	$(PYTHON) -m venv $(REVIEW_VENV)
	$(REVIEW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(REVIEW_VENV)/bin/python -m pip install --quiet -r requirements-review.txt
	touch $@

review:
	@test -f results/$(RUN)/$(TABLE).parquet || { echo "results/$(RUN)/$(TABLE).parquet not found: make it first (\`make run\` makes results/demo)." >&2; exit 1; }
	@$(MAKE) --no-print-directory -s $(REVIEW_VENV)/bin/.installed
	@test "$(TABLE)" != review || ! test -f results/$(RUN)/train_review.parquet || echo "(the training images ranked by likely label error: make review TABLE=train_review)"
	$(REVIEW_VENV)/bin/python workflow_scripts/embedding_film/cli/spotlight_launch.py results/$(RUN)/$(TABLE).parquet --port $(REVIEW_PORT)

# --- make dag / make report (docs/dag.md, docs/report.md) ---------------------------------------------
# `make dag`: the rule graph of the default config and the job DAG of a 3-checkpoint film, as SVG in
# dag/ (git-ignored), plus that film's dry-run plan. Needs Graphviz's `dot` (Debian: graphviz).
DAG_DIR ?= dag
.PHONY: report
dag: $(BIN)/.installed
	@command -v dot >/dev/null || { echo "make dag needs Graphviz's dot (Debian/Ubuntu: apt-get install graphviz)" >&2; exit 1; }
	mkdir -p $(DAG_DIR)
	printf 'run: dag-example    # written by make dag: 3 checkpoints (steps 0, 5, 10)\ntraining:\n  max_steps: 10\n  save_steps: 5\n' > $(DAG_DIR)/3-checkpoints.yaml
	set -o pipefail; $(BIN)/snakemake --rulegraph | dot -Tsvg > $(DAG_DIR)/rulegraph.svg
	set -o pipefail; $(BIN)/snakemake --dag --configfile $(DAG_DIR)/3-checkpoints.yaml | dot -Tsvg > $(DAG_DIR)/dag-3-checkpoints.svg
	$(BIN)/snakemake -n --quiet rules --configfile $(DAG_DIR)/3-checkpoints.yaml > $(DAG_DIR)/dry-run-3-checkpoints.txt
	@echo "wrote $(DAG_DIR)/rulegraph.svg, $(DAG_DIR)/dag-3-checkpoints.svg, $(DAG_DIR)/dry-run-3-checkpoints.txt"

# `make report`: the film's HTML report, results/<run>/report.html (e.g. make report
# CONFIG=configs/cifar10-vit.yaml). Builds what is missing first, including the report-only loss curve
# and film player (rules/report.smk). The run's name is the config's run: (config.yaml + CONFIG), or RUN=.
REPORT_RUN = $(if $(filter command line,$(origin RUN)),$(RUN),$(shell $(BIN)/python -c 'import sys, yaml; c = {}; [c.update(yaml.safe_load(open(f)) or {}) for f in sys.argv[1:]]; print(c.get("run", "demo"))' config.yaml $(CONFIG)))
REPORT_TARGETS := all report_extras
report: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) $(REPORT_TARGETS) $(if $(CONFIG),--configfile $(CONFIG))
	$(BIN)/snakemake $(REPORT_TARGETS) --report results/$(REPORT_RUN)/report.html $(if $(CONFIG),--configfile $(CONFIG))
	@echo "open results/$(REPORT_RUN)/report.html in a browser"

# `make watch CONFIG=path/to/config.yaml`: film a fine-tuning while it runs (CONFIG's checkpoints: is the
# Trainer's output_dir). Rounds of the workflow as checkpoints appear; Ctrl-C stops cleanly (docs/live.md).
.PHONY: watch
watch: $(BIN)/.installed
	@test -n "$(CONFIG)" || { echo "make watch needs CONFIG=path/to/config.yaml with checkpoints: set to the Trainer's output_dir" >&2; exit 1; }
	$(BIN)/python -m embedding_film.cli.watch --cores $(CORES) --configfile $(CONFIG) $(if $(QUIET),--quiet $(QUIET))
