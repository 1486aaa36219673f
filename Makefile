# roomtemp — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint types pr clean faults fuzz audit

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m infra.local run

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

# Reliability (docs/readme/reliability.md): the fault run at the issue's size, longer fuzzing, CVEs.
faults: $(STAMP)
	ROOMTEMP_FAULT_READINGS=100000 $(BIN)/python -m pytest -q -s tests/reliability/test_fault_ingest.py

fuzz: $(STAMP)
	ROOMTEMP_HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -n 2 -q tests/reliability/test_properties.py

audit: $(STAMP)
	$(BIN)/pip-audit -r requirements.txt -r requirements-dev.txt

bench: $(STAMP)
	$(BIN)/python -m bench.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

pr: lint types test

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
