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

# The warehouse tests also run against PostgreSQL when a server answers at PG_URL
# (under CI=true a missing server fails those tests instead of skipping them).
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
PG_ANSWERS := $(BIN)/python -c "import sys, sqlalchemy as sa; sa.create_engine(sys.argv[1], connect_args={'connect_timeout': 3}).connect().close()"

test: $(STAMP)
	@if [ -z "$$SCORECARD_TEST_POSTGRES_URL" ] && $(PG_ANSWERS) "$(PG_URL)" 2>/dev/null; then \
	  export SCORECARD_TEST_POSTGRES_URL="$(PG_URL)"; fi; \
	echo "PostgreSQL for tests: $${SCORECARD_TEST_POSTGRES_URL:-none (those tests skip; under CI=true they fail)}"; \
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
