# Streaming medallion lakehouse. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
LAKEHOUSE := $(VENV)/bin/python -m lakehouse
# Which stack up/down/status/reset act on (Docker Compose or embedded): lakehouse/bootstrap/modes.py.
MODE := $(PYTHON) -m lakehouse.bootstrap.modes
MODE_ARGS ?=
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup up down status catalog-init test test-fast lint bench reset docker-smoke docker-env

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install what is missing: Debian packages, both virtualenvs, jars from Maven Central, the project's Flink functions (built with Maven), the S3 server, a local .env (idempotent)
	@$(PYTHON) -m lakehouse.bootstrap

up: ## Start everything (S3, Kafka, PostgreSQL, the Flink cluster, Airflow, JupyterLab), run the demo, print where to look: in Docker when `docker info` and `docker compose version` work, else embedded (after make setup); LAKEHOUSE_MODE=docker|embedded chooses
	@$(MODE) up $(MODE_ARGS)

down: ## Stop the stack of the mode `make up` chose (recorded in .state/mode); all data is kept
	@$(MODE) down $(MODE_ARGS)

status: ## Show the state and health of every service (of the recorded mode); exit 1 if any is unhealthy
	@$(MODE) status $(MODE_ARGS)

docker-smoke: ## Docker mode end to end, for contributors with Docker (not run in CI): up in Docker with the demo, wait for gold rows, check them
	@LAKEHOUSE_MODE=docker $(MODE) smoke $(MODE_ARGS)

docker-env: ## Print the variables `docker compose` run by hand needs (image versions from the locks): eval "`make -s docker-env`"
	@$(MODE) env

catalog-init: ## Create missing tables and apply compatible schema changes from catalog/
	@$(LAKEHOUSE) catalog init

test: setup ## Run the whole test suite (starts its own services on free ports)
	@$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-fast: setup ## Run tests/unit: no services (a local SparkSession for the pure transforms)
	@$(VENV)/bin/python -m pytest tests/unit $(PYTEST_ARGS)

bench: setup ## Benchmarks on a private stack (medallion jobs, then streaming); prints figures, asserts nothing
	@$(VENV)/bin/python -m benchmarks.medallion $(MEDALLION_ARGS)
	@$(VENV)/bin/python -m benchmarks.stream_ingest $(STREAM_ARGS)

lint: setup ## Check style with ruff, and the import layers (import-linter, contracts in pyproject.toml)
	@$(VENV)/bin/ruff check lakehouse tests flink_jobs spark_jobs benchmarks dags && $(VENV)/bin/ruff format --check lakehouse tests flink_jobs spark_jobs benchmarks dags && $(VENV)/bin/lint-imports

reset: ## Stop the stack and delete all its data: .state/, and in Docker mode the volumes (asks first)
	@read -r -p "Delete all lakehouse data (buckets, topics, catalog: .state/, or the Docker volumes)? [y/N] " answer; \
	if [ "$$answer" = y ]; then $(MODE) reset $(MODE_ARGS); else echo "kept everything"; fi
