# The platform's commands. `make demo` and `make test` are all a newcomer needs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := contracts libs/runtime libs/dice libs/trainers libs/client libs/cli services/identity services/gateway services/jobs \
            services/datasets services/trainer-runner services/export services/inference services/notifier deploy/local
MYPY_PACKAGES := vtp_contracts vtp_runtime vtp_dice vtp_trainers vtp_client vtp_cli vtp_localstack vtp_gateway vtp_identity vtp_jobs \
                 vtp_datasets vtp_trainer_runner vtp_export vtp_inference vtp_notifier
STAMP := $(VENV)/.installed

.PHONY: setup setup-exporters up down status demo test test-exporters lint typecheck unit integration chaos contracts clean

setup: $(STAMP) ## Create .venv and install every package (editable) with the dev tools

$(STAMP): requirements-dev.txt requirements-ml.txt constraints.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11+ required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -r requirements-ml.txt
	$(BIN)/pip install --quiet -c constraints.txt -r requirements-dev.txt $(addprefix -e ,$(PACKAGES))
	@# tritonserver 2.51 (Python backend, CPU) from the nvidia-pytriton wheel, unpacked into a cache dir
	@# (not installed: it pins numpy<2); the local stack runs it for the triton runtime when present.
	$(BIN)/python -m vtp_localstack.triton fetch || echo "tritonserver not fetched: the triton runtime stays off"
	@touch $@

setup-exporters: setup ## The heavy export toolchains (MNN, LiteRT, Paddle, CoreML), each in .venv-exporters/<name>
	PYTHON=$(PYTHON) services/export/toolchains/setup.sh

up: setup ## Start the local stack (idempotent; restarts crashed processes)
	$(BIN)/vtp-stack up

down: ## Stop every process of the local stack
	@if [ -x $(BIN)/vtp-stack ]; then $(BIN)/vtp-stack down; else echo "nothing to stop (no $(VENV))"; fi

status: setup ## Health of every service and dependency, and the endpoints clients need
	$(BIN)/vtp-stack status

demo: up ## The whole journey through the vtp command: data, live training, export, deployment, prediction, webhooks, usage
	$(BIN)/python deploy/local/demo.py

test: setup lint typecheck ## Lint, type checks, then every test against the real local stack
	$(BIN)/python -m pytest

chaos: setup ## Fault injection: kill each service, the broker and PostgreSQL mid-journey (a stack of its own)
	$(BIN)/python -m pytest -m chaos tests/chaos

test-exporters: setup-exporters ## Export a trained job to every heavy format on a stack of its own (not in make test)
	VTP_TEST_EXPORT_TOOLCHAINS=$(CURDIR)/.venv-exporters/toolchains.json $(BIN)/python -m pytest -m exporters \
		tests/integration/export/test_exporters.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

typecheck: setup
	$(BIN)/mypy --strict -p vtp_contracts
	$(BIN)/mypy $(addprefix -p ,$(MYPY_PACKAGES))

unit: setup ## Fast tests only (no stack)
	$(BIN)/python -m pytest -m "not integration"

contracts: setup ## Regenerate contracts/schemas/*.json and docs/asyncapi.json
	$(BIN)/python -m vtp_runtime.messaging.catalog_docs

clean: down
	rm -rf .vtp $(VENV)
