# Streaming medallion lakehouse. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
LAKEHOUSE := $(VENV)/bin/python -m lakehouse
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup up down status catalog-init test test-fast lint bench reset

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install what is missing: Debian packages, both virtualenvs, jars from Maven Central, the S3 server, a local .env (idempotent)
	@$(PYTHON) -m lakehouse.bootstrap

up: setup ## Start everything (S3, Kafka, PostgreSQL, the Flink cluster, Airflow, JupyterLab), run the demo, print where to look
	@$(LAKEHOUSE) up

down: ## Stop the embedded stack; all data is kept
	@if [ -x $(VENV)/bin/python ]; then $(LAKEHOUSE) down; else echo "nothing to stop (not set up)"; fi

status: ## Show the state and health of every service
	@$(LAKEHOUSE) status

catalog-init: ## Create missing tables and apply compatible schema changes from catalog/
	@$(LAKEHOUSE) catalog init

test: setup ## Run the whole test suite (starts its own services on free ports)
	@$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-fast: setup ## Run only the tests that need no services
	@$(VENV)/bin/python -m pytest -m "not services and not spark" $(PYTEST_ARGS)

bench: setup ## Benchmarks on a private stack (medallion jobs, then streaming); prints figures, asserts nothing
	@$(VENV)/bin/python -m benchmarks.medallion $(MEDALLION_ARGS)
	@$(VENV)/bin/python -m benchmarks.stream_ingest $(STREAM_ARGS)

lint: setup ## Check style with ruff
	@$(VENV)/bin/ruff check lakehouse tests flink_jobs spark_jobs benchmarks dags && $(VENV)/bin/ruff format --check lakehouse tests flink_jobs spark_jobs benchmarks dags

reset: ## Stop the stack and delete all local data (asks first)
	@read -r -p "Delete all lakehouse data in .state/ (buckets, topics, catalog)? [y/N] " answer; \
	if [ "$$answer" = y ]; then \
		$(MAKE) --no-print-directory down; \
		if [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python -c 'from lakehouse.settings import load_settings; from lakehouse.services.embedded import postgres_data_dir; import shutil; s = load_settings(); shutil.rmtree(postgres_data_dir(s), ignore_errors=True); shutil.rmtree(s.state_dir, ignore_errors=True); print("deleted", s.state_dir)'; fi; \
	else echo "kept everything"; fi
