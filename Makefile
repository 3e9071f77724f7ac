# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := .demo/data
RECORDS := --incidents $(DEMO)/incidents.csv --changes $(DEMO)/changes.csv \
           --deployments $(DEMO)/deployments.csv --pull-requests $(DEMO)/pull_requests.csv

.PHONY: venv test demo lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/scorecard generate --out $(DEMO) --config scorecard.yaml
	$(BIN)/scorecard score --config scorecard.yaml --values $(DEMO)/values.csv $(RECORDS)
	@echo
	@echo "Demo data: $(DEMO)/  (metrics: $(BIN)/scorecard metrics $(RECORDS) --grain week)"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/derive.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache *.egg-info
