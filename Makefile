# telegraf-bridge: `make run` and `make test` work on a fresh machine; both set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Seconds `make run` runs before stopping by itself; 0 runs until Ctrl-C.
DURATION ?= 60
PYTEST_ARGS ?=

.PHONY: help setup venv telegraf influxdb2 telegraf-armv6 armel-python taptap system-deps run test lint typecheck unit soak docs clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

setup: venv telegraf influxdb2 system-deps taptap ## Install everything: .venv, Telegraf, influxd 1.x and 2.x, mosquitto, taptap

venv: $(STAMP)

$(STAMP): pyproject.toml
	@scripts/check-python.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

telegraf: ## Build (or reuse from ~/.cache) the custom Telegraf with the bundle's plugins
	@telegraf/build.sh >/dev/null

influxdb2: ## Build (or reuse from ~/.cache) a real influxd 2.7 for the v2 tests (cold ~10 min)
	@scripts/build-influxd2.sh >/dev/null

telegraf-armv6: ## Cross-compile the same Telegraf for the Pi Zero (GOARCH=arm GOARM=6; cached)
	@GOOS=linux GOARCH=arm GOARM=6 telegraf/build.sh >/dev/null

armel-python: system-deps ## Debian armel's Python 3.11 for the emulated Pi Zero tests (cached)
	@scripts/armel-python.sh >/dev/null

taptap: system-deps ## Build (or reuse from ~/.cache) the pinned taptap decoder from crates.io
	@scripts/install-taptap.sh >/dev/null

system-deps: ## InfluxDB 1.x, Mosquitto and libudev-dev from Debian's packages, when missing
	@scripts/install-system-deps.sh

run: setup ## Run the demo through the real Telegraf for DURATION seconds (default 60)
	$(BIN)/bridge-cli run --duration $(DURATION)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	MYPY=$(BIN)/mypy scripts/typecheck.sh

test: setup telegraf-armv6 armel-python lint typecheck ## Lint, type-check and run every test (short fault-injection runs)
	$(BIN)/pytest $(PYTEST_ARGS)

soak: setup ## The long fault-injection and soak tests
	BRIDGE_SOAK=1 BRIDGE_PROPERTY_EXAMPLES=1000 $(BIN)/pytest -m "slow or telegraf" $(PYTEST_ARGS)

docs: venv ## Regenerate docs/configuration.md from the schema
	$(BIN)/bridge-cli config-reference --output docs/configuration.md

clean: ## Remove the venv and local run data (the Telegraf and influxd 2 builds stay in ~/.cache)
	rm -rf $(VENV) var build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
