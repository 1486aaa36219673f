# roomtemp — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
.PHONY: run demo test bench lint types pr clean package cfn-lint faults fuzz audit deploy

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==26.2"
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

API_PORT ?= 8000
EMULATOR_PORT ?= 4566
run: $(STAMP)
	$(BIN)/python -m infra.local run --api-port $(API_PORT) --emulator-port $(EMULATOR_PORT)

demo: $(STAMP)
	$(BIN)/python -m infra.local run --api-port $(API_PORT) --emulator-port $(EMULATOR_PORT) --demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

# Reliability (docs/reliability.md): the fault runs (HTTP, S3, SQS) at the issue's size,
# longer fuzzing (properties and the API schema), CVEs.
faults: $(STAMP)
	ROOMTEMP_FAULT_CALL_RATE=0.02 ROOMTEMP_FAULT_READINGS=100000 ROOMTEMP_FAULT_QUEUE_READINGS=100000 $(BIN)/python -m pytest -q -s \
		tests/reliability/test_fault_ingest.py tests/reliability/test_fault_queue_ingest.py

fuzz: $(STAMP)
	ROOMTEMP_HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -n 2 -q tests/reliability/test_properties.py
	ROOMTEMP_FUZZ_EXAMPLES=200 $(BIN)/python -m pytest -q -s tests/reliability/test_schema_fuzz.py
	ROOMTEMP_ATTACK_EXAMPLES=3000 $(BIN)/python -m pytest -q -s tests/access/test_attack.py

audit: $(STAMP)
	$(BIN)/pip-audit -r requirements.txt -r requirements-dev.txt

bench: $(STAMP)
	$(BIN)/python -m bench.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy

pr: lint types test

# Chalice deploys for the Python it runs under (runtime and wheels), so `make package` and
# `make deploy` run it from .venv-deploy, built with the Lambda runtime's Python
# (LAMBDA_RUNTIME in infra/operations.py; docs/deploy.md#runtime).
LAMBDA_RUNTIME := python3.13
# The first python3.13 that runs: on PATH, else pyenv's (whose shim fails unless 3.13 is active).
LAMBDA_PYTHON ?= $(shell for p in $(LAMBDA_RUNTIME) $$HOME/.pyenv/versions/3.13*/bin/$(LAMBDA_RUNTIME); \
	do $$p -c "" 2>/dev/null && { echo $$p; break; }; done)
DEPLOY_VENV := .venv-deploy
DEPLOY_BIN := $(DEPLOY_VENV)/bin
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed

$(DEPLOY_STAMP): requirements.txt requirements-dev.txt
	@$(LAMBDA_PYTHON) -c "import sys; sys.exit('python%d.%d' % sys.version_info[:2] != '$(LAMBDA_RUNTIME)')" \
		2>/dev/null || { echo "make package/deploy need $(LAMBDA_RUNTIME), the Lambda runtime" \
		"(docs/deploy.md#runtime): install it or pass LAMBDA_PYTHON=/path/to/$(LAMBDA_RUNTIME)" >&2; exit 1; }
	@test -x $(DEPLOY_BIN)/python || $(LAMBDA_PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_BIN)/python -m pip install --quiet "pip==26.2"
	$(DEPLOY_BIN)/python -m pip install --quiet -r requirements.txt \
		$$(grep -E '^(chalice|boto3)==' requirements-dev.txt)
	@touch $(DEPLOY_STAMP)

# One deployable template + deployment.zip in build/ (STAGE=prod for prod): see docs/deploy.md.
STAGE ?= dev
package: $(STAMP) $(DEPLOY_STAMP)
	$(BIN)/python -m infra.template merge --stage $(STAGE) --output build/merge-$(STAGE).json
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(DEPLOY_BIN)/chalice package \
		--stage $(STAGE) --merge-template build/merge-$(STAGE).json build/
	$(BIN)/cfn-lint build/sam.json
	$(BIN)/python -m infra.package build/deployment.zip --template build/sam.json \
		--runtime $(LAMBDA_RUNTIME)

# The chalice deploy path (docs/deploy.md): infra stack, `chalice deploy`, then what chalice
# cannot set (partial batch responses, stream settings, API name and throttling). Never in `make test`.
deploy: $(DEPLOY_STAMP)
	$(DEPLOY_BIN)/python -m infra.deploy --stage $(STAGE)

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) build .pytest_cache .mypy_cache .ruff_cache
