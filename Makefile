# roomtemp — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
.PHONY: run demo test bench lint types pr clean package cfn-lint faults fuzz audit

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==26.2"
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m infra.local run

demo: $(STAMP)
	$(BIN)/python -m infra.local run --demo

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

# One deployable template + deployment.zip in build/ (STAGE=prod for prod): see docs/deploy.md.
STAGE ?= dev
package: $(STAMP)
	$(BIN)/python -m infra.template merge --stage $(STAGE) --output build/merge-$(STAGE).json
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/chalice package --stage $(STAGE) \
		--merge-template build/merge-$(STAGE).json build/
	$(BIN)/cfn-lint build/sam.json
	$(BIN)/python -m infra.package build/deployment.zip

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
